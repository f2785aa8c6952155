#pragma once
// Distributed counters (SPEC §6, §8): fixed-window counts shared by every instance, the base
// of rate limits and login throttling. Adapters: inproc_counters (embedded default, one
// process), redis_counters (cluster mode: every instance counts in one Redis).
//
// add(key, n, window): adds n to the counter `key` and returns its new value. A counter
// starts at 0, lives `window` from its first add, then disappears (the next add starts a
// new window at n). Atomic: concurrent adds from any number of threads and processes are
// never lost.
// Thread-safety: any thread. Errors: unavailable (Redis unreachable; callers decide whether
// to fail open), invalid_input (window <= 0).

#include <chrono>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "domain/ports/store.hpp"  // task

namespace chat4all {

class counters {
 public:
  virtual ~counters() = default;
  virtual task<result<std::int64_t>> add(std::string key, std::int64_t n,
                                         std::chrono::milliseconds window) = 0;
};

}  // namespace chat4all
