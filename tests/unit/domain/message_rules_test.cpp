#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>

#include "core/crypto.hpp"
#include "domain/events.hpp"
#include "domain/message_codec.hpp"
#include "fixture.hpp"

namespace chat4all::testing {

struct message_rules : domain_fixture {
  principal a, b, c;
  conversation_id conv = 0;
  message_rules() {
    a = user("alice");
    b = user("bob");
    c = user("carol");
    auto r = run(conversations.create(a, {conversation_type::private_chat, {b.id}, "", ""}));
    conv = r ? r->conv.id : 0;
  }
  std::vector<message> history_of(conversation_id id) {
    history_query q;
    q.conversation = id;
    q.after_seq = 0;
    q.limit = 100;
    auto h = run(conversations.history(a, q));
    EXPECT_TRUE(h);
    return h ? h->messages : std::vector<message>{};
  }
};

TEST_F(message_rules, accepted_message_is_stored_with_seq_after_routing) {
  ASSERT_TRUE(run(messages.send(a, text(conv, "one"))));
  ASSERT_TRUE(run(messages.send(b, text(conv, "two"))));
  EXPECT_EQ(drain(), 2u);
  auto h = history_of(conv);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].seq, 1);
  EXPECT_EQ(h[1].seq, 2);
  EXPECT_EQ(h[1].sender, b.id);
  EXPECT_EQ(h[0].status, message_status::delivered);
}

// The router publishes message.created to the conversation's channel when someone listens
// there, and skips building the event when nobody does.
TEST_F(message_rules, router_publishes_message_created_only_to_listened_channels) {
  const auto before = fan.stats().published;  // conversation.created and such
  ASSERT_TRUE(run(messages.send(a, text(conv, "unheard"))));
  EXPECT_EQ(drain(), 1u);
  EXPECT_EQ(fan.stats().published, before);

  std::vector<std::string> got;
  auto sub = fan.subscribe(conversation_channel(conv),
                           [&](std::string_view, std::string_view p) { got.emplace_back(p); });
  ASSERT_TRUE(run(messages.send(b, text(conv, "heard"))));
  EXPECT_EQ(drain(), 1u);
  ASSERT_EQ(got.size(), 1u);
  auto ev = boost::json::parse(got[0]).as_object();
  EXPECT_EQ(ev.at("type").as_string(), "message.created");
  EXPECT_EQ(ev.at("message").at("seq").as_int64(), 2);
  EXPECT_EQ(ev.at("message").at("payload").at("content").as_string(), "heard");
}

TEST_F(message_rules, same_id_same_content_is_one_message_before_and_after_storing) {
  const auto id = uuid::random();
  ASSERT_TRUE(run(messages.send(a, text(conv, "hello", id))));
  ASSERT_TRUE(run(messages.send(a, text(conv, "hello", id))));  // still in flight
  drain();
  ASSERT_TRUE(run(messages.send(a, text(conv, "hello", id))));  // answered by the store
  drain();
  EXPECT_EQ(history_of(conv).size(), 1u);
}

TEST_F(message_rules, same_id_different_content_conflicts) {
  const auto id = uuid::random();
  ASSERT_TRUE(run(messages.send(a, text(conv, "hello", id))));
  auto in_flight = run(messages.send(a, text(conv, "changed", id)));
  ASSERT_FALSE(in_flight);
  EXPECT_EQ(in_flight.err().code, errc::conflict);
  drain();
  auto stored = run(messages.send(a, text(conv, "changed", id)));
  ASSERT_FALSE(stored);
  EXPECT_EQ(stored.err().code, errc::conflict);
}

TEST_F(message_rules, concurrent_duplicates_produce_one_message) {
  const auto id = uuid::random();
  std::vector<std::future<result<void>>> futures;
  for (int i = 0; i < 50; ++i)
    futures.push_back(
        asio::co_spawn(io, messages.send(a, text(conv, "dup", id)), asio::use_future));
  io.restart();
  io.run();
  for (auto& f : futures) EXPECT_TRUE(f.get());
  drain();
  EXPECT_EQ(history_of(conv).size(), 1u);
}

TEST_F(message_rules, concurrent_retries_of_a_stored_message_all_succeed) {
  const auto id = uuid::random();
  ASSERT_TRUE(run(messages.send(a, text(conv, "dup", id))));
  drain();
  std::vector<std::future<result<void>>> futures;
  for (int i = 0; i < 50; ++i)
    futures.push_back(
        asio::co_spawn(io, messages.send(a, text(conv, "dup", id)), asio::use_future));
  io.restart();
  io.run();
  for (auto& f : futures) {
    auto r = f.get();
    EXPECT_TRUE(r) << r.err().message;
  }
  EXPECT_EQ(history_of(conv).size(), 1u);
}

TEST_F(message_rules, another_sender_reusing_an_id_conflicts) {
  const auto id = uuid::random();
  ASSERT_TRUE(run(messages.send(a, text(conv, "mine", id))));
  auto theirs = run(messages.send(b, text(conv, "mine", id)));
  ASSERT_FALSE(theirs);
  EXPECT_EQ(theirs.err().code, errc::conflict);
}

TEST_F(message_rules, membership_and_payload_rules) {
  auto outsider = run(messages.send(c, text(conv, "hi")));
  ASSERT_FALSE(outsider);
  EXPECT_EQ(outsider.err().code, errc::forbidden);

  auto unknown = run(messages.send(a, text(4242, "hi")));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.err().code, errc::not_found);

  auto empty = run(messages.send(a, text(conv, "")));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.err().code, errc::invalid_input);

  auto huge = run(messages.send(a, text(conv, std::string(64 * 1024 + 1, 'x'))));
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.err().code, errc::invalid_input);
  EXPECT_TRUE(run(messages.send(a, text(conv, std::string(64 * 1024, 'x')))));

  auto req = text(conv, "hi");
  req.channels = {"carrier-pigeon"};
  auto bad_channel = run(messages.send(a, req));
  ASSERT_FALSE(bad_channel);
  EXPECT_EQ(bad_channel.err().code, errc::invalid_input);

  send_request file = text(conv, "");
  file.payload.type = message_payload::kind::file;
  file.payload.file_id = uuid::random();
  auto no_file = run(messages.send(a, file));
  ASSERT_FALSE(no_file);
  EXPECT_EQ(no_file.err().code, errc::invalid_input);
}

TEST_F(message_rules, channels_are_canonical_and_handed_to_connectors) {
  auto req = text(conv, "out");
  req.channels = {"whatsapp", "all", "telegram"};
  ASSERT_TRUE(run(messages.send(a, req)));
  drain();
  auto h = history_of(conv);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].channels,
            (std::vector<std::string>{"instagram", "messenger", "telegram", "whatsapp"}));
  auto consumer = log.subscribe("whatsapp_outgoing", "test");
  auto entries = run(consumer->poll(10, std::chrono::milliseconds(100)));
  ASSERT_TRUE(entries);
  EXPECT_EQ(entries->size(), 1u);
}

TEST_F(message_rules, batch_items_are_independent) {
  std::vector<send_request> batch;
  const auto dup = uuid::random();
  batch.push_back(text(conv, "first", dup));
  batch.push_back(text(conv, "first", dup));  // same id twice in one batch
  batch.push_back(text(4242, "unknown conversation"));
  batch.push_back(text(conv, "third"));
  auto out = run(messages.send_batch(a, std::move(batch)));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(out[0]);
  EXPECT_TRUE(out[1]);
  ASSERT_FALSE(out[2]);
  EXPECT_EQ(out[2].err().code, errc::not_found);
  EXPECT_TRUE(out[3]);
  drain();
  auto h = history_of(conv);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].seq, 2);
}

TEST_F(message_rules, get_hides_other_conversations) {
  const auto id = uuid::random();
  ASSERT_TRUE(run(messages.send(a, text(conv, "secret", id))));
  drain();
  auto mine = run(messages.get(a, id));
  ASSERT_TRUE(mine);
  ASSERT_EQ(mine->history.size(), 2u);
  EXPECT_EQ(mine->history[0].status, message_status::accepted);
  EXPECT_EQ(mine->history[1].status, message_status::delivered);
  auto theirs = run(messages.get(c, id));
  ASSERT_FALSE(theirs);
  EXPECT_EQ(theirs.err().code, errc::not_found);
}

// The direct writers produce exactly the text the boost::json DOM produced before: stored
// content hashes are over the payload text, and log records written by older versions
// must stay readable the same way.
TEST_F(message_rules, payload_and_log_record_text_match_the_json_serialiser) {
  const std::vector<std::string> contents = {
      "plain", "quote \" back \\ slash /", std::string("tab\tnl\n\x01\x1f ctl\0z", 15),
      "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", "</script>\u2028"};
  for (const auto& content : contents) {
    message_payload p;
    p.content = content;
    boost::json::object po;
    po["type"] = "text";
    po["content"] = content;
    EXPECT_EQ(canonical_payload_json(p), boost::json::serialize(po));

    accepted_message m;
    m.message_id = uuid::random();
    m.conversation = 42;
    m.sender = 7;
    m.payload_json = canonical_payload_json(p);
    m.channels = {"telegram", "whatsapp"};
    m.accepted_at = 1'234'567'890'123'456;
    m.content_hash = 0xfedc'ba98'7654'3210ULL;
    m.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    auto reference = [](const accepted_message& x) {
      boost::json::object o;
      o["v"] = 1;
      o["id"] = x.message_id.str();
      o["c"] = x.conversation;
      o["s"] = x.sender;
      o["p"] = x.payload_json;
      boost::json::array ch;
      for (const auto& c : x.channels) ch.emplace_back(c);
      o["ch"] = std::move(ch);
      o["t"] = x.accepted_at;
      o["h"] = x.content_hash;
      if (!x.traceparent.empty()) o["tp"] = x.traceparent;
      return boost::json::serialize(o);
    };
    EXPECT_EQ(encode_log_record(m), reference(m));
    m.channels.clear();
    m.traceparent.clear();
    m.content_hash = 5;
    EXPECT_EQ(encode_log_record(m), reference(m));
    auto back = decode_log_record(encode_log_record(m));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->payload_json, m.payload_json);
  }
  message_payload f;
  f.type = message_payload::kind::file;
  f.file_id = uuid::random();
  boost::json::object fo;
  fo["type"] = "file";
  fo["file_id"] = f.file_id.str();
  EXPECT_EQ(canonical_payload_json(f), boost::json::serialize(fo));
}

TEST_F(message_rules, log_record_round_trip) {
  accepted_message m;
  m.message_id = uuid::random();
  m.conversation = 7;
  m.sender = 3;
  m.payload_json = R"({"type":"text","content":"é \"q\""})";
  m.channels = {"telegram"};
  m.accepted_at = 123456789;
  m.content_hash = 0xfedcba9876543210ULL;
  m.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto back = decode_log_record(encode_log_record(m));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->message_id, m.message_id);
  EXPECT_EQ(back->payload_json, m.payload_json);
  EXPECT_EQ(back->content_hash, m.content_hash);
  EXPECT_EQ(back->traceparent, m.traceparent);
  EXPECT_FALSE(decode_log_record("not json"));
  EXPECT_FALSE(decode_log_record(R"({"id":"x"})"));
}

// Stored content hashes were computed over one concatenated string; the hash must stay the
// same bytes whatever way it is computed (messages accepted before an upgrade would
// otherwise conflict with their own retries).
TEST(content_hash, is_hash64_of_conversation_sender_payload_and_channels_joined_by_newlines) {
  EXPECT_EQ(content_hash(42, 7, R"({"type":"text","text":"hi"})", {}),
            crypto::hash64("42\n7\n{\"type\":\"text\",\"text\":\"hi\"}"));
  EXPECT_EQ(content_hash(9223372036854775807, -1, "{}", {"whatsapp", "telegram"}),
            crypto::hash64("9223372036854775807\n-1\n{}\nwhatsapp\ntelegram"));
  // The reference value: the first 8 bytes of SHA-256 of "1\n2\n{}\nsms" (Python hashlib).
  EXPECT_EQ(content_hash(1, 2, "{}", {"sms"}), 0xa30f399381d1cc8aULL);
}

}  // namespace chat4all::testing
