// The router's failure path (SPEC §6): retries with backoff, then the poisoned message alone
// is marked FAILED and dead-lettered while the rest of its batch is stored; a transient
// failure leaves no trace. Real SQLite and embedded log; faulty_store injects the failures.

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "domain/message_codec.hpp"
#include "fixture.hpp"
#include "pipeline/faulty_store.hpp"

namespace chat4all::testing {
namespace {

// Forwards everything to `inner`; the test stores below override what they break.
class forwarding_store : public message_store {
 public:
  explicit forwarding_store(message_store& inner) : inner_(inner) {}
  task<result<std::vector<message>>> store_messages(std::vector<accepted_message> b,
                                                    timestamp_us now) override {
    return inner_.store_messages(std::move(b), now);
  }
  task<result<void>> store_failed(accepted_message m, std::string reason,
                                  timestamp_us now) override {
    return inner_.store_failed(std::move(m), std::move(reason), now);
  }
  task<result<std::vector<std::optional<std::uint64_t>>>> find_content_hashes(
      std::vector<uuid> ids) override {
    return inner_.find_content_hashes(std::move(ids));
  }
  task<result<message_with_history>> get_message(uuid id) override {
    return inner_.get_message(id);
  }
  task<result<history_page>> history(history_query q) override { return inner_.history(q); }

 protected:
  template <class T>
  static task<result<T>> fail() {
    co_return error(errc::unavailable, "store is down");
  }
  message_store& inner_;
};

// Fails store_failed `failures` times (the store cannot even record the failure), then
// forwards; everything else is forwarded.
class failing_store_failed final : public forwarding_store {
 public:
  failing_store_failed(message_store& inner, int failures)
      : forwarding_store(inner), left_(failures) {}
  task<result<void>> store_failed(accepted_message m, std::string reason,
                                  timestamp_us now) override {
    ++calls;
    if (left_ > 0) {
      --left_;
      return fail<void>();
    }
    return inner_.store_failed(std::move(m), std::move(reason), now);
  }
  int calls = 0;

 private:
  int left_;
};

struct router_failures : domain_fixture {
  principal a, b;
  conversation_id conv = 0;
  obs::metrics_registry router_metrics;  // the router under test's own, to count exactly

  router_failures() {
    a = user("alice");
    b = user("bob");
    auto r = run(conversations.create(a, {conversation_type::private_chat, {b.id}, "", ""}));
    EXPECT_TRUE(r);
    conv = r ? r->conv.id : 0;
  }

  router_config fast() const {
    router_config rc = cfg.router;
    rc.retry_initial_ms = 10;  // 10, 20, 40 ms
    rc.max_retries = 3;
    return rc;
  }

  std::vector<uuid> send_n(int n) {
    std::vector<uuid> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(uuid::random());
      EXPECT_TRUE(
          run(messages.send(i % 2 ? b : a, text(conv, "m" + std::to_string(i), ids.back()))));
    }
    return ids;
  }

  std::vector<message> history_of() {
    history_query q;
    q.conversation = conv;
    q.after_seq = 0;
    q.limit = 100;
    auto h = run(conversations.history(a, q));
    EXPECT_TRUE(h);
    return h ? h->messages : std::vector<message>{};
  }

  std::vector<log_entry> dead_letters(std::chrono::milliseconds wait) {
    auto consumer = log.subscribe(dead_letter_topic, "test");
    auto entries = run(consumer->poll(100, wait));
    EXPECT_TRUE(entries);
    return entries ? *entries : std::vector<log_entry>{};
  }

  std::uint64_t counted(std::string_view name) { return router_metrics.counter(name, "").value(); }
};

TEST_F(router_failures, poisoned_message_is_failed_and_dead_lettered_the_rest_delivered) {
  auto ids = send_n(5);
  const uuid poison = ids[2];
  faulty_store faulty(db, {poison});
  message_router r(log, faulty, fan, channels, inflight, clk, fast(), router_metrics);

  const auto started = std::chrono::steady_clock::now();
  auto drained = run(r.drain());
  ASSERT_TRUE(drained) << drained.err().message;
  EXPECT_EQ(*drained, 5u);
  // 10 + 20 + 40 ms of backoff at least.
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(70));

  // Every message has a seq in acceptance order, gap-free; only the poison is FAILED.
  auto h = history_of();
  ASSERT_EQ(h.size(), 5u);
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].seq, static_cast<seq_t>(i + 1));
    EXPECT_EQ(h[i].message_id, ids[i]);
    EXPECT_EQ(h[i].status, i == 2 ? message_status::failed : message_status::delivered) << i;
  }
  auto got = run(db.get_message(poison));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->msg.status, message_status::failed);
  ASSERT_EQ(got->history.size(), 2u);
  EXPECT_EQ(got->history[0].status, message_status::accepted);
  EXPECT_EQ(got->history[1].status, message_status::failed);
  EXPECT_NE(got->history[1].detail.find("not stored after 3 retries"), std::string::npos)
      << got->history[1].detail;
  EXPECT_NE(got->history[1].detail.find("injected store failure for message " + poison.str()),
            std::string::npos)
      << got->history[1].detail;

  // One dead-letter record: the original log record plus the reason, keyed by conversation.
  auto dlq = dead_letters(std::chrono::milliseconds(1000));
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].key, std::to_string(conv));
  auto v = boost::json::parse(dlq[0].value).as_object();
  EXPECT_EQ(v.at("v").as_int64(), 1);
  EXPECT_EQ(v.at("topic").as_string(), "messages");
  EXPECT_EQ(v.at("message_id").as_string(), poison.str());
  EXPECT_EQ(v.at("reason").as_string(), got->history[1].detail);
  EXPECT_EQ(v.at("failed_at").as_int64(), got->history[1].at);
  EXPECT_EQ(v.at("offset").as_int64(), 2);
  auto original = decode_log_record(v.at("record").as_string());
  ASSERT_TRUE(original);
  EXPECT_EQ(original->message_id, poison);
  EXPECT_EQ(original->conversation, conv);

  EXPECT_EQ(counted("chat4all_messages_failed_total"), 1u);
  EXPECT_EQ(counted("chat4all_dlq_records_total"), 1u);
  EXPECT_EQ(counted("chat4all_messages_stored_total"), 4u);
  // 4 attempts of the batch + the poison alone.
  EXPECT_EQ(counted("chat4all_router_store_errors_total"), 5u);
  EXPECT_EQ(faulty.injected(), 5u);

  // The position is committed: nothing is replayed, and the pipeline goes on.
  auto more = send_n(1);
  auto again = run(r.drain());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 1u);
  EXPECT_EQ(history_of().back().seq, 6);
  EXPECT_EQ(history_of().back().message_id, more[0]);
  EXPECT_EQ(counted("chat4all_dlq_records_total"), 1u);
  // Resending the poisoned message (same content) is answered by the store: accepted, and
  // nothing new is logged.
  ASSERT_TRUE(run(messages.send(a, text(conv, "m2", poison))));
  again = run(r.drain());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
}

TEST_F(router_failures, transient_failure_recovers_within_the_retries) {
  auto ids = send_n(3);
  faulty_store faulty(db, {ids[1]}, 2);  // the batch fails twice, then stores
  message_router r(log, faulty, fan, channels, inflight, clk, fast(), router_metrics);
  auto drained = run(r.drain());
  ASSERT_TRUE(drained) << drained.err().message;
  EXPECT_EQ(*drained, 3u);

  auto h = history_of();
  ASSERT_EQ(h.size(), 3u);
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].seq, static_cast<seq_t>(i + 1));
    EXPECT_EQ(h[i].status, message_status::delivered);
  }
  auto got = run(db.get_message(ids[1]));
  ASSERT_TRUE(got);
  ASSERT_EQ(got->history.size(), 2u);
  EXPECT_EQ(got->history[1].status, message_status::delivered);
  EXPECT_TRUE(dead_letters(std::chrono::milliseconds(200)).empty());
  EXPECT_EQ(counted("chat4all_messages_failed_total"), 0u);
  EXPECT_EQ(counted("chat4all_dlq_records_total"), 0u);
  EXPECT_EQ(counted("chat4all_router_store_errors_total"), 2u);
  EXPECT_EQ(faulty.injected(), 2u);
}

TEST_F(router_failures, no_retries_configured_dead_letters_at_once) {
  auto ids = send_n(2);
  faulty_store faulty(db, {ids[0]});
  auto rc = fast();
  rc.max_retries = 0;
  message_router r(log, faulty, fan, channels, inflight, clk, rc, router_metrics);
  auto drained = run(r.drain());
  ASSERT_TRUE(drained);
  auto h = history_of();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].status, message_status::failed);
  EXPECT_EQ(h[1].status, message_status::delivered);
  EXPECT_EQ(faulty.injected(), 2u);  // the batch once, the poison alone once
  EXPECT_EQ(dead_letters(std::chrono::milliseconds(1000)).size(), 1u);
}

TEST_F(router_failures, a_store_that_cannot_record_the_failure_keeps_the_batch) {
  auto ids = send_n(3);
  faulty_store faulty(db, {ids[1]});
  failing_store_failed down(faulty, 1);
  message_router r(log, down, fan, channels, inflight, clk, fast(), router_metrics);

  // The first pass stores ids[0], cannot record ids[1] as FAILED: the step fails, nothing is
  // committed nor dead-lettered.
  auto first = run(r.drain());
  ASSERT_FALSE(first);
  EXPECT_EQ(first.err().code, errc::unavailable);
  EXPECT_EQ(history_of().size(), 1u);
  EXPECT_TRUE(dead_letters(std::chrono::milliseconds(100)).empty());

  // The next pass resumes the same batch (the consumer would not return it again).
  auto second = run(r.drain());
  ASSERT_TRUE(second) << second.err().message;
  EXPECT_EQ(*second, 3u);
  auto h = history_of();
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].status, message_status::delivered);
  EXPECT_EQ(h[1].status, message_status::failed);
  EXPECT_EQ(h[2].status, message_status::delivered);
  EXPECT_EQ(h[2].seq, 3);
  EXPECT_EQ(down.calls, 2);
  EXPECT_EQ(dead_letters(std::chrono::milliseconds(1000)).size(), 1u);
  EXPECT_EQ(counted("chat4all_messages_failed_total"), 1u);
  EXPECT_EQ(counted("chat4all_messages_stored_total"), 2u);
}

TEST_F(router_failures, undecodable_record_is_dead_lettered) {
  ASSERT_TRUE(run(log.append(messages_topic, {{"42", "not a message"}})));
  auto ids = send_n(1);
  message_router r(log, db, fan, channels, inflight, clk, fast(), router_metrics);
  auto drained = run(r.drain());
  ASSERT_TRUE(drained);
  EXPECT_EQ(*drained, 2u);
  EXPECT_EQ(history_of().size(), 1u);
  auto dlq = dead_letters(std::chrono::milliseconds(1000));
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].key, "42");
  auto v = boost::json::parse(dlq[0].value).as_object();
  EXPECT_FALSE(v.contains("message_id"));
  EXPECT_EQ(v.at("record").as_string(), "not a message");
  EXPECT_TRUE(v.at("reason").as_string().starts_with("undecodable record"));
  EXPECT_EQ(counted("chat4all_router_poison_records_total"), 1u);
  EXPECT_EQ(counted("chat4all_dlq_records_total"), 1u);
  EXPECT_EQ(counted("chat4all_messages_failed_total"), 0u);
}

// router.linger_ms: an idle router stores the first message at once; while messages keep
// arriving, a partial poll waits `linger` so that one transaction takes what came meanwhile.
TEST_F(router_failures, linger_gathers_a_steady_stream_and_never_delays_the_first_message) {
  auto rc = fast();
  rc.linger_ms = 600;
  rc.poll_wait_ms = 20;
  message_router r(log, db, fan, channels, inflight, clk, rc, router_metrics);
  auto& batches = router_metrics.histogram("chat4all_router_batch_messages", "",
                                           {1, 10, 50, 100, 250, 500, 1000, 2000, 5000});
  std::vector<uuid> ids;
  std::chrono::steady_clock::duration first_stored{};
  auto scenario = [&]() -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor);
    auto sleep = [&](int ms) {
      t.expires_after(std::chrono::milliseconds(ms));
      return t.async_wait(asio::use_awaitable);
    };
    const auto started = std::chrono::steady_clock::now();
    ids.push_back(uuid::random());
    EXPECT_TRUE(co_await messages.send(a, text(conv, "first", ids.back())));
    while (batches.count() < 1) co_await sleep(2);  // the idle router does not linger
    first_stored = std::chrono::steady_clock::now() - started;
    for (int i = 0; i < 5; ++i) {  // a stream: each poll after the first is partial
      ids.push_back(uuid::random());
      EXPECT_TRUE(co_await messages.send(b, text(conv, "m" + std::to_string(i), ids.back())));
      co_await sleep(5);
    }
    for (int i = 0; i < 1000 && batches.sum() < 6; ++i) co_await sleep(5);
    r.stop();
  };
  asio::co_spawn(io, r.run(), asio::detached);
  run(scenario());
  EXPECT_LT(first_stored, std::chrono::milliseconds(500));
  // The first message alone, then the stream in one lingering transaction (two if the
  // machine stalled the sender for longer than the linger; without it: one per message).
  EXPECT_EQ(batches.sum(), 6.0);
  EXPECT_LE(batches.count(), 3u);
  auto h = history_of();
  ASSERT_EQ(h.size(), 6u);
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].message_id, ids[i]);
    EXPECT_EQ(h[i].seq, static_cast<seq_t>(i + 1));
  }
}

// Stores through `inner`, failing the `fail_call`-th store_messages call once (transient),
// and failing every call (store_failed too) while `down`; records the first message id of
// every store_messages call.
class recording_store final : public forwarding_store {
 public:
  recording_store(message_store& inner, int fail_call)
      : forwarding_store(inner), fail_call_(fail_call) {}
  task<result<std::vector<message>>> store_messages(std::vector<accepted_message> b,
                                                    timestamp_us now) override {
    firsts.push_back(b.empty() ? uuid{} : b.front().message_id);
    if (fail_after_first && calls > 0) down = true;
    if (++calls == fail_call_ || down) return fail<std::vector<message>>();
    return inner_.store_messages(std::move(b), now);
  }
  task<result<void>> store_failed(accepted_message m, std::string reason,
                                  timestamp_us now) override {
    if (down) return fail<void>();
    return inner_.store_failed(std::move(m), std::move(reason), now);
  }
  int calls = 0;
  bool down = false;
  bool fail_after_first = false;  // go down at the second store_messages call
  std::vector<uuid> firsts;

 private:
  int fail_call_;
};

TEST_F(router_failures, a_backlog_is_stored_pipelined_in_log_order_through_a_failure) {
  auto ids = send_n(55);  // 6 batches of 10 (the last one partial)
  auto rc = fast();
  rc.batch_size = 10;
  recording_store rec(db, /*fail_call=*/2);
  message_router r(log, rec, fan, channels, inflight, clk, rc, router_metrics);
  auto drained = run(r.drain());
  ASSERT_TRUE(drained) << drained.err().message;
  EXPECT_EQ(*drained, 55u);
  // While one batch was stored the next was polled and decoded.
  EXPECT_GE(counted("chat4all_router_prefetched_batches_total"), 3u);
  // Batch 2 failed once and was retried before batch 3 (prefetched meanwhile) was stored.
  const std::vector<uuid> expected_firsts = {ids[0],  ids[10], ids[10], ids[20],
                                             ids[30], ids[40], ids[50]};
  EXPECT_EQ(rec.firsts, expected_firsts);
  EXPECT_EQ(counted("chat4all_router_store_errors_total"), 1u);
  // Every message once, in acceptance order, gap-free.
  auto h = history_of();
  ASSERT_EQ(h.size(), 55u);
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].message_id, ids[i]) << i;
    EXPECT_EQ(h[i].seq, static_cast<seq_t>(i + 1)) << i;
  }
  // Everything was committed: a second drain finds nothing.
  auto again = run(r.drain());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
}

TEST_F(router_failures, a_batch_left_pending_by_a_store_outage_comes_before_the_prefetched_one) {
  auto ids = send_n(30);  // 3 batches of 10
  auto rc = fast();
  rc.batch_size = 10;
  rc.max_retries = 1;
  recording_store rec(db, /*fail_call=*/0);
  message_router r(log, rec, fan, channels, inflight, clk, rc, router_metrics);
  // Batch 1 is stored; then the store goes down: batch 2 fails even to be marked FAILED, so
  // the step gives up and keeps it pending, while batch 3 was prefetched meanwhile.
  rec.fail_after_first = true;
  auto first = run(r.drain());
  ASSERT_FALSE(first);
  EXPECT_GE(counted("chat4all_router_prefetched_batches_total"), 2u);
  rec.down = false;
  rec.fail_after_first = false;
  auto rest = run(r.drain());
  ASSERT_TRUE(rest) << rest.err().message;
  EXPECT_EQ(*rest, 20u);
  auto h = history_of();
  ASSERT_EQ(h.size(), 30u);
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].message_id, ids[i]) << i;
    EXPECT_EQ(h[i].seq, static_cast<seq_t>(i + 1)) << i;
    EXPECT_EQ(h[i].status, message_status::delivered) << i;
  }
}

}  // namespace
}  // namespace chat4all::testing
