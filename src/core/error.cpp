#include "core/error.hpp"

namespace chat4all {
namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "chat4all"; }
  std::string message(int c) const override { return errc_name(static_cast<errc>(c)); }
};
}  // namespace

const std::error_category& chat4all_category() noexcept {
  static const category c;
  return c;
}

bool is_retryable(errc e) noexcept {
  return e == errc::unavailable || e == errc::timeout;
}

const char* errc_name(errc e) noexcept {
  switch (e) {
    case errc::ok:
      return "ok";
    case errc::invalid_input:
      return "invalid_input";
    case errc::unauthenticated:
      return "unauthorized";
    case errc::forbidden:
      return "forbidden";
    case errc::not_found:
      return "not_found";
    case errc::conflict:
      return "conflict";
    case errc::too_large:
      return "payload_too_large";
    case errc::unsupported_media:
      return "unsupported_media_type";
    case errc::rate_limited:
      return "rate_limited";
    case errc::unavailable:
      return "service_unavailable";
    case errc::timeout:
      return "timeout";
    case errc::internal:
      return "internal_error";
  }
  return "internal_error";
}

}  // namespace chat4all
