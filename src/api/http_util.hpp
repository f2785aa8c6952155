#pragma once
// Small pieces of the HTTP server kept apart so that they can be tested without sockets.
// Internal to the api module.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_types.hpp"

namespace chat4all::api {

// "127.0.0.1:8080", "[::1]:0", "0.0.0.0:80", "localhost:8080" (resolved, first address).
// Throws boost::system::system_error when the host does not resolve, std::invalid_argument
// when the text has no valid port.
boost::asio::ip::tcp::endpoint resolve_listen(std::string_view listen,
                                              boost::asio::io_context& ioc);

// 32 lowercase hex digits from a per-thread state (splitmix64: cheap, no syscall, no lock;
// unique per state sequence). The caller owns `state` and must not share it across threads.
std::string next_request_id(std::uint64_t& state);
// The client's X-Request-ID when it is 1-128 chars of [A-Za-z0-9._-], else "".
std::string sanitize_request_id(std::string_view value);
// The trace-id of a valid W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"), else "".
std::string trace_id_from(std::string_view traceparent);
// The token of "Bearer <token>" (scheme case-insensitive), or nullopt when missing/malformed.
std::optional<std::string_view> bearer_token(std::string_view authorization);
// The access token of a WebSocket upgrade request that has no Authorization header (browsers
// cannot set one): the `token` query parameter, else a `Sec-WebSocket-Protocol` entry
// "bearer.<token>". nullopt when neither is there.
std::optional<std::string> upgrade_token(std::string_view query, std::string_view protocols);

// An error response for a request that could not be parsed (HTTP/1.1, Connection: close).
response bare_error(http::status status, std::string_view code, std::string_view message);
// Parse errors that deserve a 400, as opposed to the peer closing or a timeout.
bool is_malformed(const boost::system::error_code& ec);
// Adds X-Request-ID and a Content-Type when missing, aligns the version with the request,
// and fixes the framing headers (body-less statuses carry no body nor Content-Length).
void finalize(response& res, const request& req, const std::string& request_id);

// The bytes Beast's serializer would write for `res` (status line, fields in order, blank
// line, body), appended to `out` in one piece so the whole response leaves in one write
// without the serializer's buffer sequences. Only for the common shape: a Content-Length,
// not chunked, a body of at most `max_body` bytes; returns false (out untouched) otherwise,
// and the caller writes through Beast.
bool serialize_simple(const response& res, std::string& out, std::size_t max_body);

}  // namespace chat4all::api
