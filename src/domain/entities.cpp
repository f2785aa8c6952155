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
