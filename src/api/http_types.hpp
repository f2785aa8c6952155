#pragma once
// The contract between the HTTP server (http_server.*) and the route handlers.
// Handlers are coroutines running on the connection's I/O thread: they must not block
// (blocking work goes through the ports, which offload it).

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "domain/entities.hpp"
#include "domain/ports/blob_store.hpp"  // byte_source, byte_sink

namespace chat4all::api {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

struct request_context {
  request& req;
  std::string request_id;  // from X-Request-ID when given (sanitised), else generated
  std::string_view path;   // target without the query string
  std::vector<std::pair<std::string, std::string>> path_params;  // from "{name}" segments
  std::vector<std::pair<std::string, std::string>> query;        // percent-decoded
  std::optional<principal> caller;  // set by the server when the route requires auth
  std::string remote_ip;
  // From a valid W3C `traceparent` header (32 lowercase hex digits), else empty.
  std::string trace_id;

  // Value of the "{name}" path segment ("" if absent).
  std::string_view param(std::string_view name) const;
  // First value of a query parameter.
  std::optional<std::string_view> query_param(std::string_view name) const;
};

using handler = std::function<boost::asio::awaitable<response>(request_context&)>;

// What a streaming route (route_table::add_stream) gets instead of a read body: the request
// body as a byte_source read in the handler's own fixed-size buffers as it arrives (never
// buffered whole; read_some returns 0 at its end; 100-continue is answered on the first
// read; the route's body_limit holds for chunked bodies too: too_large), and optionally a
// streamed response. Errors from read_some: unavailable (the client went away or stalled past
// server.read_timeout_s), too_large, invalid_input (malformed chunked framing).
// Lives on the connection's coroutine frame: use it only until the handler returns.
class stream_io : public byte_source {
 public:
  // The request's Content-Length, when it has one (not for chunked bodies).
  virtual std::optional<std::uint64_t> content_length() const = 0;
  // True once the whole request body was read.
  virtual bool body_done() const = 0;
  // Writes `head` (status and headers, which must include Content-Length) and returns a sink
  // for exactly that many body bytes; X-Request-ID and the connection headers are added. After
  // this the handler must return nullopt. Errors: unavailable (the client went away).
  virtual boost::asio::awaitable<result<byte_sink*>> begin_response(response head) = 0;
};

// A streaming route's handler: a response for the server to write, or nullopt when it wrote
// its own through stream_io::begin_response. Unread body bytes make the server close the
// connection after the response (keep-alive continues when the body was read to its end).
using stream_handler =
    std::function<boost::asio::awaitable<std::optional<response>>(request_context&, stream_io&)>;

struct route_options {
  std::string name;            // low-cardinality metric label, e.g. "POST /v1/messages"
  std::size_t body_limit = 0;  // bytes; 0 = server default (server_config.max_body_bytes)
  bool auth = true;            // requires a valid Bearer access token
};

// Verifies a Bearer token. Errors: unauthenticated (with api_code "token_expired",
// "invalid_token", "token_revoked").
using authenticator =
    std::function<boost::asio::awaitable<result<principal>>(std::string_view token)>;

// A JSON response with Content-Type application/json and keep-alive taken from `req`.
response json_response(const request& req, http::status status, std::string body);
// The SPEC error body {"error":{"code","message","details"?}} with the status that `e.code`
// maps to; adds WWW-Authenticate: Bearer on 401 and Retry-After on 429/503.
response error_response(const request& req, const error& e);
// Same, with an explicit Retry-After (seconds) for 429/503 instead of the default of 1.
response error_response(const request& req, const error& e, int retry_after_s);
// An error body for statuses that have no errc (405, 431, ...): {"error":{code,message}}.
response error_response(const request& req, http::status status, std::string_view code,
                        std::string_view message);
http::status status_for(errc code) noexcept;

}  // namespace chat4all::api
