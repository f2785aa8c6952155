#pragma once
// Structured logging: one JSON object per line (or a human-readable text line), written
// through spdlog to stderr. spdlog stays out of this header on purpose (it is linked
// PRIVATE to chat4all_obs).
//
//   log::info("message accepted", {{"conversation_id", cid}, {"bytes", n}});
//   log::warn(log::context{ctx.request_id, ctx.trace_id}, "slow store", {{"ms", 120}});
//
// JSON line keys, in order: ts (RFC 3339 UTC, ms), level, service, role, msg, request_id
// and trace_id (when the context gives them), then the fields. A field whose key collides
// with one of those keys is written as "field.<key>". Strings are escaped per RFC 8259;
// invalid UTF-8 bytes become U+FFFD so every line stays valid JSON.
//
// Thread-safety: every function may be called from any thread. init_logging() replaces
// spdlog's default logger (spdlog's registry is the only process-wide state) and should be
// called once at startup; before it, lines go to spdlog's default logger as text.
// Cost: a disabled level costs one atomic load; write() allocates one string per line.

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/clock.hpp"
#include "core/config.hpp"

namespace chat4all::log {

enum class level { trace, debug, info, warn, error };

// "trace" | "debug" | "info" | "warn" | "error"; throws std::invalid_argument otherwise.
level parse_level(std::string_view name);
const char* level_name(level l) noexcept;

// One key/value. Views only: a field must not outlive the call it is passed to.
struct field {
  enum class kind { string, int64, uint64, float64, boolean, null };

  std::string_view key;
  kind type = kind::null;
  std::string_view s;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double d = 0;
  bool b = false;

  field(std::string_view k, std::nullptr_t) : key(k) {}
  field(std::string_view k, std::string_view v) : key(k), type(kind::string), s(v) {}
  field(std::string_view k, const char* v) : key(k), type(kind::string), s(v) {}
  field(std::string_view k, const std::string& v) : key(k), type(kind::string), s(v) {}
  field(std::string_view k, bool v) : key(k), type(kind::boolean), b(v) {}
  field(std::string_view k, double v) : key(k), type(kind::float64), d(v) {}
  template <std::signed_integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) field(std::string_view k, T v)
      : key(k), type(kind::int64), i(v) {}
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) field(std::string_view k, T v)
      : key(k), type(kind::uint64), u(v) {}
};

// Request correlation: empty views are omitted from the line.
struct context {
  std::string_view request_id;
  std::string_view trace_id;
};

// Installs the chat4all logger as spdlog's default: cfg.format "json" or "text", cfg.level.
// Throws std::invalid_argument for an unknown level or format.
void init_logging(const logging_config& cfg, std::string service, std::string role);
// Same, writing to `out` (tests). `out` must outlive the logger (until the next init).
void init_logging(const logging_config& cfg, std::string service, std::string role,
                  std::ostream& out);

bool enabled(level l) noexcept;
void write(level l, const context* ctx, std::string_view msg, std::initializer_list<field> fields);
void flush();

// Pure formatting, exposed for tests. No trailing newline.
std::string format_json(timestamp_us ts, level l, std::string_view service, std::string_view role,
                        const context* ctx, std::string_view msg,
                        std::initializer_list<field> fields);
std::string format_text(timestamp_us ts, level l, std::string_view service, std::string_view role,
                        const context* ctx, std::string_view msg,
                        std::initializer_list<field> fields);
// Appends `s` as a quoted JSON string.
void append_json_string(std::string& out, std::string_view s);

#define CHAT4ALL_LOG_LEVEL_FN(name)                                                  \
  inline void name(std::string_view msg, std::initializer_list<field> fields = {}) { \
    if (enabled(level::name)) write(level::name, nullptr, msg, fields);              \
  }                                                                                  \
  inline void name(const context& ctx, std::string_view msg,                         \
                   std::initializer_list<field> fields = {}) {                       \
    if (enabled(level::name)) write(level::name, &ctx, msg, fields);                 \
  }
CHAT4ALL_LOG_LEVEL_FN(trace)
CHAT4ALL_LOG_LEVEL_FN(debug)
CHAT4ALL_LOG_LEVEL_FN(info)
CHAT4ALL_LOG_LEVEL_FN(warn)
CHAT4ALL_LOG_LEVEL_FN(error)
#undef CHAT4ALL_LOG_LEVEL_FN

}  // namespace chat4all::log
