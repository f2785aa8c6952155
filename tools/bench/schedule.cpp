#include "schedule.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace chat4all::bench {

open_loop_schedule::open_loop_schedule(steady::time_point start, double rate,
                                       std::chrono::nanoseconds duration,
                                       std::uint64_t max_requests)
    : start_(start), rate_(rate) {
  if (!(rate > 0)) throw std::invalid_argument("open-loop rate must be > 0");
  const double seconds = std::chrono::duration<double>(duration).count();
  const auto n = static_cast<std::uint64_t>(std::ceil(seconds * rate - 1e-9));
  total_ = std::min(n, max_requests);
}

steady::time_point open_loop_schedule::intended(std::uint64_t i) const {
  const double ns = static_cast<double>(i) * 1e9 / rate_;
  return start_ + std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

std::optional<open_loop_schedule::slot> open_loop_schedule::claim() {
  const auto i = next_.fetch_add(1, std::memory_order_relaxed);
  if (i >= total_) return std::nullopt;
  return slot{i, intended(i)};
}

std::uint64_t open_loop_schedule::due_by(steady::time_point now) const {
  if (now < start_) return 0;
  const double s = std::chrono::duration<double>(now - start_).count();
  const auto n = static_cast<std::uint64_t>(std::floor(s * rate_)) + 1;
  return std::min(n, total_);
}

}  // namespace chat4all::bench
