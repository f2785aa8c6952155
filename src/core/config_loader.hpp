#pragma once
// Loading and validating chat4all::config: defaults, then a TOML file, then CHAT4ALL_*
// environment variables (command-line flags, applied by app/, come last).
//
// Every field of chat4all::config is a key: top-level `role` and `seed_demo_users`, and
// tables [server] [storage] [log] [auth] [limits] [router] [logging] whose keys are the
// struct field names. The environment variable of a key is CHAT4ALL_<TABLE>_<KEY> in upper
// case (CHAT4ALL_SERVER_LISTEN, CHAT4ALL_AUTH_JWT_SECRET), or CHAT4ALL_<KEY> for top-level
// keys (CHAT4ALL_ROLE). The list of keys, with types, defaults and meaning, is config_keys();
// config/chat4all.example.toml and docs/configuration.md are kept true to it by tests.
//
// Thread-safety: all functions are safe to call concurrently (no shared mutable state).

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"

namespace chat4all {

// A bad configuration. The message names the key (or the environment variable) and says
// what is wrong and what is allowed, e.g.
//   config: unknown key "server.listn" (did you mean server.listen?)
//   config: server.threads must be an integer between 0 and 256, got "abc"
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Environment variables with the CHAT4ALL_ prefix that are not configuration keys and are
// ignored: CHAT4ALL_BIN and CHAT4ALL_CONFIG (used by tools and scripts) and any
// CHAT4ALL_TEST_* (reserved for test harnesses). Every other CHAT4ALL_* variable must be a key.
bool is_ignored_env_var(std::string_view name) noexcept;

// Builds the configuration: defaults, then the TOML file at `toml_path` (if given), then the
// CHAT4ALL_* entries of `env` (other entries are ignored, so the whole environment may be
// passed). Throws config_error for an unreadable or malformed file, an unknown table, key or
// CHAT4ALL_* variable, or a value of the wrong type or out of range.
config load_config(const std::optional<std::string>& toml_path,
                   const std::map<std::string, std::string>& env);

// The same with TOML text instead of a file; `origin` names the text in error messages.
config load_config_from_string(std::string_view toml_text,
                               const std::map<std::string, std::string>& env,
                               std::string_view origin = "<string>");

// The CHAT4ALL_* variables of this process, for load_config.
std::map<std::string, std::string> process_environment();

// One configuration key, for documentation and `--help`-style listings.
struct config_key_info {
  std::string key;            // "server.listen"
  std::string env;            // "CHAT4ALL_SERVER_LISTEN"
  std::string type;           // "string" | "integer" | "boolean"
  std::string default_value;  // as a TOML literal: "\"127.0.0.1:8080\"", "1", "true"
  std::string allowed;        // "host:port with a port between 0 and 65535"
  std::string description;
};

// Every key, in the order of config.hpp.
const std::vector<config_key_info>& config_keys();

// A human-readable listing of config_keys(), one key per line.
std::string describe_config_keys();

// `c` as TOML text that load_config reads back to the same values (one table per section).
// With `redact_secrets`, auth.jwt_secret is written as "<redacted>" when set.
std::string format_config(const config& c, bool redact_secrets = true);

}  // namespace chat4all
