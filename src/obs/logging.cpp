#include "obs/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>

namespace chat4all::log {
namespace {

// The installed logger carries service/role/format itself, so there is no global of ours:
// the only process-wide state is spdlog's default-logger slot.
class structured_logger final : public spdlog::logger {
 public:
  structured_logger(spdlog::sink_ptr sink, std::string service, std::string role, bool json)
      : spdlog::logger("chat4all", std::move(sink)),
        service_(std::move(service)),
        role_(std::move(role)),
        json_(json) {}

  const std::string service_;
  const std::string role_;
  const bool json_;
};

spdlog::level::level_enum to_spdlog(level l) {
  switch (l) {
    case level::trace:
      return spdlog::level::trace;
    case level::debug:
      return spdlog::level::debug;
    case level::info:
      return spdlog::level::info;
    case level::warn:
      return spdlog::level::warn;
    case level::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
std::size_t utf8_len(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  std::size_t n;
  std::uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  return n;
}

void append_number(std::string& out, auto v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_json_value(std::string& out, const field& f) {
  switch (f.type) {
    case field::kind::string:
      append_json_string(out, f.s);
      break;
    case field::kind::int64:
      append_number(out, f.i);
      break;
    case field::kind::uint64:
      append_number(out, f.u);
      break;
    case field::kind::float64:
      // JSON has no NaN/Infinity.
      if (std::isfinite(f.d)) {
        append_number(out, f.d);
      } else {
        out += "null";
      }
      break;
    case field::kind::boolean:
      out += f.b ? "true" : "false";
      break;
    case field::kind::null:
      out += "null";
      break;
  }
}

bool reserved_key(std::string_view k, const context* ctx) {
  if (k == "ts" || k == "level" || k == "service" || k == "role" || k == "msg") return true;
  if (ctx && k == "request_id" && !ctx->request_id.empty()) return true;
  if (ctx && k == "trace_id" && !ctx->trace_id.empty()) return true;
  return false;
}

// Text values are bare when they are simple words, JSON-quoted otherwise.
void append_text_value(std::string& out, const field& f) {
  if (f.type != field::kind::string) {
    append_json_value(out, f);
    return;
  }
  bool bare = !f.s.empty();
  for (char c : f.s) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == '=' || c == '\\' ||
        static_cast<unsigned char>(c) >= 0x7F) {
      bare = false;
      break;
    }
  }
  if (bare) {
    out += f.s;
  } else {
    append_json_string(out, f.s);
  }
}

// msg, then request_id/trace_id and the fields as key=value.
void append_text_body(std::string& out, const context* ctx, std::string_view msg,
                      std::initializer_list<field> fields) {
  // The message is free text, but a raw newline would split the line.
  for (char c : msg) out += (c == '\n' || c == '\r') ? ' ' : c;
  if (ctx && !ctx->request_id.empty()) {
    out += " request_id=";
    out += ctx->request_id;
  }
  if (ctx && !ctx->trace_id.empty()) {
    out += " trace_id=";
    out += ctx->trace_id;
  }
  for (const auto& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    append_text_value(out, f);
  }
}

std::shared_ptr<spdlog::logger> make_logger(const logging_config& cfg, std::string service,
                                            std::string role, spdlog::sink_ptr sink) {
  level lvl = parse_level(cfg.level);
  bool json;
  if (cfg.format == "json") {
    json = true;
  } else if (cfg.format == "text") {
    json = false;
  } else {
    throw std::invalid_argument("logging.format must be \"json\" or \"text\", got \"" + cfg.format +
                                "\"");
  }
  // Lines are fully formatted by write(); spdlog only appends the newline.
  sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "%v", spdlog::pattern_time_type::utc, std::string("\n")));
  auto logger = std::make_shared<structured_logger>(std::move(sink), std::move(service),
                                                    std::move(role), json);
  logger->set_level(to_spdlog(lvl));
  logger->flush_on(spdlog::level::warn);
  return logger;
}

timestamp_us now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

level parse_level(std::string_view name) {
  if (name == "trace") return level::trace;
  if (name == "debug") return level::debug;
  if (name == "info") return level::info;
  if (name == "warn" || name == "warning") return level::warn;
  if (name == "error") return level::error;
  throw std::invalid_argument("logging.level must be one of trace|debug|info|warn|error, got \"" +
                              std::string(name) + "\"");
}

const char* level_name(level l) noexcept {
  switch (l) {
    case level::trace:
      return "trace";
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    case level::error:
      return "error";
  }
  return "info";
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t n = utf8_len(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

std::string format_json(timestamp_us ts, level l, std::string_view service, std::string_view role,
                        const context* ctx, std::string_view msg,
                        std::initializer_list<field> fields) {
  std::string out;
  out.reserve(128 + msg.size() + fields.size() * 24);
  out += "{\"ts\":\"";
  out += format_rfc3339(ts);
  out += "\",\"level\":\"";
  out += level_name(l);
  out += "\",\"service\":";
  append_json_string(out, service);
  out += ",\"role\":";
  append_json_string(out, role);
  out += ",\"msg\":";
  append_json_string(out, msg);
  if (ctx && !ctx->request_id.empty()) {
    out += ",\"request_id\":";
    append_json_string(out, ctx->request_id);
  }
  if (ctx && !ctx->trace_id.empty()) {
    out += ",\"trace_id\":";
    append_json_string(out, ctx->trace_id);
  }
  for (const auto& f : fields) {
    out += ',';
    if (reserved_key(f.key, ctx)) {
      std::string k = "field.";
      k += f.key;
      append_json_string(out, k);
    } else {
      append_json_string(out, f.key);
    }
    out += ':';
    append_json_value(out, f);
  }
  out += '}';
  return out;
}

std::string format_text(timestamp_us ts, level l, std::string_view service, std::string_view role,
                        const context* ctx, std::string_view msg,
                        std::initializer_list<field> fields) {
  std::string out;
  out.reserve(96 + msg.size() + fields.size() * 24);
  out += format_rfc3339(ts);
  out += ' ';
  std::string_view name = level_name(l);
  for (char c : name) out += static_cast<char>(c - 'a' + 'A');
  out.append(6 - name.size(), ' ');
  out += service;
  out += '/';
  out += role;
  out += ' ';
  append_text_body(out, ctx, msg, fields);
  return out;
}

void init_logging(const logging_config& cfg, std::string service, std::string role) {
  spdlog::set_default_logger(make_logger(cfg, std::move(service), std::move(role),
                                         std::make_shared<spdlog::sinks::stderr_sink_mt>()));
}

void init_logging(const logging_config& cfg, std::string service, std::string role,
                  std::ostream& out) {
  spdlog::set_default_logger(
      make_logger(cfg, std::move(service), std::move(role),
                  std::make_shared<spdlog::sinks::ostream_sink_mt>(out, true)));
}

bool enabled(level l) noexcept {
  return spdlog::default_logger_raw()->should_log(to_spdlog(l));
}

void write(level l, const context* ctx, std::string_view msg, std::initializer_list<field> fields) {
  spdlog::logger* base = spdlog::default_logger_raw();
  auto* own = dynamic_cast<structured_logger*>(base);
  std::string line;
  if (own == nullptr) {
    // Not initialised: spdlog's default pattern already adds time and level.
    append_text_body(line, ctx, msg, fields);
  } else if (own->json_) {
    line = format_json(now_us(), l, own->service_, own->role_, ctx, msg, fields);
  } else {
    line = format_text(now_us(), l, own->service_, own->role_, ctx, msg, fields);
  }
  base->log(to_spdlog(l), spdlog::string_view_t(line.data(), line.size()));
}

void flush() {
  spdlog::default_logger_raw()->flush();
}

}  // namespace chat4all::log
