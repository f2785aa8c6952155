#include "api/http_util.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <charconv>
#include <stdexcept>

#include "api/route_table.hpp"

namespace chat4all::api {
namespace {

bool is_hex_lower(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

boost::asio::ip::tcp::endpoint resolve_listen(std::string_view listen,
                                              boost::asio::io_context& ioc) {
  auto colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    throw std::invalid_argument("listen address must be host:port, got " + std::string(listen));
  }
  std::string_view host = listen.substr(0, colon);
  std::string_view port_text = listen.substr(colon + 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    throw std::invalid_argument("invalid port in listen address " + std::string(listen));
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "*") host = "0.0.0.0";
  boost::system::error_code aec;
  auto addr = boost::asio::ip::make_address(std::string(host), aec);
  if (!aec) return {addr, static_cast<std::uint16_t>(port)};
  boost::asio::ip::tcp::resolver resolver(ioc);
  auto results = resolver.resolve(std::string(host), std::string(port_text));
  return results.begin()->endpoint();
}

std::string next_request_id(std::uint64_t& state) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = splitmix64(state);
    for (int i = 15; i >= 0; --i) {
      out[half * 16 + i] = hex[v & 0xF];
      v >>= 4;
    }
  }
  return out;
}

std::string sanitize_request_id(std::string_view value) {
  if (value.empty() || value.size() > 128) return {};
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return {};
  }
  return std::string(value);
}

std::string trace_id_from(std::string_view tp) {
  // version "ff" is forbidden; later versions may append fields after the flags.
  if (tp.size() < 55 || (tp.size() > 55 && tp[55] != '-')) return {};
  if (tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return {};
  std::string_view version = tp.substr(0, 2), trace = tp.substr(3, 32), parent = tp.substr(36, 16),
                   flags = tp.substr(53, 2);
  if (!is_hex_lower(version) || version == "ff" || !is_hex_lower(trace) || !is_hex_lower(parent) ||
      !is_hex_lower(flags)) {
    return {};
  }
  if (version == "00" && tp.size() != 55) return {};
  if (trace == std::string_view("00000000000000000000000000000000") ||
      parent == std::string_view("0000000000000000")) {
    return {};
  }
  return std::string(trace);
}

std::optional<std::string_view> bearer_token(std::string_view h) {
  if (h.size() < 8 || !boost::beast::iequals(h.substr(0, 6), "Bearer") || h[6] != ' ') {
    return std::nullopt;
  }
  h.remove_prefix(7);
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  if (h.empty() || h.find_first_of(" \t,") != std::string_view::npos) return std::nullopt;
  return h;
}

std::optional<std::string> upgrade_token(std::string_view query, std::string_view protocols) {
  for (auto& [k, v] : parse_query(query))
    if (k == "token" && !v.empty()) return std::move(v);
  while (!protocols.empty()) {
    auto comma = protocols.find(',');
    auto item = protocols.substr(0, comma);
    protocols = comma == std::string_view::npos ? std::string_view() : protocols.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.size() > 7 && item.substr(0, 7) == "bearer.") return std::string(item.substr(7));
  }
  return std::nullopt;
}

response bare_error(http::status status, std::string_view code, std::string_view message) {
  request dummy{http::verb::get, "/", 11};
  dummy.keep_alive(false);
  response res = error_response(dummy, status, code, message);
  res.keep_alive(false);
  return res;
}

bool is_malformed(const boost::system::error_code& ec) {
  namespace he = boost::beast::http;
  if (ec.category() != he::make_error_code(he::error::bad_target).category()) return false;
  return ec != he::error::end_of_stream && ec != he::error::partial_message &&
         ec != he::error::need_more && ec != he::error::need_buffer;
}

void finalize(response& res, const request& req, const std::string& request_id) {
  res.version(req.version() == 10 ? 10 : 11);
  res.set("X-Request-ID", request_id);
  if (res.find(http::field::content_type) == res.end()) {
    res.set(http::field::content_type, "text/plain; charset=utf-8");
  }
  unsigned s = res.result_int();
  if (s < 200 || s == 204 || s == 304) {
    res.body().clear();
    res.erase(http::field::content_length);
    res.erase(http::field::transfer_encoding);
  } else {
    res.prepare_payload();
  }
}

bool serialize_simple(const response& res, std::string& out, std::size_t max_body) {
  if (res.chunked() || !res.has_content_length() || res.body().size() > max_body) return false;
  if (res.version() != 11 && res.version() != 10) return false;
  const unsigned code = res.result_int();
  if (code < 100 || code > 999) return false;
  out.append(res.version() == 11 ? "HTTP/1.1 " : "HTTP/1.0 ");
  const char digits[3] = {static_cast<char>('0' + code / 100),
                          static_cast<char>('0' + code / 10 % 10),
                          static_cast<char>('0' + code % 10)};
  out.append(digits, 3);
  out.push_back(' ');
  const auto reason = res.reason();
  out.append(reason.data(), reason.size());
  out.append("\r\n");
  for (const auto& f : res) {
    const auto name = f.name_string();
    const auto value = f.value();
    out.append(name.data(), name.size());
    out.append(": ");
    out.append(value.data(), value.size());
    out.append("\r\n");
  }
  out.append("\r\n");
  out.append(res.body());
  return true;
}

}  // namespace chat4all::api
