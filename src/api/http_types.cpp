#include "api/http_types.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace chat4all::api {
namespace {

std::string error_body(std::string_view code, std::string_view message,
                       const std::vector<field_error>* details) {
  boost::json::object err;
  err["code"] = code;
  err["message"] = message;
  if (details && !details->empty()) {
    boost::json::array arr;
    arr.reserve(details->size());
    for (const auto& d : *details) {
      arr.push_back(boost::json::object{{"field", d.field}, {"reason", d.reason}});
    }
    err["details"] = std::move(arr);
  }
  boost::json::object root;
  root["error"] = std::move(err);
  return boost::json::serialize(root);
}

}  // namespace

std::string_view request_context::param(std::string_view name) const {
  for (const auto& [k, v] : path_params) {
    if (k == name) return v;
  }
  return {};
}

std::optional<std::string_view> request_context::query_param(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

response json_response(const request& req, http::status status, std::string body) {
  response res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http::status status_for(errc code) noexcept {
  switch (code) {
    case errc::ok:
      return http::status::ok;
    case errc::invalid_input:
      return http::status::bad_request;
    case errc::unauthenticated:
      return http::status::unauthorized;
    case errc::forbidden:
      return http::status::forbidden;
    case errc::not_found:
      return http::status::not_found;
    case errc::conflict:
      return http::status::conflict;
    case errc::too_large:
      return http::status::payload_too_large;
    case errc::unsupported_media:
      return http::status::unsupported_media_type;
    case errc::rate_limited:
      return http::status::too_many_requests;
    case errc::unavailable:
      return http::status::service_unavailable;
    case errc::timeout:
      return http::status::service_unavailable;
    case errc::internal:
      return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

response error_response(const request& req, const error& e, int retry_after_s) {
  http::status status = status_for(e.code);
  // errc::ok is not an error: answering 200 with an error body would mislead the client.
  if (e.code == errc::ok) status = http::status::internal_server_error;
  response res = json_response(req, status, error_body(e.name(), e.message, &e.details));
  if (status == http::status::unauthorized) {
    res.set(http::field::www_authenticate, "Bearer");
  } else if (status == http::status::too_many_requests ||
             status == http::status::service_unavailable) {
    res.set(http::field::retry_after, std::to_string(retry_after_s > 0 ? retry_after_s : 1));
  }
  return res;
}

response error_response(const request& req, const error& e) {
  return error_response(req, e, 1);
}

response error_response(const request& req, http::status status, std::string_view code,
                        std::string_view message) {
  return json_response(req, status, error_body(code, message, nullptr));
}

}  // namespace chat4all::api
