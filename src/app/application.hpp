#pragma once
// The composition root: reads the configuration, chooses adapters, wires use cases,
// the router stage and the HTTP server, and runs until SIGTERM/SIGINT.

#include <string>

#include "core/config.hpp"

namespace chat4all::app {

// Runs the server; returns the process exit code (0 after a clean drain on SIGTERM).
int serve(config cfg);
// Creates a user (password hashed with argon2id). Returns 0 on success.
int add_user(const config& cfg, const std::string& username, const std::string& password);
// Applies store migrations and prints the schema version.
int migrate(const config& cfg);
// The JWT secret: from the config, or generated once and kept in <data_dir>/jwt.secret.
std::string resolve_jwt_secret(const config& cfg);

}  // namespace chat4all::app
