#pragma once
// Request body and query parsing with precise, per-field errors (SPEC §3: "which field, why").

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_types.hpp"

namespace chat4all::api {

// The body as a JSON object. 415 unsupported_media for a non-JSON Content-Type, 400
// invalid_json for malformed JSON (or nesting deeper than 32), 400 invalid_input when the
// value is not an object.
// `sp`: where the parsed values live; a handler passes a monotonic_resource it owns, so
// parsing costs a few block allocations and destroying the result frees nothing piece by
// piece (the result must not outlive the resource).
result<boost::json::object> parse_json_body(const request& req, boost::json::storage_ptr sp = {});

// Collects field errors while reading an object; failure() reports all of them at once.
class field_reader {
 public:
  explicit field_reader(const boost::json::object& o) : o_(o) {}

  std::optional<std::string> string(std::string_view key, bool required,
                                    std::size_t max_bytes = 4096);
  std::optional<std::int64_t> int64(std::string_view key, bool required,
                                    std::int64_t min = INT64_MIN, std::int64_t max = INT64_MAX);
  const boost::json::array* array(std::string_view key, bool required);
  const boost::json::object* object(std::string_view key, bool required);
  void fail(std::string field, std::string reason);
  bool ok() const noexcept { return errors_.empty(); }
  error failure() const;

 private:
  const boost::json::value* find(std::string_view key, bool required);
  const boost::json::object& o_;
  std::vector<field_error> errors_;
};

// Query parameter as an integer in [min, max]; absent -> `fallback`. Adds to `errors`.
std::optional<std::int64_t> query_int(const request_context& ctx, std::string_view name,
                                      std::int64_t min, std::int64_t max,
                                      std::vector<field_error>& errors);
// "{name}" path segment as a positive int64, or invalid_input.
result<std::int64_t> path_id(const request_context& ctx, std::string_view name);
error invalid_fields(std::vector<field_error> errors);

}  // namespace chat4all::api
