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

TEST(ws_protocol, send_batch_reads_its_items_and_rejects_bad_ones_per_item) {
  const std::string id0 = "7d4f7c6e-3b0a-4c4e-9a35-0d1c2b3a4f50";
  const std::string id2 = "7d4f7c6e-3b0a-4c4e-9a35-0d1c2b3a4f52";
  auto a = parse_action(R"({"action":"send_batch","messages":[)"
                        R"({"message_id":")" +
                        id0 +
                        R"(","conversation_id":9,"payload":{"type":"text","content":"one"}},)"
                        R"({"message_id":"not-a-uuid","conversation_id":9,)"
                        R"("payload":{"type":"text","content":"bad"}},)"
                        R"({"message_id":")" +
                        id2 +
                        R"(","conversation_id":4,"payload":{"type":"text","content":"three"}},)"
                        R"(7]})");
  ASSERT_TRUE(a) << a.err().message;
  EXPECT_EQ(a->kind, action_kind::send_batch);
  EXPECT_STREQ(action_name(a->kind), "send_batch");
  auto& b = a->batch;
  ASSERT_EQ(b.size(), 4u);
  ASSERT_EQ(b.valid.size(), 2u);
  EXPECT_EQ(b.valid[0].message_id.str(), id0);
  EXPECT_EQ(b.valid[0].payload.content, "one");
  EXPECT_EQ(b.valid[1].conversation, 4);
  EXPECT_EQ(b.valid_index, (std::vector<std::size_t>{0, 2}));

  // Settled as the message service would: item 0 durable, item 2 refused (not a member).
  std::vector<result<void>> outcomes;
  outcomes.emplace_back(result<void>{});
  outcomes.emplace_back(error{errc::forbidden, "not a member"});
  b.valid.clear();  // send_batch takes them
  b.settle(outcomes);
  EXPECT_EQ(b.accepted, 1u);
  EXPECT_FALSE(b.all_unavailable());
  auto ev = json::parse(batch_accepted_event(b, 1)).as_object();
  EXPECT_EQ(ev.at("type").as_string(), "batch.accepted");
  EXPECT_TRUE(ev.at("ts").is_string());
  const auto& r = ev.at("results").as_array();
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].at("status").as_string(), "accepted");
  EXPECT_EQ(r[0].at("message_id").as_string(), id0);
  EXPECT_EQ(r[0].at("conversation_id").as_int64(), 9);
  EXPECT_EQ(r[1].at("status").as_string(), "rejected");
  EXPECT_EQ(r[1].at("message_id").as_string(), "not-a-uuid");
  EXPECT_EQ(r[1].at("error").at("code").as_string(), "invalid_input");
  EXPECT_NE(std::string(r[1].at("error").at("message").as_string()).find("messages[1].message_id"),
            std::string::npos);
  EXPECT_EQ(r[2].at("status").as_string(), "rejected");
  EXPECT_EQ(r[2].at("message_id").as_string(), id2);
  EXPECT_EQ(r[2].at("error").at("code").as_string(), "forbidden");
  EXPECT_TRUE(r[3].at("message_id").is_null());
  EXPECT_EQ(r[3].at("error").at("code").as_string(), "invalid_input");
}

TEST(ws_protocol, a_malformed_send_batch_is_an_error) {
  auto code = [](const std::string& frame, std::size_t max = 3) {
    auto a = parse_action(frame, nullptr, max);
    EXPECT_FALSE(a) << frame;
    return a ? std::string() : std::string(a.err().name());
  };
  EXPECT_EQ(code(R"({"action":"send_batch"})"), "invalid_input");
  EXPECT_EQ(code(R"({"action":"send_batch","messages":{}})"), "invalid_input");
  EXPECT_EQ(code(R"({"action":"send_batch","messages":"x"})"), "invalid_input");
  EXPECT_EQ(code(R"({"action":"send_batch","messages":[]})"), "invalid_input");
  EXPECT_EQ(code(R"({"action":"send_batch","messages":[1,2,3,4]})"), "invalid_input");
  // Within the limit, items that are not objects are rejected one by one, not the frame.
  auto four = parse_action(R"({"action":"send_batch","messages":[1,2,3,4]})", nullptr, 4);
  ASSERT_TRUE(four);
  EXPECT_EQ(four->batch.size(), 4u);
  EXPECT_TRUE(four->batch.valid.empty());
  auto a = parse_action(R"({"action":"send_batch","messages":[]})", nullptr, 3);
  ASSERT_FALSE(a);
  ASSERT_EQ(a.err().details.size(), 1u);
  EXPECT_EQ(a.err().details[0].field, "messages");
  EXPECT_EQ(a.err().details[0].reason, "must hold 1 to 3 messages");
  // A batch whose every item is refused because the log is down answers as a whole.
  auto all_bad = parse_action(R"({"action":"send_batch","messages":[)"
                              R"({"message_id":"7d4f7c6e-3b0a-4c4e-9a35-0d1c2b3a4f50",)"
                              R"("conversation_id":9,"payload":{"type":"text","content":"x"}}]})");
  ASSERT_TRUE(all_bad);
  std::vector<result<void>> down;
  down.emplace_back(error{errc::unavailable, "log down"});
  all_bad->batch.settle(down);
  EXPECT_TRUE(all_bad->batch.all_unavailable());
  EXPECT_EQ(all_bad->batch.accepted, 0u);
}

}  // namespace
}  // namespace chat4all::ws
