#include "core/clock.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace chat4all {

timestamp_us system_clock::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string format_rfc3339(timestamp_us t) {
  std::time_t secs = static_cast<std::time_t>(t / 1'000'000);
  int millis = static_cast<int>((t % 1'000'000) / 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

}  // namespace chat4all
