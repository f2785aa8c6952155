// Client frames -> actions, fanout events -> routing fields, gateway events.
#include "ws/protocol.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "domain/events.hpp"

namespace chat4all::ws {
namespace {
namespace json = boost::json;

std::string code_of(std::string_view frame) {
  auto a = parse_action(frame);
  EXPECT_FALSE(a) << frame;
  return a ? "" : a.err().name();
}

TEST(ws_protocol, reads_every_action) {
  auto send = parse_action(
      R"({"action":"send","message_id":"7d4f7c6e-3b0a-4c4e-9a35-0d1c2b3a4f5e","conversation_id":9,)"
      R"("payload":{"type":"text","content":"hi"},"channels":["all"]})");
  ASSERT_TRUE(send) << send.err().message;
  EXPECT_EQ(send->kind, action_kind::send);
  EXPECT_EQ(send->send.conversation, 9);
  EXPECT_EQ(send->conversation, 9);
  EXPECT_EQ(send->send.payload.content, "hi");
  EXPECT_EQ(send->send.message_id.str(), "7d4f7c6e-3b0a-4c4e-9a35-0d1c2b3a4f5e");

  auto read = parse_action(R"({"action":"read","conversation_id":3,"up_to_seq":7})");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->kind, action_kind::read);
  EXPECT_EQ(read->up_to_seq, 7);
  auto read_all = parse_action(R"({"action":"read","conversation_id":3})");
  ASSERT_TRUE(read_all);
  EXPECT_FALSE(read_all->up_to_seq);

  auto typing = parse_action(R"({"action":"typing","conversation_id":3,"typing":false})");
  ASSERT_TRUE(typing);
  EXPECT_FALSE(typing->typing);
  EXPECT_TRUE(parse_action(R"({"action":"typing","conversation_id":3})")->typing);

  auto resume = parse_action(R"({"action":"resume","conversation_id":4,"after_seq":0})");
  ASSERT_TRUE(resume);
  EXPECT_EQ(resume->kind, action_kind::resume);
  EXPECT_EQ(resume->after_seq, 0);
  EXPECT_EQ(parse_action(R"({"action":"subscribe","conversation_id":5})")->kind,
            action_kind::subscribe);
  EXPECT_EQ(parse_action(R"({"action":"unsubscribe","conversation_id":5})")->kind,
            action_kind::unsubscribe);
  EXPECT_EQ(parse_action(R"({"action":"pong"})")->kind, action_kind::pong);
}

TEST(ws_protocol, bad_frames_are_errors_with_codes) {
  EXPECT_EQ(code_of("not json"), "invalid_json");
  EXPECT_EQ(code_of(""), "invalid_json");
  EXPECT_EQ(code_of("[1]"), "invalid_json");
  EXPECT_EQ(code_of(std::string(100, '[') + std::string(100, ']')), "invalid_json");
  EXPECT_EQ(code_of(R"({"action":"fly"})"), "unknown_action");
  EXPECT_EQ(code_of(R"({"action":7})"), "invalid_input");
  EXPECT_EQ(code_of(R"({"nothing":1})"), "invalid_input");
  EXPECT_EQ(code_of(R"({"action":"read"})"), "invalid_input");
  EXPECT_EQ(code_of(R"({"action":"read","conversation_id":0})"), "invalid_input");
  EXPECT_EQ(code_of(R"({"action":"read","conversation_id":"3"})"), "invalid_input");
  EXPECT_EQ(code_of(R"({"action":"read","conversation_id":3,"up_to_seq":-1})"), "invalid_input");
  EXPECT_EQ(code_of(R"({"action":"resume","conversation_id":3})"), "invalid_input");
  EXPECT_EQ(code_of(R"({"action":"typing","conversation_id":3,"typing":"yes"})"), "invalid_input");
  EXPECT_EQ(code_of(R"({"action":"send","conversation_id":3})"), "invalid_input");
}

TEST(ws_protocol, a_rejected_send_still_names_its_message_id) {
  std::string id;
  auto a = parse_action(R"({"action":"send","message_id":"not-a-uuid","conversation_id":3,)"
                        R"("payload":{"type":"text","content":"x"}})",
                        &id);
  ASSERT_FALSE(a);
  EXPECT_EQ(id, "not-a-uuid");
  ASSERT_FALSE(a.err().details.empty());
  EXPECT_EQ(a.err().details[0].field, "message_id");
}

TEST(ws_protocol, inspects_the_events_the_domain_publishes) {
  message m;
  m.message_id = uuid::random();
  m.conversation = 12;
  m.sender = 3;
  m.seq = 41;
  m.payload_json = R"({"type":"text","content":"x"})";
  m.created_at = 1'700'000'000'123'000;
  auto info = inspect_event(event_message_created(m, m.created_at + 5000));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->kind, event_kind::message_created);
  EXPECT_EQ(info->conversation, 12);
  EXPECT_EQ(info->seq, 41);
  EXPECT_EQ(info->accepted_at, m.created_at);

  auto st = inspect_event(event_message_status(m.message_id, 12, message_status::read, 1));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->kind, event_kind::message_status);
  EXPECT_EQ(st->conversation, 12);

  conversation c;
  c.id = 77;
  c.member_ids = {1, 2};
  auto cc = inspect_event(event_conversation_created(c, 1));
  ASSERT_TRUE(cc);
  EXPECT_EQ(cc->kind, event_kind::conversation_created);
  EXPECT_EQ(cc->conversation, 77);

  auto rd = inspect_event(event_conversation_read(12, 4, 9, 1));
  ASSERT_TRUE(rd);
  EXPECT_EQ(rd->kind, event_kind::conversation_read);
  auto ty = inspect_event(typing_event(12, 4, true, 1));
  ASSERT_TRUE(ty);
  EXPECT_EQ(ty->kind, event_kind::typing);
  EXPECT_EQ(ty->actor, 4);
  EXPECT_EQ(ty->conversation, 12);

  EXPECT_FALSE(inspect_event("garbage"));
  EXPECT_FALSE(inspect_event(R"({"no_type":1})"));
  EXPECT_EQ(inspect_event(R"({"type":"something.new"})")->kind, event_kind::other);
}

TEST(ws_protocol, rfc3339_round_trips_with_format) {
  for (timestamp_us t : {timestamp_us{0}, timestamp_us{1'700'000'000'123'000},
                         timestamp_us{1'798'761'599'999'000}}) {
    EXPECT_EQ(parse_rfc3339(format_rfc3339(t)), t) << format_rfc3339(t);
  }
  EXPECT_EQ(parse_rfc3339("2026-11-28T01:37:44Z"), parse_rfc3339("2026-11-28T01:37:44.000Z"));
  EXPECT_EQ(*parse_rfc3339("2026-11-28T01:37:44.5Z") - *parse_rfc3339("2026-11-28T01:37:44Z"),
            500'000);
  for (const char* bad :
       {"", "2026-11-28", "2026-13-28T01:37:44Z", "2026-11-28T01:37:44.Z",
        "2026-11-28T01:37:44+01:00", "2026-11-28 01:37:44Z", "x026-11-28T01:37:44Z"})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

TEST(ws_protocol, gateway_events_are_json_with_type_and_ts) {
  auto check = [](const std::string& s, const char* type) {
    auto v = json::parse(s).as_object();
    EXPECT_EQ(v.at("type").as_string(), type) << s;
    EXPECT_TRUE(v.at("ts").is_string()) << s;
    return v;
  };
  auto c = check(connected_event(5, "abc-1", 25, 1), "connected");
  EXPECT_EQ(c.at("user_id").as_int64(), 5);
  EXPECT_EQ(c.at("connection_id").as_string(), "abc-1");
  EXPECT_EQ(c.at("heartbeat_s").as_int64(), 25);
  error e{errc::invalid_input, "bad"};
  e.details.push_back({"f", "why"});
  auto er = check(error_event(e, 1, "mid", "send"), "error");
  EXPECT_EQ(er.at("code").as_string(), "invalid_input");
  EXPECT_EQ(er.at("message_id").as_string(), "mid");
  EXPECT_EQ(er.at("details").as_array().size(), 1u);
  EXPECT_FALSE(check(error_event(e, 1), "error").contains("message_id"));
  send_request r;
  r.message_id = uuid::random();
  r.conversation = 3;
  auto acc = check(accepted_event(r, 1), "message.accepted");
  EXPECT_EQ(acc.at("message_id").as_string(), r.message_id.str());
  check(typing_event(1, 2, true, 1), "typing");
  check(subscription_event(true, 1, 1), "subscribed");
  check(subscription_event(false, 1, 1), "unsubscribed");
  auto rs = check(resumed_event(1, 5, 1005, 1000, 1), "resumed");
  EXPECT_EQ(rs.at("last_seq").as_int64(), 1005);
  check(ping_event(1), "ping");
}

}  // namespace
}  // namespace chat4all::ws
