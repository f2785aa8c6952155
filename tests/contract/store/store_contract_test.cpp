// Contract suite for chat4all::store: every adapter must pass it unchanged. A typed,
// parameterised suite; each adapter contributes a factory (see sqlite_factory.hpp).

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "contract/store/postgres_factory.hpp"
#include "contract/store/sqlite_factory.hpp"
#include "domain/ports/store.hpp"
#include "support/run_sync.hpp"

namespace chat4all::testing {
namespace {

namespace asio = boost::asio;
using std::chrono::steady_clock;

constexpr timestamp_us t0 = 1'700'000'000'000'000;

// Drives one store call to completion.
template <class T>
T run(task<T> t) {
  return run_sync(std::move(t));
}

std::string text_payload(const std::string& s) {
  return R"({"type":"text","content":")" + s + R"("})";
}

accepted_message make_msg(conversation_id conv, user_id sender, const std::string& text,
                          timestamp_us at, uuid id = uuid::random()) {
  accepted_message m;
  m.message_id = id;
  m.conversation = conv;
  m.sender = sender;
  m.payload_json = text_payload(text);
  m.accepted_at = at;
  m.content_hash = std::hash<std::string>{}(m.payload_json) ^ static_cast<std::uint64_t>(conv);
  return m;
}

template <class Factory>
class store_contract : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (requires { Factory::skip_reason(); })
      if (auto why = Factory::skip_reason()) GTEST_SKIP() << *why;
    store_ = factory_.open();
    auto v = run(store_->migrate());
    ASSERT_TRUE(v) << v.err().message;
    ASSERT_GE(*v, 1);
  }

  void reopen() {
    store_.reset();
    store_ = factory_.open();
    auto v = run(store_->migrate());
    ASSERT_TRUE(v) << v.err().message;
  }

  user_id add_user(const std::string& name, timestamp_us at = t0) {
    auto u = run(store_->create_user(name, "hash-" + name, at));
    EXPECT_TRUE(u) << u.err().message;
    return u ? u->id : 0;
  }

  conversation_id add_conv(conversation_type type, std::vector<user_id> members,
                           timestamp_us at = t0, std::string name = {}) {
    auto c = run(store_->create_conversation(type, std::move(name), "", std::move(members), at));
    EXPECT_TRUE(c) << c.err().message;
    return c ? c->conv.id : 0;
  }

  std::vector<message> send(std::vector<accepted_message> batch, timestamp_us now) {
    auto r = run(store_->store_messages(std::move(batch), now));
    EXPECT_TRUE(r) << r.err().message;
    return r ? std::move(*r) : std::vector<message>{};
  }

  message send_one(conversation_id conv, user_id sender, const std::string& text, timestamp_us at) {
    auto out = send({make_msg(conv, sender, text, at)}, at + 10);
    EXPECT_EQ(out.size(), 1u);
    return out.empty() ? message{} : out.front();
  }

  std::vector<seq_t> all_seqs(conversation_id conv) {
    history_query q;
    q.conversation = conv;
    q.after_seq = 0;
    q.limit = 1'000'000;
    auto h = run(store_->history(q));
    EXPECT_TRUE(h);
    std::vector<seq_t> out;
    if (h)
      for (auto& m : h->messages) out.push_back(m.seq);
    return out;
  }

  Factory factory_;
  std::unique_ptr<store> store_;
};

TYPED_TEST_SUITE_P(store_contract);

// ---- schema and health ----

TYPED_TEST_P(store_contract, migrate_is_idempotent_and_ping_works) {
  auto v1 = run(this->store_->migrate());
  auto v2 = run(this->store_->migrate());
  ASSERT_TRUE(v1);
  ASSERT_TRUE(v2);
  EXPECT_EQ(*v1, *v2);
  EXPECT_TRUE(run(this->store_->ping()));
}

TYPED_TEST_P(store_contract, data_survives_close_and_reopen) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_conv(conversation_type::private_chat, {a, b});
  this->send_one(c, a, "one", t0 + 1);
  this->send_one(c, b, "two", t0 + 2);
  ASSERT_TRUE(run(this->store_->mark_read(c, b, std::nullopt, t0 + 3)));

  this->reopen();
  auto v = run(this->store_->migrate());
  ASSERT_TRUE(v);

  auto u = run(this->store_->find_user_by_name("alice"));
  ASSERT_TRUE(u);
  EXPECT_EQ(u->id, a);
  auto conv = run(this->store_->find_conversation(c));
  ASSERT_TRUE(conv);
  EXPECT_EQ(conv->member_ids, (std::vector<user_id>{std::min(a, b), std::max(a, b)}));
  EXPECT_EQ(this->all_seqs(c), (std::vector<seq_t>{1, 2}));
  // The counter survives too: the next message continues the sequence.
  EXPECT_EQ(this->send_one(c, a, "three", t0 + 4).seq, 3);
  auto list = run(this->store_->list_conversations(b, 10, 0));
  ASSERT_TRUE(list);
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].unread_count, 1);  // "three"; "one" was read before the restart
}

// ---- users ----

TYPED_TEST_P(store_contract, users_create_find_and_conflict) {
  auto u = run(this->store_->create_user("alice", "h1", t0));
  ASSERT_TRUE(u);
  EXPECT_GT(u->id, 0);
  EXPECT_EQ(u->username, "alice");
  EXPECT_EQ(u->password_hash, "h1");
  EXPECT_EQ(u->created_at, t0);

  auto dup = run(this->store_->create_user("alice", "h2", t0 + 1));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.err().code, errc::conflict);
  // Usernames are case-sensitive.
  EXPECT_TRUE(run(this->store_->create_user("Alice", "h3", t0)));

  auto by_name = run(this->store_->find_user_by_name("alice"));
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->id, u->id);
  EXPECT_EQ(by_name->password_hash, "h1");
  auto by_id = run(this->store_->find_user(u->id));
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id->username, "alice");

  auto missing = run(this->store_->find_user_by_name("nobody"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::not_found);
  auto missing_id = run(this->store_->find_user(999'999));
  ASSERT_FALSE(missing_id);
  EXPECT_EQ(missing_id.err().code, errc::not_found);
}

TYPED_TEST_P(store_contract, existing_users_returns_sorted_known_subset) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto r = run(this->store_->existing_users({b, 424242, a, b, -1}));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (std::vector<user_id>{std::min(a, b), std::max(a, b)}));
  auto none = run(this->store_->existing_users({}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// ---- tokens ----

TYPED_TEST_P(store_contract, refresh_rotation_and_reuse_detection) {
  auto a = this->add_user("alice");
  refresh_token_record first{"hash-1", a, "fam-1", t0 + 1000};
  ASSERT_TRUE(run(this->store_->insert_refresh(first)));

  refresh_token_record second{"hash-2", 0, "", t0 + 2000};
  auto r = run(this->store_->rotate_refresh("hash-1", second, t0 + 10));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(*r, a);

  // The replacement works (and belongs to the same family and user).
  refresh_token_record third{"hash-3", 0, "", t0 + 3000};
  auto r3 = run(this->store_->rotate_refresh("hash-2", third, t0 + 20));
  ASSERT_TRUE(r3);
  EXPECT_EQ(*r3, a);

  // Reusing a rotated token fails and revokes the whole family, including the newest one.
  auto reuse = run(this->store_->rotate_refresh("hash-1", {"hash-x", 0, "", t0 + 5000}, t0 + 30));
  ASSERT_FALSE(reuse);
  EXPECT_EQ(reuse.err().code, errc::unauthenticated);
  auto after = run(this->store_->rotate_refresh("hash-3", {"hash-4", 0, "", t0 + 5000}, t0 + 40));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.err().code, errc::unauthenticated);
  // The rejected replacement was not stored.
  auto ghost = run(this->store_->rotate_refresh("hash-x", {"hash-5", 0, "", t0 + 5000}, t0 + 50));
  ASSERT_FALSE(ghost);
  EXPECT_EQ(ghost.err().code, errc::unauthenticated);
}

TYPED_TEST_P(store_contract, refresh_unknown_expired_and_revoked) {
  auto a = this->add_user("alice");
  auto unknown = run(this->store_->rotate_refresh("nope", {"n2", 0, "", t0 + 100}, t0));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.err().code, errc::unauthenticated);

  ASSERT_TRUE(run(this->store_->insert_refresh({"exp", a, "fam-e", t0 + 100})));
  auto expired = run(this->store_->rotate_refresh("exp", {"exp2", 0, "", t0 + 500}, t0 + 100));
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.err().code, errc::unauthenticated);

  ASSERT_TRUE(run(this->store_->insert_refresh({"r1", a, "fam-r", t0 + 1000})));
  ASSERT_TRUE(run(this->store_->insert_refresh({"r2", a, "fam-r", t0 + 1000})));
  ASSERT_TRUE(run(this->store_->insert_refresh({"other", a, "fam-o", t0 + 1000})));
  ASSERT_TRUE(run(this->store_->revoke_refresh("r1")));
  auto revoked = run(this->store_->rotate_refresh("r2", {"r3", 0, "", t0 + 2000}, t0 + 1));
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.err().code, errc::unauthenticated);
  // Another family is untouched.
  EXPECT_TRUE(run(this->store_->rotate_refresh("other", {"other2", 0, "", t0 + 2000}, t0 + 1)));

  auto missing = run(this->store_->revoke_refresh("does-not-exist"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::not_found);
}

TYPED_TEST_P(store_contract, access_revocations_expire) {
  ASSERT_TRUE(run(this->store_->revoke_access("jti-short", t0 + 100)));
  ASSERT_TRUE(run(this->store_->revoke_access("jti-long", t0 + 1000)));
  ASSERT_TRUE(run(this->store_->revoke_access("jti-long", t0 + 1000)));  // idempotent

  auto all = run(this->store_->revoked_access(t0));
  ASSERT_TRUE(all);
  auto sorted = *all;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::string>{"jti-long", "jti-short"}));

  auto later = run(this->store_->revoked_access(t0 + 100));
  ASSERT_TRUE(later);
  EXPECT_EQ(*later, (std::vector<std::string>{"jti-long"}));
  auto gone = run(this->store_->revoked_access(t0 + 1000));
  ASSERT_TRUE(gone);
  EXPECT_TRUE(gone->empty());
}

// ---- conversations ----

TYPED_TEST_P(store_contract, private_pair_is_unique) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_user("carol");
  auto first =
      run(this->store_->create_conversation(conversation_type::private_chat, "", "", {b, a}, t0));
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->conv.type, conversation_type::private_chat);
  EXPECT_EQ(first->conv.member_ids, (std::vector<user_id>{std::min(a, b), std::max(a, b)}));
  EXPECT_EQ(first->conv.created_at, t0);

  auto again = run(
      this->store_->create_conversation(conversation_type::private_chat, "", "", {a, b}, t0 + 5));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->conv.id, first->conv.id);
  EXPECT_EQ(again->conv.created_at, t0);
  EXPECT_EQ(again->conv.member_ids, first->conv.member_ids);

  auto other =
      run(this->store_->create_conversation(conversation_type::private_chat, "", "", {a, c}, t0));
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->created);
  EXPECT_NE(other->conv.id, first->conv.id);

  // A group with the same two members plus one is a different conversation.
  auto group =
      run(this->store_->create_conversation(conversation_type::group, "g", "d", {a, b, c}, t0));
  ASSERT_TRUE(group);
  EXPECT_TRUE(group->created);
}

TYPED_TEST_P(store_contract, find_conversation_with_sorted_members) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_user("carol");
  auto created = run(this->store_->create_conversation(conversation_type::group, "team", "about us",
                                                       {c, a, b}, t0 + 7));
  ASSERT_TRUE(created);
  auto found = run(this->store_->find_conversation(created->conv.id));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->type, conversation_type::group);
  EXPECT_EQ(found->name, "team");
  EXPECT_EQ(found->description, "about us");
  EXPECT_EQ(found->created_at, t0 + 7);
  std::vector<user_id> expect{a, b, c};
  std::sort(expect.begin(), expect.end());
  EXPECT_EQ(found->member_ids, expect);
  EXPECT_EQ(created->conv.member_ids, expect);

  auto missing = run(this->store_->find_conversation(987654));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::not_found);
}

// ---- messages ----

TYPED_TEST_P(store_contract, store_messages_assigns_seq_and_history) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_conv(conversation_type::private_chat, {a, b});
  auto m1 = make_msg(c, a, "hello", t0 + 1);
  m1.channels = {"whatsapp", "telegram"};
  auto m2 = make_msg(c, b, "hi", t0 + 2);
  auto stored = this->send({m1, m2}, t0 + 100);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].seq, 1);
  EXPECT_EQ(stored[1].seq, 2);
  EXPECT_EQ(stored[0].status, message_status::delivered);
  EXPECT_EQ(stored[0].message_id, m1.message_id);
  EXPECT_EQ(stored[0].created_at, t0 + 1);
  EXPECT_EQ(stored[0].channels, m1.channels);

  auto got = run(this->store_->get_message(m1.message_id));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->msg.seq, 1);
  EXPECT_EQ(got->msg.conversation, c);
  EXPECT_EQ(got->msg.sender, a);
  EXPECT_EQ(got->msg.sender_username, "alice");
  EXPECT_EQ(got->msg.payload_json, m1.payload_json);
  EXPECT_EQ(got->msg.channels, m1.channels);
  EXPECT_EQ(got->msg.content_hash, m1.content_hash);
  EXPECT_EQ(got->msg.status, message_status::delivered);
  EXPECT_EQ(got->msg.created_at, t0 + 1);
  ASSERT_EQ(got->history.size(), 2u);
  EXPECT_EQ(got->history[0].status, message_status::accepted);
  EXPECT_EQ(got->history[0].at, t0 + 1);
  EXPECT_EQ(got->history[1].status, message_status::delivered);
  EXPECT_EQ(got->history[1].at, t0 + 100);
  EXPECT_EQ(got->read_by, 0);

  auto missing = run(this->store_->get_message(uuid::random()));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::not_found);
}

TYPED_TEST_P(store_contract, store_messages_is_idempotent_without_seq_gaps) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_conv(conversation_type::private_chat, {a, b});
  auto m1 = make_msg(c, a, "one", t0 + 1);
  auto m2 = make_msg(c, a, "two", t0 + 2);
  // Same id twice in one batch: stored once.
  auto first = this->send({m1, m1, m2}, t0 + 10);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].seq, 1);
  EXPECT_EQ(first[1].seq, 2);
  // Across batches: already stored ids are skipped and do not consume a seq.
  auto m3 = make_msg(c, b, "three", t0 + 3);
  auto second = this->send({m2, m3, m1}, t0 + 20);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].message_id, m3.message_id);
  EXPECT_EQ(second[0].seq, 3);
  EXPECT_TRUE(this->send({m1}, t0 + 30).empty());
  EXPECT_EQ(this->all_seqs(c), (std::vector<seq_t>{1, 2, 3}));
  // The original is kept (first write wins).
  auto got = run(this->store_->get_message(m1.message_id));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->msg.seq, 1);
  ASSERT_EQ(got->history.size(), 2u);
  EXPECT_EQ(got->history[1].at, t0 + 10);
}

TYPED_TEST_P(store_contract, store_messages_skips_unknown_conversation) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_conv(conversation_type::private_chat, {a, b});
  auto out = this->send(
      {make_msg(c, a, "ok", t0), make_msg(777777, a, "lost", t0), make_msg(c, a, "ok2", t0)},
      t0 + 1);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].seq, 2);
  EXPECT_TRUE(this->send({}, t0).empty());
}

TYPED_TEST_P(store_contract, store_failed_takes_the_next_seq_with_failed_history) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_conv(conversation_type::private_chat, {a, b}, t0);
  auto m1 = make_msg(c, a, "one", t0 + 1);
  auto bad = make_msg(c, b, "poison", t0 + 2);
  bad.channels = {"telegram"};
  auto m3 = make_msg(c, a, "three", t0 + 3);
  ASSERT_EQ(this->send({m1}, t0 + 10).size(), 1u);
  auto r = run(this->store_->store_failed(bad, "store failed: disk on fire", t0 + 20));
  ASSERT_TRUE(r) << r.err().message;
  auto after = this->send({m3}, t0 + 30);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].seq, 3);
  EXPECT_EQ(this->all_seqs(c), (std::vector<seq_t>{1, 2, 3}));

  auto got = run(this->store_->get_message(bad.message_id));
  ASSERT_TRUE(got) << got.err().message;
  EXPECT_EQ(got->msg.seq, 2);
  EXPECT_EQ(got->msg.status, message_status::failed);
  EXPECT_EQ(got->msg.sender, b);
  EXPECT_EQ(got->msg.payload_json, bad.payload_json);
  EXPECT_EQ(got->msg.channels, bad.channels);
  EXPECT_EQ(got->msg.content_hash, bad.content_hash);
  EXPECT_EQ(got->msg.created_at, t0 + 2);
  ASSERT_EQ(got->history.size(), 2u);
  EXPECT_EQ(got->history[0].status, message_status::accepted);
  EXPECT_EQ(got->history[0].at, t0 + 2);
  EXPECT_EQ(got->history[1].status, message_status::failed);
  EXPECT_EQ(got->history[1].at, t0 + 20);
  EXPECT_EQ(got->history[1].detail, "store failed: disk on fire");
  EXPECT_TRUE(got->history[1].channel.empty());

  // The idempotency check answers for it like for any stored message.
  auto hashes = run(this->store_->find_content_hashes({bad.message_id}));
  ASSERT_TRUE(hashes);
  ASSERT_EQ(hashes->size(), 1u);
  EXPECT_EQ((*hashes)[0], std::optional<std::uint64_t>(bad.content_hash));

  // In history it is an ordinary row with status FAILED.
  history_query q;
  q.conversation = c;
  q.after_seq = 0;
  auto h = run(this->store_->history(q));
  ASSERT_TRUE(h);
  ASSERT_EQ(h->messages.size(), 3u);
  EXPECT_EQ(h->messages[1].message_id, bad.message_id);
  EXPECT_EQ(h->messages[1].status, message_status::failed);

  // A read mark passing over it leaves it FAILED (terminal).
  auto mark = run(this->store_->mark_read(c, a, std::nullopt, t0 + 40));
  ASSERT_TRUE(mark);
  EXPECT_EQ(mark->last_read_seq, 3);
  EXPECT_TRUE(mark->now_read.empty());
  got = run(this->store_->get_message(bad.message_id));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->msg.status, message_status::failed);
  EXPECT_EQ(got->history.size(), 2u);
}

TYPED_TEST_P(store_contract, store_failed_is_idempotent) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_conv(conversation_type::private_chat, {a, b}, t0);
  auto bad = make_msg(c, a, "poison", t0 + 1);
  ASSERT_TRUE(run(this->store_->store_failed(bad, "first", t0 + 10)));
  // Again (a replay of the dead-letter path): nothing changes, no seq consumed.
  ASSERT_TRUE(run(this->store_->store_failed(bad, "second", t0 + 20)));
  // store_messages skips it like any stored id.
  EXPECT_TRUE(this->send({bad}, t0 + 30).empty());
  auto ok_msg = make_msg(c, a, "fine", t0 + 2);
  auto stored = this->send({ok_msg}, t0 + 40);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].seq, 2);
  // A message already stored (delivered) is left as it is.
  ASSERT_TRUE(run(this->store_->store_failed(ok_msg, "too late", t0 + 50)));
  EXPECT_EQ(this->all_seqs(c), (std::vector<seq_t>{1, 2}));

  auto got = run(this->store_->get_message(bad.message_id));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->msg.seq, 1);
  EXPECT_EQ(got->msg.status, message_status::failed);
  ASSERT_EQ(got->history.size(), 2u);
  EXPECT_EQ(got->history[1].detail, "first");
  EXPECT_EQ(got->history[1].at, t0 + 10);
  auto fine = run(this->store_->get_message(ok_msg.message_id));
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->msg.status, message_status::delivered);
  ASSERT_EQ(fine->history.size(), 2u);
  EXPECT_EQ(fine->history[1].status, message_status::delivered);

  // The conversation list shows it as the last message when it is the newest.
  auto late = make_msg(c, b, "late poison", t0 + 100);
  ASSERT_TRUE(run(this->store_->store_failed(late, "x", t0 + 110)));
  auto page = run(this->store_->list_conversations(a, 10, 0));
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 1u);
  ASSERT_TRUE(page->items[0].last_message);
  EXPECT_EQ(page->items[0].last_message->message_id, late.message_id);
  EXPECT_EQ(page->items[0].last_message->seq, 3);

  auto unknown = run(this->store_->store_failed(make_msg(777777, a, "x", t0), "r", t0));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.err().code, errc::not_found);
}

TYPED_TEST_P(store_contract, find_content_hashes_in_order) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_conv(conversation_type::private_chat, {a, b});
  auto m1 = make_msg(c, a, "one", t0);
  auto m2 = make_msg(c, a, "two", t0);
  m2.content_hash = 0xFFFF'FFFF'FFFF'FFF0ull;  // the full unsigned range round-trips
  this->send({m1, m2}, t0);
  auto unknown = uuid::random();
  auto r = run(this->store_->find_content_hashes({m2.message_id, unknown, m1.message_id}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0], m2.content_hash);
  EXPECT_FALSE((*r)[1].has_value());
  EXPECT_EQ((*r)[2], m1.content_hash);
}

// What was stored before a restart is still found (the SQLite adapter answers fresh ids from
// a filter loaded at migrate(): it must hold every stored id, also FAILED ones), and so is
// what is stored after it.
TYPED_TEST_P(store_contract, find_content_hashes_after_reopen) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_conv(conversation_type::private_chat, {a, b});
  auto m1 = make_msg(c, a, "one", t0);
  auto bad = make_msg(c, b, "poison", t0 + 1);
  this->send({m1}, t0);
  ASSERT_TRUE(run(this->store_->store_failed(bad, "x", t0 + 2)));
  this->reopen();
  auto m2 = make_msg(c, a, "two", t0 + 3);
  this->send({m2}, t0 + 3);
  auto unknown = uuid::random();
  auto r = run(
      this->store_->find_content_hashes({unknown, m1.message_id, bad.message_id, m2.message_id}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_FALSE((*r)[0].has_value());
  EXPECT_EQ((*r)[1], m1.content_hash);
  EXPECT_EQ((*r)[2], bad.content_hash);
  EXPECT_EQ((*r)[3], m2.content_hash);
}

namespace {
task<void> writer_job(store* s, std::vector<conversation_id> convs, user_id sender, int batches,
                      int per_batch, int worker) {
  for (int i = 0; i < batches; ++i) {
    std::vector<accepted_message> batch;
    for (int j = 0; j < per_batch; ++j) {
      auto conv = convs[static_cast<std::size_t>(j + i + worker) % convs.size()];
      batch.push_back(make_msg(conv, sender, "w" + std::to_string(worker), t0 + i));
    }
    // Every third batch repeats its first message: a retry must not leave a gap.
    if (i % 3 == 0) batch.push_back(batch.front());
    auto r = co_await s->store_messages(std::move(batch), t0 + i);
    EXPECT_TRUE(r);
  }
}

// Reads while the writers run: every snapshot of a conversation is a gap-free prefix.
task<void> reader_job(store* s, std::vector<conversation_id> convs, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    history_query q;
    q.conversation = convs[static_cast<std::size_t>(i) % convs.size()];
    q.after_seq = 0;
    q.limit = 100'000;
    auto h = co_await s->history(q);
    EXPECT_TRUE(h);
    if (!h) co_return;
    for (std::size_t k = 0; k < h->messages.size(); ++k)
      EXPECT_EQ(h->messages[k].seq, static_cast<seq_t>(k + 1));
  }
}
}  // namespace

TYPED_TEST_P(store_contract, seq_is_gap_free_under_concurrent_writers) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_user("carol");
  std::vector<conversation_id> convs{this->add_conv(conversation_type::private_chat, {a, b}),
                                     this->add_conv(conversation_type::private_chat, {a, c}),
                                     this->add_conv(conversation_type::group, {a, b, c})};
  constexpr int workers = 6, batches = 15, per_batch = 7;
  asio::io_context io;
  std::vector<std::future<void>> done;
  for (int w = 0; w < workers; ++w)
    done.push_back(asio::co_spawn(
        io, writer_job(this->store_.get(), convs, a, batches, per_batch, w), asio::use_future));
  for (int r = 0; r < 2; ++r)
    done.push_back(asio::co_spawn(io, reader_job(this->store_.get(), convs, 40), asio::use_future));
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  for (auto& f : done) f.get();

  std::size_t total = 0;
  for (auto conv : convs) {
    auto seqs = this->all_seqs(conv);
    for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], static_cast<seq_t>(i + 1));
    total += seqs.size();
  }
  EXPECT_EQ(total, static_cast<std::size_t>(workers * batches * per_batch));
}

TYPED_TEST_P(store_contract, history_pages_both_directions) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_conv(conversation_type::private_chat, {a, b});
  std::vector<accepted_message> batch;
  for (int i = 1; i <= 10; ++i)
    batch.push_back(make_msg(c, i % 2 ? a : b, std::to_string(i), t0 + i));
  this->send(batch, t0 + 100);

  auto seqs = [](const history_page& p) {
    std::vector<seq_t> out;
    for (auto& m : p.messages) out.push_back(m.seq);
    return out;
  };
  history_query q;
  q.conversation = c;
  q.limit = 4;
  auto newest = run(this->store_->history(q));
  ASSERT_TRUE(newest);
  EXPECT_EQ(seqs(*newest), (std::vector<seq_t>{10, 9, 8, 7}));
  EXPECT_TRUE(newest->has_more);
  EXPECT_EQ(newest->messages[0].sender_username, "bob");
  EXPECT_EQ(newest->messages[1].sender_username, "alice");
  EXPECT_EQ(newest->messages[0].payload_json, text_payload("10"));
  EXPECT_EQ(newest->messages[0].status, message_status::delivered);

  q.before_seq = 7;
  auto older = run(this->store_->history(q));
  ASSERT_TRUE(older);
  EXPECT_EQ(seqs(*older), (std::vector<seq_t>{6, 5, 4, 3}));
  EXPECT_TRUE(older->has_more);
  q.before_seq = 3;
  auto oldest = run(this->store_->history(q));
  ASSERT_TRUE(oldest);
  EXPECT_EQ(seqs(*oldest), (std::vector<seq_t>{2, 1}));
  EXPECT_FALSE(oldest->has_more);

  history_query up;
  up.conversation = c;
  up.limit = 5;
  up.after_seq = 3;
  auto catchup = run(this->store_->history(up));
  ASSERT_TRUE(catchup);
  EXPECT_EQ(seqs(*catchup), (std::vector<seq_t>{4, 5, 6, 7, 8}));
  EXPECT_TRUE(catchup->has_more);
  up.after_seq = 8;
  auto tail = run(this->store_->history(up));
  ASSERT_TRUE(tail);
  EXPECT_EQ(seqs(*tail), (std::vector<seq_t>{9, 10}));
  EXPECT_FALSE(tail->has_more);
  up.after_seq = 5;
  up.limit = 5;
  auto exact = run(this->store_->history(up));
  ASSERT_TRUE(exact);
  EXPECT_EQ(seqs(*exact), (std::vector<seq_t>{6, 7, 8, 9, 10}));
  EXPECT_FALSE(exact->has_more);

  history_query off;
  off.conversation = c;
  off.limit = 3;
  off.offset = 2;
  auto skipped = run(this->store_->history(off));
  ASSERT_TRUE(skipped);
  EXPECT_EQ(seqs(*skipped), (std::vector<seq_t>{8, 7, 6}));
  EXPECT_TRUE(skipped->has_more);

  history_query none;
  none.conversation = 55555;
  auto empty = run(this->store_->history(none));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->messages.empty());
  EXPECT_FALSE(empty->has_more);
}

// ---- list and read marks ----

TYPED_TEST_P(store_contract, list_conversations_orders_by_activity_with_unread) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_user("carol");
  auto ab = this->add_conv(conversation_type::private_chat, {a, b}, t0 + 1);
  auto ac = this->add_conv(conversation_type::private_chat, {a, c}, t0 + 2);
  auto grp = this->add_conv(conversation_type::group, {a, b, c}, t0 + 3, "team");
  auto empty = this->add_conv(conversation_type::group, {a, b, c}, t0 + 50, "quiet");
  (void)this->add_conv(conversation_type::private_chat, {b, c}, t0 + 60);  // not alice's

  this->send_one(ab, b, "hello alice", t0 + 10);
  this->send_one(ab, a, "hi bob", t0 + 11);
  this->send_one(ab, b, "how are you", t0 + 12);
  this->send_one(grp, c, "group hi", t0 + 40);
  std::string long_text;
  for (int i = 0; i < 120; ++i) long_text += "\xC3\xA9";  // 120 x 'é' (2 bytes each)
  this->send_one(ac, c, long_text, t0 + 100);
  auto file_msg = make_msg(grp, b, "", t0 + 30);
  file_msg.payload_json = R"({"type":"file","file_id":"6f1c1a52-3d6f-4a8e-9d3b-5b8f2f1e2a10"})";
  this->send({file_msg}, t0 + 30);  // older than "group hi" in time, but the last seq

  auto page = run(this->store_->list_conversations(a, 10, 0));
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(page->total, 4);
  ASSERT_EQ(page->items.size(), 4u);
  // ac (t0+100), empty (created t0+50), grp (t0+40), ab (t0+12)
  EXPECT_EQ(page->items[0].id, ac);
  EXPECT_EQ(page->items[1].id, empty);
  EXPECT_EQ(page->items[2].id, grp);
  EXPECT_EQ(page->items[3].id, ab);

  const auto& first = page->items[0];
  EXPECT_EQ(first.unread_count, 1);
  EXPECT_EQ(first.member_count, 2);
  EXPECT_EQ(first.type, conversation_type::private_chat);
  ASSERT_TRUE(first.last_message);
  EXPECT_EQ(first.last_message->preview, long_text.substr(0, 200));  // 100 characters
  EXPECT_EQ(first.last_message->sender, c);
  EXPECT_EQ(first.last_message->seq, 1);
  EXPECT_EQ(first.last_message->created_at, t0 + 100);

  EXPECT_FALSE(page->items[1].last_message);
  EXPECT_EQ(page->items[1].unread_count, 0);
  EXPECT_EQ(page->items[1].name, "quiet");
  EXPECT_EQ(page->items[1].created_at, t0 + 50);
  EXPECT_EQ(page->items[1].member_count, 3);

  EXPECT_EQ(page->items[2].unread_count, 2);
  ASSERT_TRUE(page->items[2].last_message);
  EXPECT_EQ(page->items[2].last_message->preview, "[file]");
  EXPECT_EQ(page->items[2].last_message->message_id, file_msg.message_id);

  EXPECT_EQ(page->items[3].unread_count, 2);  // alice's own message is not unread
  ASSERT_TRUE(page->items[3].last_message);
  EXPECT_EQ(page->items[3].last_message->preview, "how are you");

  // Paging.
  auto p2 = run(this->store_->list_conversations(a, 2, 2));
  ASSERT_TRUE(p2);
  EXPECT_EQ(p2->total, 4);
  ASSERT_EQ(p2->items.size(), 2u);
  EXPECT_EQ(p2->items[0].id, grp);
  auto past = run(this->store_->list_conversations(a, 2, 10));
  ASSERT_TRUE(past);
  EXPECT_TRUE(past->items.empty());
  EXPECT_EQ(past->total, 4);

  // Reading clears the count.
  ASSERT_TRUE(run(this->store_->mark_read(ab, a, std::nullopt, t0 + 200)));
  auto after = run(this->store_->list_conversations(a, 10, 0));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->items[3].unread_count, 0);

  auto nobody = run(this->store_->list_conversations(424242, 10, 0));
  ASSERT_TRUE(nobody);
  EXPECT_TRUE(nobody->items.empty());
  EXPECT_EQ(nobody->total, 0);
}

TYPED_TEST_P(store_contract, mark_read_errors_and_never_moves_back) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_user("carol");
  auto ab = this->add_conv(conversation_type::private_chat, {a, b});

  auto unknown = run(this->store_->mark_read(99999, a, std::nullopt, t0));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.err().code, errc::not_found);
  auto outsider = run(this->store_->mark_read(ab, c, std::nullopt, t0));
  ASSERT_FALSE(outsider);
  EXPECT_EQ(outsider.err().code, errc::forbidden);

  auto nothing = run(this->store_->mark_read(ab, a, std::nullopt, t0));
  ASSERT_TRUE(nothing);
  EXPECT_EQ(nothing->last_read_seq, 0);
  EXPECT_EQ(nothing->messages_marked_read, 0);

  std::vector<accepted_message> batch;
  for (int i = 1; i <= 6; ++i) batch.push_back(make_msg(ab, i <= 4 ? b : a, "m", t0 + i));
  auto stored = this->send(batch, t0 + 10);  // seq 1-4 from bob, 5-6 from alice

  auto r1 = run(this->store_->mark_read(ab, a, 2, t0 + 20));
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->conversation, ab);
  EXPECT_EQ(r1->last_read_seq, 2);
  EXPECT_EQ(r1->messages_marked_read, 2);
  ASSERT_EQ(r1->now_read.size(), 2u);
  EXPECT_EQ(r1->now_read[0], stored[0].message_id);
  EXPECT_EQ(r1->now_read[1], stored[1].message_id);

  auto back = run(this->store_->mark_read(ab, a, 1, t0 + 21));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->last_read_seq, 2);
  EXPECT_EQ(back->messages_marked_read, 0);
  EXPECT_TRUE(back->now_read.empty());

  auto beyond = run(this->store_->mark_read(ab, a, 1000, t0 + 22));
  ASSERT_TRUE(beyond);
  EXPECT_EQ(beyond->last_read_seq, 6);
  EXPECT_EQ(beyond->messages_marked_read, 2);  // seq 3, 4 (5, 6 are alice's own)
  EXPECT_EQ(beyond->now_read.size(), 2u);

  auto got = run(this->store_->get_message(stored[2].message_id));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->msg.status, message_status::read);
  ASSERT_EQ(got->history.size(), 3u);
  EXPECT_EQ(got->history[2].status, message_status::read);
  EXPECT_EQ(got->history[2].at, t0 + 22);
  EXPECT_EQ(got->read_by, 1);
  // Alice's own messages were not read by bob yet.
  auto own = run(this->store_->get_message(stored[4].message_id));
  ASSERT_TRUE(own);
  EXPECT_EQ(own->msg.status, message_status::delivered);
  EXPECT_EQ(own->read_by, 0);

  auto bob = run(this->store_->mark_read(ab, b, std::nullopt, t0 + 30));
  ASSERT_TRUE(bob);
  EXPECT_EQ(bob->messages_marked_read, 2);
  EXPECT_EQ(bob->now_read.size(), 2u);
  own = run(this->store_->get_message(stored[4].message_id));
  ASSERT_TRUE(own);
  EXPECT_EQ(own->msg.status, message_status::read);
  EXPECT_EQ(own->read_by, 1);
}

TYPED_TEST_P(store_contract, group_message_is_read_when_every_other_member_read_it) {
  auto a = this->add_user("alice");
  auto b = this->add_user("bob");
  auto c = this->add_user("carol");
  auto g = this->add_conv(conversation_type::group, {a, b, c});
  auto m1 = this->send_one(g, a, "from alice", t0 + 1);
  auto m2 = this->send_one(g, b, "from bob", t0 + 2);

  auto rb = run(this->store_->mark_read(g, b, std::nullopt, t0 + 10));
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->messages_marked_read, 1);  // alice's; bob's own is not counted
  EXPECT_TRUE(rb->now_read.empty());       // carol has not read it yet
  auto got = run(this->store_->get_message(m1.message_id));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->msg.status, message_status::delivered);
  EXPECT_EQ(got->read_by, 1);

  auto rc = run(this->store_->mark_read(g, c, std::nullopt, t0 + 20));
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->messages_marked_read, 2);
  // alice's message: bob and carol read it -> READ. bob's: alice has not -> not yet.
  ASSERT_EQ(rc->now_read.size(), 1u);
  EXPECT_EQ(rc->now_read[0], m1.message_id);
  got = run(this->store_->get_message(m1.message_id));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->msg.status, message_status::read);
  EXPECT_EQ(got->read_by, 2);

  auto ra = run(this->store_->mark_read(g, a, std::nullopt, t0 + 30));
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->messages_marked_read, 1);
  ASSERT_EQ(ra->now_read.size(), 1u);
  EXPECT_EQ(ra->now_read[0], m2.message_id);
  auto got2 = run(this->store_->get_message(m2.message_id));
  ASSERT_TRUE(got2);
  EXPECT_EQ(got2->msg.status, message_status::read);
  ASSERT_EQ(got2->history.size(), 3u);
  EXPECT_EQ(got2->history.back().at, t0 + 30);
}

// ---- performance (printed, loosely bounded so sanitizer builds pass) ----

TYPED_TEST_P(store_contract, store_messages_throughput) {
  std::vector<user_id> users;
  for (int i = 0; i < 20; ++i) users.push_back(this->add_user("u" + std::to_string(i)));
  std::vector<conversation_id> convs;
  for (int i = 0; i < 100; ++i)
    convs.push_back(this->add_conv(conversation_type::group,
                                   {users[i % 20], users[(i + 1) % 20], users[(i + 2) % 20]}));
  const std::string text(180, 'x');  // ~200-byte payloads, typical chat text
  constexpr int batches = 30, per_batch = 1000;
  std::vector<std::vector<accepted_message>> prepared(batches);
  for (int b = 0; b < batches; ++b)
    for (int i = 0; i < per_batch; ++i) {
      auto conv = convs[static_cast<std::size_t>(b * per_batch + i) % convs.size()];
      prepared[b].push_back(make_msg(conv, users[i % 20], text, t0 + b));
    }
  // CPU time as well as wall time: on a shared 2-core machine the wall time also measures
  // whoever else is busy (for an out-of-process database the CPU figure covers the client only).
  auto start = steady_clock::now();
  auto cpu_start = std::clock();
  std::size_t stored = 0;
  for (auto& batch : prepared) stored += this->send(std::move(batch), t0 + 1000).size();
  double secs = std::chrono::duration<double>(steady_clock::now() - start).count();
  double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  EXPECT_EQ(stored, static_cast<std::size_t>(batches * per_batch));
  std::printf(
      "[ perf     ] %s store_messages: %d x %d rows in %.3f s = %.0f rows/s "
      "(process CPU %.3f s = %.0f rows per CPU-second)\n",
      TypeParam::name, batches, per_batch, secs, stored / secs, cpu, stored / cpu);
}

TYPED_TEST_P(store_contract, list_conversations_with_1000_conversations) {
  auto me = this->add_user("me");
  std::vector<user_id> peers;
  for (int i = 0; i < 1000; ++i) peers.push_back(this->add_user("peer" + std::to_string(i)));
  std::vector<conversation_id> convs;
  for (int i = 0; i < 1000; ++i)
    convs.push_back(this->add_conv(conversation_type::private_chat, {me, peers[i]}, t0 + i));
  // 20 messages per conversation, 10 from each side, spread in time.
  std::vector<accepted_message> batch;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 1000; ++i)
      batch.push_back(make_msg(convs[i], round % 2 ? me : peers[i], "message text",
                               t0 + 10'000 + round * 1000 + i));
    if (batch.size() >= 2000) {
      this->send(std::move(batch), t0 + 100'000);
      batch.clear();
    }
  }
  this->send(std::move(batch), t0 + 100'000);
  // Half of the conversations read up to the middle.
  for (int i = 0; i < 1000; i += 2)
    ASSERT_TRUE(run(this->store_->mark_read(convs[i], me, 10, t0 + 200'000)));

  std::vector<double> ms;
  for (int i = 0; i < 30; ++i) {
    auto start = steady_clock::now();
    auto page = run(this->store_->list_conversations(me, 50, (i % 3) * 50));
    ms.push_back(std::chrono::duration<double, std::milli>(steady_clock::now() - start).count());
    ASSERT_TRUE(page);
    ASSERT_EQ(page->items.size(), 50u);
    EXPECT_EQ(page->total, 1000);
    if (i == 0) {
      // Newest activity first: the last round's last message went to the last conversation.
      EXPECT_EQ(page->items[0].id, convs[999]);
      EXPECT_EQ(page->items[0].unread_count, 10);  // peer's 10 messages, none read (odd index)
      EXPECT_EQ(page->items[1].unread_count, 5);   // even index: read up to seq 10
    }
  }
  std::sort(ms.begin(), ms.end());
  std::printf(
      "[ perf     ] %s list_conversations (1000 convs, 20k msgs, limit 50): "
      "median %.2f ms, p95 %.2f ms\n",
      TypeParam::name, ms[ms.size() / 2], ms[ms.size() * 95 / 100]);
  EXPECT_LT(ms[ms.size() * 95 / 100], 500.0);
}

REGISTER_TYPED_TEST_SUITE_P(
    store_contract, migrate_is_idempotent_and_ping_works, data_survives_close_and_reopen,
    users_create_find_and_conflict, existing_users_returns_sorted_known_subset,
    refresh_rotation_and_reuse_detection, refresh_unknown_expired_and_revoked,
    access_revocations_expire, private_pair_is_unique, find_conversation_with_sorted_members,
    store_messages_assigns_seq_and_history, store_messages_is_idempotent_without_seq_gaps,
    store_messages_skips_unknown_conversation, store_failed_takes_the_next_seq_with_failed_history,
    store_failed_is_idempotent, find_content_hashes_in_order, find_content_hashes_after_reopen,
    seq_is_gap_free_under_concurrent_writers, history_pages_both_directions,
    list_conversations_orders_by_activity_with_unread, mark_read_errors_and_never_moves_back,
    group_message_is_read_when_every_other_member_read_it, store_messages_throughput,
    list_conversations_with_1000_conversations);

using store_factories = ::testing::Types<sqlite_factory, postgres_factory>;

struct factory_names {
  template <class T>
  static std::string GetName(int) {
    return T::name;
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(adapters, store_contract, store_factories, factory_names);

}  // namespace
}  // namespace chat4all::testing
