#include "http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <stdexcept>

namespace chat4all::bench {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

server_address server_address::parse(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    throw std::invalid_argument("--url must start with http:// (got '" + url + "')");
  auto rest = url.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    if (rest.find_first_not_of('/', slash) != std::string::npos)
      throw std::invalid_argument("--url must not have a path (got '" + url + "')");
    rest.resize(slash);
  }
  server_address a;
  auto colon = rest.rfind(':');
  a.host = colon == std::string::npos ? rest : rest.substr(0, colon);
  a.port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  if (a.host.empty() || a.port.empty()) throw std::invalid_argument("--url has no host or port");
  asio::io_context io;
  tcp::resolver r(io);
  boost::system::error_code ec;
  auto results = r.resolve(a.host, a.port, ec);
  if (ec || results.empty())
    throw std::invalid_argument("cannot resolve " + a.host + ":" + a.port + ": " + ec.message());
  a.endpoint = results.begin()->endpoint();
  return a;
}

http_connection::http_connection(asio::any_io_executor ex, const server_address& addr)
    : stream_(ex), addr_(&addr) {}

void http_connection::close() {
  boost::system::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
  open_ = false;
  buffer_.clear();
}

asio::awaitable<http_reply> http_connection::request(http::verb verb, std::string_view target,
                                                     std::string_view body, std::string_view token,
                                                     std::string_view content_type,
                                                     std::chrono::milliseconds timeout,
                                                     std::string_view extra_name,
                                                     std::string_view extra_value) {
  http_reply out;
  auto tok = asio::as_tuple(asio::use_awaitable);
  // One retry on a stale keep-alive connection (the server may close an idle one).
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = open_;
    if (!open_) {
      stream_.expires_after(timeout);
      auto [ec] = co_await stream_.async_connect(addr_->endpoint, tok);
      if (ec) {
        out.error = ec == beast::error::timeout ? "timeout" : "connect";
        close();
        co_return out;
      }
      stream_.socket().set_option(tcp::no_delay(true));
      open_ = true;
      ++connects_;
    }
    http::request<http::span_body<const char>> req{verb, target, 11};
    req.set(http::field::host, addr_->host);
    if (!token.empty()) req.set(http::field::authorization, std::string("Bearer ") += token);
    if (!extra_name.empty()) req.set(extra_name, extra_value);
    if (!body.empty() || verb == http::verb::post || verb == http::verb::put) {
      req.set(http::field::content_type, content_type);
      req.body() = {body.data(), body.size()};
      req.prepare_payload();
    }
    req.keep_alive(true);
    stream_.expires_after(timeout);
    auto [wec, wn] = co_await http::async_write(stream_, req, tok);
    if (wec) {
      close();
      if (reused && wec != beast::error::timeout) continue;
      out.error = wec == beast::error::timeout ? "timeout" : "io";
      co_return out;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(256ull * 1024 * 1024);
    auto [rec, rn] = co_await http::async_read(stream_, buffer_, parser, tok);
    if (rec) {
      close();
      // A reused connection closed before any byte of the answer: the request was not
      // processed (the server closes idle keep-alive connections); send it again once.
      if (reused && (rec == http::error::end_of_stream || rec == asio::error::connection_reset) &&
          rn == 0)
        continue;
      out.error = rec == beast::error::timeout ? "timeout" : "io";
      co_return out;
    }
    auto res = parser.release();
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    if (!res.keep_alive()) close();
    co_return out;
  }
  out.error = "io";
  co_return out;
}

std::string history_target(std::int64_t conversation, std::int64_t after_seq, int limit) {
  return "/v1/conversations/" + std::to_string(conversation) +
         "/messages?after_seq=" + std::to_string(after_seq) + "&limit=" + std::to_string(limit);
}

}  // namespace chat4all::bench
