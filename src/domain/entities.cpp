#include "domain/entities.hpp"

namespace chat4all {

const char* to_string(conversation_type t) noexcept {
  return t == conversation_type::group ? "group" : "private";
}

std::optional<conversation_type> parse_conversation_type(std::string_view s) noexcept {
  if (s == "private") return conversation_type::private_chat;
  if (s == "group") return conversation_type::group;
  return std::nullopt;
}

const char* to_string(message_status s) noexcept {
  switch (s) {
    case message_status::accepted:
      return "ACCEPTED";
    case message_status::delivered:
      return "DELIVERED";
    case message_status::read:
      return "READ";
    case message_status::failed:
      return "FAILED";
  }
  return "ACCEPTED";
}

}  // namespace chat4all

namespace chat4all {

namespace {
constexpr std::pair<upload_status, const char*> upload_status_names[] = {
    {upload_status::uploading, "UPLOADING"},
    {upload_status::merging, "MERGING"},
    {upload_status::completed, "COMPLETED"},
    {upload_status::failed, "FAILED"},
    {upload_status::expired, "EXPIRED"}};
}  // namespace

const char* to_string(upload_status s) noexcept {
  for (const auto& [v, name] : upload_status_names)
    if (v == s) return name;
  return "UPLOADING";
}

std::optional<upload_status> parse_upload_status(std::string_view s) noexcept {
  for (const auto& [v, name] : upload_status_names)
    if (s == name) return v;
  return std::nullopt;
}

}  // namespace chat4all
