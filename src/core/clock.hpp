#pragma once
// Injectable wall clock. Timestamps in the domain are microseconds since the Unix epoch (UTC).

#include <atomic>
#include <cstdint>
#include <string>

namespace chat4all {

using timestamp_us = std::int64_t;

class clock {
 public:
  virtual ~clock() = default;
  virtual timestamp_us now_us() const = 0;
  timestamp_us now_s() const { return now_us() / 1'000'000; }
};

// The real system clock. Thread-safe.
class system_clock final : public clock {
 public:
  timestamp_us now_us() const override;
};

// A clock tests move by hand. Thread-safe.
class manual_clock final : public clock {
 public:
  explicit manual_clock(timestamp_us start = 1'700'000'000'000'000) : t_(start) {}
  timestamp_us now_us() const override { return t_.load(); }
  void advance_us(timestamp_us d) { t_ += d; }
  void set_us(timestamp_us t) { t_ = t; }

 private:
  std::atomic<timestamp_us> t_;
};

// RFC 3339 UTC with millisecond precision, e.g. "2026-11-28T01:37:44.123Z".
std::string format_rfc3339(timestamp_us t);

}  // namespace chat4all
