#pragma once
// Open-loop send schedule: request i is due at start + i / rate, whatever happened to the
// requests before it. Latency is measured from that intended time, so a stalled server is
// charged for every request it delayed (no coordinated omission). Thread-safe: claim() hands
// out each index once across all connections.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace chat4all::bench {

using steady = std::chrono::steady_clock;

class open_loop_schedule {
 public:
  // rate: requests per second (> 0); requests are due in [start, start + duration).
  open_loop_schedule(steady::time_point start, double rate, std::chrono::nanoseconds duration,
                     std::uint64_t max_requests = UINT64_MAX);

  // The intended send time of request i (computed from i, so no accumulated drift).
  steady::time_point intended(std::uint64_t i) const;
  // Number of requests due in the whole run.
  std::uint64_t total() const { return total_; }
  // Claims the next request: its index and intended time; nullopt when the run is over.
  struct slot {
    std::uint64_t index;
    steady::time_point due;
  };
  std::optional<slot> claim();
  // Requests whose intended time is <= now (for "behind schedule" reporting).
  std::uint64_t due_by(steady::time_point now) const;
  std::uint64_t claimed() const { return std::min(next_.load(), total_); }

 private:
  steady::time_point start_;
  double rate_;
  std::uint64_t total_;
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace chat4all::bench
