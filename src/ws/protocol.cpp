#include "ws/protocol.hpp"

#include <boost/json.hpp>
#include <boost/json/monotonic_resource.hpp>

#include <algorithm>
#include <ctime>

#include "api/json_input.hpp"
#include "api/message_input.hpp"
#include "domain/events.hpp"

namespace chat4all::ws {
namespace json = boost::json;

namespace {

struct action_entry {
  std::string_view name;
  action_kind kind;
};
constexpr action_entry actions[] = {
    {"send", action_kind::send},           {"send_batch", action_kind::send_batch},
    {"read", action_kind::read},           {"typing", action_kind::typing},
    {"subscribe", action_kind::subscribe}, {"unsubscribe", action_kind::unsubscribe},
    {"resume", action_kind::resume},       {"pong", action_kind::pong},
};

std::int64_t int_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

}  // namespace

const char* action_name(action_kind k) noexcept {
  for (const auto& a : actions)
    if (a.kind == k) return a.name.data();
  return "?";
}

result<client_action> parse_action(std::string_view text, std::string* message_id,
                                   std::size_t batch_max) {
  json::parse_options opts;
  opts.max_depth = 32;
  boost::system::error_code ec;
  // The frame's values live in one block sized for it, freed at once on return (what is
  // kept is copied into the action).
  json::monotonic_resource mr(std::max<std::size_t>(1024, 2 * text.size()));
  auto v = json::parse(text, ec, &mr, opts);
  if (ec)
    return error{errc::invalid_input, "the frame is not JSON: " + ec.message(), "invalid_json"};
  if (!v.is_object())
    return error{errc::invalid_input, "the frame must be a JSON object", "invalid_json"};
  const auto& o = v.as_object();
  api::field_reader f(o);
  auto name = f.string("action", true, 32);
  if (!f.ok()) return f.failure();
  client_action a;
  bool known = false;
  for (const auto& e : actions) {
    if (e.name == *name) {
      a.kind = e.kind;
      known = true;
    }
  }
  if (!known) return error{errc::invalid_input, "unknown action '" + *name + "'", "unknown_action"};

  switch (a.kind) {
    case action_kind::send: {
      std::vector<field_error> errs;
      auto req = api::read_send_request(o, "", errs, message_id);
      if (!req) return api::invalid_fields(std::move(errs));
      a.send = std::move(*req);
      a.conversation = a.send.conversation;
      return a;
    }
    case action_kind::send_batch: {
      auto b = api::read_message_batch(o, batch_max, {});
      if (!b) return b.err();
      a.batch = std::move(*b);
      return a;
    }
    case action_kind::pong:
      return a;
    default:
      break;
  }
  if (auto c = f.int64("conversation_id", true, 1)) a.conversation = *c;
  if (a.kind == action_kind::read) a.up_to_seq = f.int64("up_to_seq", false, 0);
  if (a.kind == action_kind::resume) {
    if (auto s = f.int64("after_seq", true, 0)) a.after_seq = *s;
  }
  if (a.kind == action_kind::typing) {
    if (const auto* t = o.if_contains("typing")) {
      if (t->is_bool())
        a.typing = t->as_bool();
      else
        f.fail("typing", "must be true or false");
    }
  }
  if (!f.ok()) return f.failure();
  return a;
}

std::optional<event_info> inspect_event(std::string_view payload) {
  boost::system::error_code ec;
  auto v = json::parse(payload, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  const auto* type = o.if_contains("type");
  if (!type || !type->is_string()) return std::nullopt;
  const std::string_view t = type->as_string();
  event_info info;
  if (t == "message.created") {
    info.kind = event_kind::message_created;
    if (const auto* m = o.if_contains("message"); m && m->is_object()) {
      const auto& mo = m->as_object();
      info.conversation = int_field(mo, "conversation_id");
      info.seq = int_field(mo, "seq");
      if (const auto* c = mo.if_contains("created_at"); c && c->is_string())
        info.accepted_at = parse_rfc3339(c->as_string()).value_or(0);
    }
    return info;
  }
  if (t == "conversation.created") {
    info.kind = event_kind::conversation_created;
    if (const auto* c = o.if_contains("conversation"); c && c->is_object())
      info.conversation = int_field(c->as_object(), "id");
    return info;
  }
  if (t == "message.status")
    info.kind = event_kind::message_status;
  else if (t == "conversation.read")
    info.kind = event_kind::conversation_read;
  else if (t == "typing")
    info.kind = event_kind::typing;
  info.conversation = int_field(o, "conversation_id");
  info.actor = int_field(o, "user_id");
  return info;
}

event_ptr make_event(std::string payload, event_info info) {
  return std::make_shared<const event>(event{std::move(payload), info});
}

std::optional<timestamp_us> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  auto digits = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
      s.back() != 'Z')
    return std::nullopt;
  auto y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2), mi = digits(14, 2),
       se = digits(17, 2);
  if (!y || !mo || !d || !h || !mi || !se || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 ||
      *mi > 59 || *se > 60)
    return std::nullopt;
  std::int64_t frac_us = 0;
  std::size_t pos = 19;
  if (s[pos] == '.') {
    std::int64_t scale = 100000;
    ++pos;
    if (pos >= s.size() - 1) return std::nullopt;
    for (; pos < s.size() - 1; ++pos) {
      if (s[pos] < '0' || s[pos] > '9') return std::nullopt;
      frac_us += (s[pos] - '0') * scale;
      scale /= 10;
    }
  } else if (pos != s.size() - 1) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = *y - 1900;
  tm.tm_mon = *mo - 1;
  tm.tm_mday = *d;
  tm.tm_hour = *h;
  tm.tm_min = *mi;
  tm.tm_sec = *se;
  const std::time_t secs = timegm(&tm);
  return static_cast<timestamp_us>(secs) * 1'000'000 + frac_us;
}

std::string connected_event(user_id user, std::string_view connection_id, int heartbeat_s,
                            timestamp_us ts) {
  auto o = event_base("connected", ts);
  o["user_id"] = user;
  o["connection_id"] = connection_id;
  o["heartbeat_s"] = heartbeat_s;
  return json::serialize(o);
}

std::string error_event(const error& e, timestamp_us ts, std::string_view message_id,
                        std::string_view action) {
  auto o = event_base("error", ts);
  o["code"] = e.name();
  o["message"] = e.message;
  if (!e.details.empty()) {
    json::array d;
    for (const auto& fe : e.details)
      d.push_back(json::object{{"field", fe.field}, {"reason", fe.reason}});
    o["details"] = std::move(d);
  }
  if (!message_id.empty()) o["message_id"] = message_id;
  if (!action.empty()) o["action"] = action;
  return json::serialize(o);
}

std::string accepted_event(const send_request& r, timestamp_us ts) {
  auto o = event_base("message.accepted", ts);
  o["status"] = "accepted";
  o["message_id"] = r.message_id.str();
  o["conversation_id"] = r.conversation;
  return json::serialize(o);
}

std::string batch_accepted_event(const api::message_batch& b, timestamp_us ts) {
  auto out = json::serialize(event_base("batch.accepted", ts));
  out.pop_back();  // the closing brace: the results follow
  out += R"(,"results":)";
  b.append_results(out);
  out += '}';
  return out;
}

std::string typing_event(conversation_id conv, user_id user, bool typing, timestamp_us ts) {
  auto o = event_base("typing", ts);
  o["conversation_id"] = conv;
  o["user_id"] = user;
  o["typing"] = typing;
  return json::serialize(o);
}

std::string subscription_event(bool subscribed, conversation_id conv, timestamp_us ts) {
  auto o = event_base(subscribed ? "subscribed" : "unsubscribed", ts);
  o["conversation_id"] = conv;
  return json::serialize(o);
}

std::string resumed_event(conversation_id conv, seq_t after_seq, seq_t last_seq,
                          std::int64_t replayed, timestamp_us ts) {
  auto o = event_base("resumed", ts);
  o["conversation_id"] = conv;
  o["after_seq"] = after_seq;
  o["last_seq"] = last_seq;
  o["replayed"] = replayed;
  return json::serialize(o);
}

std::string ping_event(timestamp_us ts) {
  return json::serialize(event_base("ping", ts));
}

}  // namespace chat4all::ws
