#include "adapters/counters/inproc/inproc_counters.hpp"

namespace chat4all {

result<std::int64_t> inproc_counters::add_now(const std::string& key, std::int64_t n,
                                              std::chrono::milliseconds window) {
  if (window.count() <= 0) return error(errc::invalid_input, "window must be positive");
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lk(mu_);
  if (++adds_ % 4096 == 0)
    std::erase_if(slots_, [now](const auto& kv) { return kv.second.expires <= now; });
  auto& s = slots_[key];
  if (s.expires <= now) s = slot{0, now + window};
  s.value += n;
  return s.value;
}

task<result<std::int64_t>> inproc_counters::add(std::string key, std::int64_t n,
                                                std::chrono::milliseconds window) {
  co_return add_now(key, n, window);
}

}  // namespace chat4all
