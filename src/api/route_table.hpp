#pragma once
// The route table: (verb, path pattern) -> options + handler.
//
// Patterns are split on '/'; a segment is either a literal (which may contain ':', so
// "/v1/messages:batch" is one literal segment, distinct from "/v1/messages/{message_id}")
// or a whole-segment parameter "{name}". When several patterns match a path, the one with
// a literal earliest wins ("/v1/files/initiate" beats "/v1/files/{id}").
//
// Thread-safety: add routes before the server starts; match() is const and may then be
// called from every I/O thread concurrently.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http_types.hpp"

namespace chat4all::api {

// A route that takes over the connection (WebSocket upgrade). Called after the request
// header and body were read and auth passed; the stream, any bytes already buffered and the
// request itself (it may free it once answered) belong to it until it returns, after which
// the server closes the connection. It is
// awaited by the connection's coroutine, so a graceful drain waits for it: whoever owns
// long-lived upgraded connections must close them (e.g. a gateway stop()) before draining.
using upgrade_handler = std::function<boost::asio::awaitable<void>(
    request_context&, boost::beast::tcp_stream&, boost::beast::flat_buffer&)>;

struct route {
  http::verb verb;
  std::string pattern;
  route_options options;    // options.name defaults to "<VERB> <pattern>"
  handler fn;               // empty for upgrade and stream routes
  upgrade_handler upgrade;  // set only for upgrade routes
  stream_handler stream;    // set only for stream routes
  std::size_t index = 0;    // dense position in the table, for per-route state

  struct segment {
    std::string text;  // literal text, or the parameter name
    bool param = false;
  };
  std::vector<segment> segments;
};

enum class match_kind { found, not_found, method_not_allowed };

struct route_match {
  match_kind kind = match_kind::not_found;
  const route* r = nullptr;                                 // set when found
  std::vector<std::pair<std::string, std::string>> params;  // percent-decoded
  std::string allow;                                        // for method_not_allowed: "GET, POST"
};

class route_table {
 public:
  // Throws std::invalid_argument for a pattern that does not start with '/', has a
  // malformed "{...}" segment, or repeats an existing (verb, pattern).
  const route& add(http::verb verb, std::string_view pattern, route_options options, handler fn);
  const route& add_upgrade(http::verb verb, std::string_view pattern, route_options options,
                           upgrade_handler fn);
  // A route whose body is streamed to the handler (uploads) instead of read whole first;
  // options.body_limit bounds it (413 before the handler when Content-Length is larger).
  const route& add_stream(http::verb verb, std::string_view pattern, route_options options,
                          stream_handler fn);

  // `path` is the request target without its query string, still percent-encoded.
  route_match match(http::verb verb, std::string_view path) const;

  std::size_t size() const noexcept { return routes_.size(); }
  const route& at(std::size_t i) const { return *routes_.at(i); }

 private:
  route& insert(http::verb verb, std::string_view pattern, route_options options);
  std::vector<std::unique_ptr<route>> routes_;
};

// Splits "/a/b?x=1" into path and query (without '?').
std::pair<std::string_view, std::string_view> split_target(std::string_view target) noexcept;
// Percent-decodes; '+' becomes a space when `plus_as_space` (query strings). Malformed
// escapes ("%zz", a trailing '%') are kept literally rather than rejecting the request.
std::string percent_decode(std::string_view s, bool plus_as_space);
// "a=1&b=x%20y&c" -> {{"a","1"},{"b","x y"},{"c",""}}; empty pieces are skipped.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

}  // namespace chat4all::api
