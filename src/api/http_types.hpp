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
