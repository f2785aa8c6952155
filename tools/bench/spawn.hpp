#pragma once
// --spawn: chat4all-bench starts the server under test itself, on a free loopback port with
// a fresh temporary data directory, and stops it (SIGTERM, then SIGKILL after a bound) at
// the end. Its output goes to <out>/server.log.

#include <sys/types.h>

#include <map>
#include <string>

namespace chat4all::bench {

class spawned_server {
 public:
  // Starts `binary serve --listen 127.0.0.1:<free port> --data-dir <tmp>` with `env` added to
  // the environment, and waits (bounded) until GET /healthz answers 200. Throws
  // std::runtime_error when it does not start.
  spawned_server(const std::string& binary, const std::map<std::string, std::string>& env,
                 const std::string& log_path, bool keep_data);
  ~spawned_server();
  spawned_server(const spawned_server&) = delete;
  spawned_server& operator=(const spawned_server&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Sends SIGTERM and waits; returns the exit status (128 + signal when killed).
  int stop();

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string data_dir_;
  bool keep_data_;
};

int free_loopback_port();

}  // namespace chat4all::bench
