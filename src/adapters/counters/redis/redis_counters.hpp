#pragma once
// redis_counters: the counters port of cluster mode, in Redis, so every instance counts in
// one place. Each add is one EVAL of a small script (INCRBY, then PEXPIRE when the counter
// was just created), atomic on the server. Keys are `key_prefix + key`.
//
// Threading: blocking hiredis calls on the adapter's own pool of `connections` threads, each
// with its own connection (opened on first use, reopened after an error), never on the
// caller's thread; the awaiting coroutine resumes on its own executor.
// Errors: unavailable when Redis cannot be reached or answers with an error (each command
// waits at most `timeout`).

#include <chrono>
#include <memory>
#include <string>

#include "domain/ports/counters.hpp"

namespace chat4all {

struct redis_counters_options {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string key_prefix;  // e.g. "chat4all:"
  int connections = 2;
  std::chrono::milliseconds timeout{1000};
};

class redis_counters final : public counters {
 public:
  explicit redis_counters(redis_counters_options opts);
  ~redis_counters() override;
  redis_counters(const redis_counters&) = delete;
  redis_counters& operator=(const redis_counters&) = delete;

  task<result<std::int64_t>> add(std::string key, std::int64_t n,
                                 std::chrono::milliseconds window) override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace chat4all
