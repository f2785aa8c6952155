// Contract of the outbox port (domain/ports/outbox.hpp) on its adapter, pg_store. Skipped
// without CHAT4ALL_TEST_PG_URL (scripts/test.sh provides it).

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>

#include "contract/store/postgres_factory.hpp"
#include "domain/events.hpp"
#include "domain/ports/outbox.hpp"
#include "support/run_sync.hpp"

namespace chat4all::testing {
namespace {

using namespace std::chrono_literals;

class outbox_contract : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = postgres_factory::skip_reason()) GTEST_SKIP() << *why;
    store_ = factory_.open();
    auto v = run_sync(store_->migrate());
    ASSERT_TRUE(v) << v.err().message;
    box_ = dynamic_cast<outbox*>(store_.get());
    ASSERT_NE(box_, nullptr);
  }

  std::vector<outbox_entry> oldest(std::size_t n = 1000) {
    auto r = run_sync(box_->oldest(n));
    EXPECT_TRUE(r) << r.err().message;
    return r ? *r : std::vector<outbox_entry>{};
  }
  std::int64_t backlog() {
    auto r = run_sync(box_->backlog());
    EXPECT_TRUE(r);
    return r ? *r : -1;
  }
  bool lease(const std::string& holder, std::chrono::milliseconds ttl = 10s) {
    auto r = run_sync(box_->acquire_lease(holder, ttl));
    EXPECT_TRUE(r);
    return r && *r;
  }

  postgres_factory factory_;
  std::unique_ptr<store> store_;
  outbox* box_ = nullptr;
};

TEST_F(outbox_contract, enqueued_records_come_back_oldest_first_with_their_topic_key_and_value) {
  EXPECT_EQ(backlog(), 0);
  EXPECT_TRUE(oldest().empty());
  ASSERT_TRUE(run_sync(box_->enqueue("messages", {{"7", "a"}, {"8", "b"}, {"7", "c"}}, 100)));
  ASSERT_TRUE(run_sync(box_->enqueue("message_status_updates", {{"9", "{\"x\":\"é\\n\"}"}}, 200)));
  ASSERT_TRUE(run_sync(box_->enqueue("messages", {}, 300)));  // nothing to do

  auto es = oldest();
  ASSERT_EQ(es.size(), 4u);
  EXPECT_EQ(backlog(), 4);
  const std::vector<std::tuple<std::string, std::string, std::string>> want = {
      {"messages", "7", "a"},
      {"messages", "8", "b"},
      {"messages", "7", "c"},
      {"message_status_updates", "9", "{\"x\":\"é\\n\"}"}};
  for (std::size_t i = 0; i < es.size(); ++i) {
    EXPECT_EQ(std::tie(es[i].topic, es[i].record.key, es[i].record.value),
              std::tie(std::get<0>(want[i]), std::get<1>(want[i]), std::get<2>(want[i])));
    EXPECT_EQ(es[i].attempts, 0);
    if (i > 0) EXPECT_LT(es[i - 1].id, es[i].id);
  }
  EXPECT_EQ(es[0].created_at, 100);
  EXPECT_EQ(es[3].created_at, 200);
  EXPECT_EQ(oldest(2).size(), 2u);
}

TEST_F(outbox_contract, a_record_keeps_its_traceparent_for_the_relay) {
  // The relay publishes it as the Kafka header `traceparent` (SPEC §7), as a direct append
  // would have.
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ASSERT_TRUE(run_sync(box_->enqueue("messages", {{"7", "a", tp}, {"8", "b"}}, 1)));
  auto es = oldest();
  ASSERT_EQ(es.size(), 2u);
  EXPECT_EQ(es[0].record.traceparent, tp);
  EXPECT_EQ(es[1].record.traceparent, "");
}

TEST_F(outbox_contract, removed_entries_are_gone_and_the_rest_keeps_its_order) {
  ASSERT_TRUE(run_sync(box_->enqueue("messages", {{"1", "a"}, {"1", "b"}, {"1", "c"}}, 1)));
  auto es = oldest();
  ASSERT_EQ(es.size(), 3u);
  ASSERT_TRUE(run_sync(box_->remove({es[0].id, es[1].id})));
  ASSERT_TRUE(run_sync(box_->remove({})));
  ASSERT_TRUE(run_sync(box_->remove({es[0].id})));  // again: nothing happens
  auto left = oldest();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].record.value, "c");
  EXPECT_EQ(backlog(), 1);
}

TEST_F(outbox_contract, failures_are_counted_per_entry) {
  ASSERT_TRUE(run_sync(box_->enqueue("messages", {{"1", "a"}, {"1", "b"}}, 1)));
  auto es = oldest();
  auto a1 = run_sync(box_->note_failure(es[1].id, "too_large: 2 MB"));
  auto a2 = run_sync(box_->note_failure(es[1].id, "too_large: 2 MB"));
  ASSERT_TRUE(a1 && a2);
  EXPECT_EQ(*a1, 1);
  EXPECT_EQ(*a2, 2);
  es = oldest();
  EXPECT_EQ(es[0].attempts, 0);
  EXPECT_EQ(es[1].attempts, 2);
  auto unknown = run_sync(box_->note_failure(es[1].id + 1000, "x"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.err().code, errc::not_found);
}

TEST_F(outbox_contract, one_lease_holder_at_a_time_until_release_or_expiry) {
  EXPECT_TRUE(lease("relay-a"));
  EXPECT_FALSE(lease("relay-b"));
  EXPECT_TRUE(lease("relay-a"));                          // renewal
  ASSERT_TRUE(run_sync(box_->release_lease("relay-b")));  // not the holder: no effect
  EXPECT_FALSE(lease("relay-b"));
  ASSERT_TRUE(run_sync(box_->release_lease("relay-a")));
  EXPECT_TRUE(lease("relay-b", 300ms));
  EXPECT_FALSE(lease("relay-a"));
  std::this_thread::sleep_for(450ms);  // relay-b stopped renewing: its lease expired
  EXPECT_TRUE(lease("relay-a"));
  EXPECT_FALSE(lease("relay-b"));
}

TEST_F(outbox_contract, concurrent_enqueues_keep_each_batch_in_order_and_lose_nothing) {
  constexpr int threads = 4, batches = 25, per_batch = 3;
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int b = 0; b < batches; ++b) {
        std::vector<log_record> rs;
        for (int i = 0; i < per_batch; ++i)
          rs.push_back({std::to_string(t), std::to_string(b * per_batch + i)});
        if (!run_sync(box_->enqueue("messages", std::move(rs), 1))) ++failures;
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto es = oldest(10000);
  ASSERT_EQ(es.size(), static_cast<std::size_t>(threads * batches * per_batch));
  std::map<std::string, int> next;  // per thread (key): values appear in enqueue order
  for (const auto& e : es) {
    EXPECT_EQ(std::stoi(e.record.value), next[e.record.key]) << "key " << e.record.key;
    next[e.record.key] = std::stoi(e.record.value) + 1;
  }
}

// Database-originated events (SPEC §6): committed with their change, in the same transaction.
TEST_F(outbox_contract, a_created_conversation_commits_its_events_with_it) {
  std::vector<user_id> ids;
  for (const char* n : {"ann", "ben"}) {
    auto u = run_sync(store_->create_user(n, "h", 1));
    ASSERT_TRUE(u);
    ids.push_back(u->id);
  }
  int calls = 0;
  events_of<conversation_store::create_outcome> events =
      [&](const conversation_store::create_outcome& o) {
        ++calls;
        change_events out;
        for (auto m : o.conv.member_ids)
          out.emplace_back(user_channel(m), "created " + std::to_string(o.conv.id));
        return out;
      };
  auto c = run_sync(
      store_->create_conversation(conversation_type::private_chat, "", "", ids, 10, events));
  ASSERT_TRUE(c) << c.err().message;
  ASSERT_TRUE(c->created);
  auto es = oldest();
  ASSERT_EQ(es.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(es[i].topic, conversation_events_topic);
    EXPECT_EQ(es[i].record.key, std::to_string(c->conv.id));
    auto ev = decode_change_event(es[i].record.value);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->first, user_channel(ids[i]));
    EXPECT_EQ(ev->second, "created " + std::to_string(c->conv.id));
  }
  // The same private pair again: nothing created, no event.
  auto again = run_sync(
      store_->create_conversation(conversation_type::private_chat, "", "", ids, 20, events));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->created);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(backlog(), 2);
}

TEST_F(outbox_contract, a_read_mark_that_moves_commits_its_events_and_one_that_does_not_none) {
  std::vector<user_id> ids;
  for (const char* n : {"cat", "dan"}) {
    auto u = run_sync(store_->create_user(n, "h", 1));
    ASSERT_TRUE(u);
    ids.push_back(u->id);
  }
  auto c = run_sync(store_->create_conversation(conversation_type::private_chat, "", "", ids, 1));
  ASSERT_TRUE(c);
  accepted_message m;
  m.message_id = uuid::random();
  m.conversation = c->conv.id;
  m.sender = ids[0];
  m.payload_json = R"({"type":"text","content":"hi"})";
  m.accepted_at = 2;
  ASSERT_TRUE(run_sync(store_->store_messages({m}, 3)));
  EXPECT_EQ(backlog(), 0);  // no builder given: nothing written

  events_of<read_mark_result> events = [](const read_mark_result& r) {
    change_events out;
    out.emplace_back(conversation_channel(r.conversation),
                     "read " + std::to_string(r.last_read_seq));
    for (const auto& id : r.now_read)
      out.emplace_back(conversation_channel(r.conversation), id.str());
    return out;
  };
  auto r = run_sync(store_->mark_read(c->conv.id, ids[1], std::nullopt, 4, events));
  ASSERT_TRUE(r) << r.err().message;
  auto es = oldest();
  ASSERT_EQ(es.size(), 2u);
  EXPECT_EQ(decode_change_event(es[0].record.value)->second, "read 1");
  EXPECT_EQ(decode_change_event(es[1].record.value)->second, m.message_id.str());
  auto same = run_sync(store_->mark_read(c->conv.id, ids[1], std::nullopt, 5, events));
  ASSERT_TRUE(same);
  EXPECT_EQ(backlog(), 2);  // the mark did not move: no event
}

}  // namespace
}  // namespace chat4all::testing
