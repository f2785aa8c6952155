#include "api/json_input.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>

#include <charconv>

namespace chat4all::api {
namespace json = boost::json;

namespace {
std::string_view media_type(std::string_view ct) {
  auto semi = ct.find(';');
  if (semi != std::string_view::npos) ct = ct.substr(0, semi);
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  return ct;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}
}  // namespace

error invalid_fields(std::vector<field_error> errors) {
  std::string msg = "invalid input";
  if (!errors.empty()) msg = errors.front().field + ": " + errors.front().reason;
  error e{errc::invalid_input, std::move(msg)};
  e.details = std::move(errors);
  return e;
}

result<json::object> parse_json_body(const request& req, json::storage_ptr sp) {
  auto ct = req[http::field::content_type];
  if (!ct.empty() && !iequals(media_type({ct.data(), ct.size()}), "application/json"))
    return error{errc::unsupported_media, "Content-Type must be application/json"};
  json::parse_options opts;
  opts.max_depth = 32;
  boost::system::error_code ec;
  auto v = json::parse(req.body(), ec, std::move(sp), opts);
  if (ec) return error{errc::invalid_input, "malformed JSON body: " + ec.message(), "invalid_json"};
  if (!v.is_object()) {
    error e{errc::invalid_input, "the body must be a JSON object"};
    e.details.push_back({"body", "must be a JSON object"});
    return e;
  }
  return std::move(v.as_object());
}

const json::value* field_reader::find(std::string_view key, bool required) {
  auto it = o_.find(key);
  if (it == o_.end() || (it->value().is_null() && !required)) {
    if (required) errors_.push_back({std::string(key), "is required"});
    return nullptr;
  }
  return &it->value();
}

std::optional<std::string> field_reader::string(std::string_view key, bool required,
                                                std::size_t max_bytes) {
  auto v = find(key, required);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    errors_.push_back({std::string(key), "must be a string"});
    return std::nullopt;
  }
  if (v->as_string().size() > max_bytes) {
    errors_.push_back({std::string(key), "is too long"});
    return std::nullopt;
  }
  return std::string(v->as_string());
}

std::optional<std::int64_t> field_reader::int64(std::string_view key, bool required,
                                                std::int64_t min, std::int64_t max) {
  auto v = find(key, required);
  if (!v) return std::nullopt;
  std::int64_t n = 0;
  if (v->is_int64()) {
    n = v->as_int64();
  } else if (v->is_uint64()) {
    errors_.push_back({std::string(key), "is out of range"});
    return std::nullopt;
  } else {
    errors_.push_back({std::string(key), "must be an integer"});
    return std::nullopt;
  }
  if (n < min || n > max) {
    errors_.push_back({std::string(key),
                       "must be between " + std::to_string(min) + " and " + std::to_string(max)});
    return std::nullopt;
  }
  return n;
}

const json::array* field_reader::array(std::string_view key, bool required) {
  auto v = find(key, required);
  if (!v) return nullptr;
  if (!v->is_array()) {
    errors_.push_back({std::string(key), "must be an array"});
    return nullptr;
  }
  return &v->as_array();
}

const json::object* field_reader::object(std::string_view key, bool required) {
  auto v = find(key, required);
  if (!v) return nullptr;
  if (!v->is_object()) {
    errors_.push_back({std::string(key), "must be an object"});
    return nullptr;
  }
  return &v->as_object();
}

void field_reader::fail(std::string field, std::string reason) {
  errors_.push_back({std::move(field), std::move(reason)});
}

error field_reader::failure() const {
  return invalid_fields(errors_);
}

std::optional<std::int64_t> query_int(const request_context& ctx, std::string_view name,
                                      std::int64_t min, std::int64_t max,
                                      std::vector<field_error>& errors) {
  auto v = ctx.query_param(name);
  if (!v) return std::nullopt;
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc{} || p != v->data() + v->size() || v->empty()) {
    errors.push_back({std::string(name), "must be an integer"});
    return std::nullopt;
  }
  if (n < min || n > max) {
    errors.push_back({std::string(name),
                      "must be between " + std::to_string(min) + " and " + std::to_string(max)});
    return std::nullopt;
  }
  return n;
}

result<std::int64_t> path_id(const request_context& ctx, std::string_view name) {
  auto v = ctx.param(name);
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc{} || p != v.data() + v.size() || n <= 0)
    return invalid_fields({{std::string(name), "must be a positive integer"}});
  return n;
}

}  // namespace chat4all::api
