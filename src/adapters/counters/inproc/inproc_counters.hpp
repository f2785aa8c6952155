#pragma once
// inproc_counters: the counters port for one process (embedded default). A hash map under a
// mutex; expired windows are swept every 4096 adds, so memory follows the live keys.

#include <mutex>
#include <string>
#include <unordered_map>

#include "domain/ports/counters.hpp"

namespace chat4all {

class inproc_counters final : public counters {
 public:
  task<result<std::int64_t>> add(std::string key, std::int64_t n,
                                 std::chrono::milliseconds window) override;
  // The same, synchronously (for callers on any thread that need no coroutine).
  result<std::int64_t> add_now(const std::string& key, std::int64_t n,
                               std::chrono::milliseconds window);

 private:
  struct slot {
    std::int64_t value = 0;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex mu_;
  std::unordered_map<std::string, slot> slots_;
  std::uint64_t adds_ = 0;
};

}  // namespace chat4all
