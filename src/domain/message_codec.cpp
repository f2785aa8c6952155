#include "domain/message_codec.hpp"

#include <boost/container/small_vector.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <span>

#include "core/clock.hpp"
#include "core/crypto.hpp"

namespace chat4all {
namespace json = boost::json;

namespace {
// Appends `s` as a JSON string literal (quoted, escaped as boost::json escapes it).
void append_json_string(std::string& out, std::string_view s) {
  out += json::serialize(json::string_view(s.data(), s.size()));
}
}  // namespace

// Written directly rather than through a json::object: the same JSON text (keys in this
// order), without building and freeing a DOM per message.
std::string encode_log_record(const accepted_message& m) {
  std::string out;
  out.reserve(160 + m.payload_json.size() + m.payload_json.size() / 8 + m.traceparent.size());
  out += R"({"v":1,"id":")";
  out += m.message_id.str();
  out += R"(","c":)";
  out += std::to_string(m.conversation);
  out += R"(,"s":)";
  out += std::to_string(m.sender);
  out += R"(,"p":)";
  append_json_string(out, m.payload_json);
  out += R"(,"ch":[)";
  for (std::size_t i = 0; i < m.channels.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, m.channels[i]);
  }
  out += R"(],"t":)";
  out += std::to_string(m.accepted_at);
  out += R"(,"h":)";
  out += std::to_string(m.content_hash);
  if (!m.traceparent.empty()) {
    out += R"(,"tp":)";
    append_json_string(out, m.traceparent);
  }
  out += '}';
  return out;
}

result<accepted_message> decode_log_record(std::string_view bytes) {
  // The DOM lives in a stack block (growing on the heap only for big records) and is
  // dropped at once.
  unsigned char buf[4096];
  json::monotonic_resource mr(buf, sizeof buf);
  boost::system::error_code ec;
  auto v = json::parse(bytes, ec, &mr);
  if (ec || !v.is_object()) return error{errc::invalid_input, "log record is not a JSON object"};
  const auto& o = v.get_object();
  try {
    accepted_message m;
    auto id = uuid::parse(o.at("id").as_string());
    if (!id) return error{errc::invalid_input, "log record has a bad message id"};
    m.message_id = *id;
    m.conversation = o.at("c").to_number<std::int64_t>();
    m.sender = o.at("s").to_number<std::int64_t>();
    m.payload_json = std::string(o.at("p").as_string());
    for (const auto& c : o.at("ch").as_array()) m.channels.emplace_back(c.as_string());
    m.accepted_at = o.at("t").to_number<std::int64_t>();
    m.content_hash = o.at("h").to_number<std::uint64_t>();
    if (auto it = o.find("tp"); it != o.end()) m.traceparent = std::string(it->value().as_string());
    return m;
  } catch (const std::exception& e) {
    return error{errc::invalid_input, std::string("log record field error: ") + e.what()};
  }
}

std::string message_json(const message& m) {
  return json::serialize(message_object(m));
}

json::object message_object(const message& m) {
  json::object o;
  o["message_id"] = m.message_id.str();
  o["conversation_id"] = m.conversation;
  o["seq"] = m.seq;
  o["sender_id"] = m.sender;
  if (!m.sender_username.empty()) o["sender_username"] = m.sender_username;
  boost::system::error_code ec;
  auto payload = json::parse(m.payload_json, ec);
  o["payload"] = ec ? json::value(m.payload_json) : std::move(payload);
  json::array ch;
  for (const auto& c : m.channels) ch.emplace_back(c);
  o["channels"] = std::move(ch);
  o["status"] = to_string(m.status);
  o["created_at"] = format_rfc3339(m.created_at);
  return o;
}

std::string encode_channels(const std::vector<std::string>& channels) {
  if (channels.empty()) return "[]";
  boost::json::array a;
  a.reserve(channels.size());
  for (const auto& ch : channels) a.emplace_back(ch);
  return boost::json::serialize(a);
}

std::vector<std::string> decode_channels(std::string_view json) {
  std::vector<std::string> out;
  if (json.size() <= 2) return out;  // "[]"
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& e : v.as_array())
    if (e.is_string()) out.emplace_back(e.as_string());
  return out;
}

std::uint64_t content_hash(conversation_id conv, user_id sender, std::string_view payload_json,
                           const std::vector<std::string>& channels) {
  // SHA-256 over "conv\nsender\npayload[\nchannel]..." (stored hashes depend on these bytes),
  // hashed piece by piece instead of concatenated.
  char conv_text[24];
  char sender_text[24];
  const auto conv_end = std::to_chars(conv_text, conv_text + sizeof conv_text, conv).ptr;
  const auto sender_end = std::to_chars(sender_text, sender_text + sizeof sender_text, sender).ptr;
  boost::container::small_vector<std::string_view, 8> parts{
      std::string_view(conv_text, conv_end), "\n", std::string_view(sender_text, sender_end), "\n",
      payload_json};
  for (const auto& c : channels) {
    parts.push_back("\n");
    parts.push_back(c);
  }
  return crypto::hash64(std::span<const std::string_view>(parts.data(), parts.size()));
}

}  // namespace chat4all
