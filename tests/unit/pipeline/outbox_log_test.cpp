// outbox_log's modes (pipeline/outbox_log.hpp) with a scripted primary log and an in-memory
// outbox. The real engines (Kafka stopped and restarted, PostgreSQL) are in
// tests/e2e/test_outbox.py and the outbox contract suite.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mutex>

#include "pipeline/outbox_log.hpp"

namespace chat4all {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A primary log whose behaviour the test sets: acknowledge, fail, or never answer (until the
// test's io_context stops).
class scripted_log final : public event_log {
 public:
  enum class behaviour { ack, fail, hang };
  behaviour next = behaviour::ack;
  std::vector<std::string> written;  // values, in acknowledgement order

  asio::awaitable<result<void>> append(std::string, std::vector<log_record> records) override {
    if (next == behaviour::fail) co_return error(errc::unavailable, "broker down");
    if (next == behaviour::hang) {
      asio::steady_timer t(co_await asio::this_coro::executor, 1h);
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      co_return error(errc::unavailable, "timed out");
    }
    for (auto& r : records) written.push_back(r.value);
    co_return ok;
  }
  std::unique_ptr<log_consumer> subscribe(std::string, std::string) override { return nullptr; }
  void stop() override {}
};

class memory_outbox final : public outbox {
 public:
  std::vector<std::string> values;
  bool down = false;

  task<result<void>> enqueue(std::string, std::vector<log_record> records, timestamp_us) override {
    if (down) co_return error(errc::unavailable, "database down");
    for (auto& r : records) values.push_back(r.value);
    co_return ok;
  }
  task<result<std::int64_t>> backlog() override {
    co_return static_cast<std::int64_t>(values.size());
  }
  task<result<bool>> acquire_lease(std::string, std::chrono::milliseconds) override {
    co_return true;
  }
  task<result<void>> release_lease(std::string) override { co_return ok; }
  task<result<std::vector<outbox_entry>>> oldest(std::size_t) override {
    co_return std::vector<outbox_entry>{};
  }
  task<result<void>> remove(std::vector<std::int64_t>) override { co_return ok; }
  task<result<int>> note_failure(std::int64_t, std::string) override { co_return 1; }
};

class outbox_log_test : public ::testing::Test {
 protected:
  outbox_log_test() {
    opts.fallback_after = 50ms;
    opts.check_every = 20ms;
    opts.hold_max = 300ms;
    opts.hold_below = 100;
  }

  outbox_log& log() {
    if (!ol)
      ol = std::make_unique<outbox_log>(
          primary, box, clk, [this] { return healthy; }, opts, metrics);
    return *ol;
  }

  // Starts append(value); the result lands in *out when it completes.
  void start_append(std::string value, std::optional<result<void>>* out) {
    asio::co_spawn(io, append_into(log(), std::move(value), out), asio::detached);
  }
  static asio::awaitable<void> append_into(outbox_log& l, std::string value,
                                           std::optional<result<void>>* out) {
    std::vector<log_record> rs(1, log_record{"1", std::move(value)});
    *out = co_await l.append("messages", std::move(rs));
  }
  result<void> append(std::string value) {
    std::optional<result<void>> out;
    start_append(std::move(value), &out);
    pump_until([&] { return out.has_value(); });
    return out ? *out : result<void>(error(errc::timeout, "append did not complete"));
  }
  template <class P>
  void pump_until(P done, std::chrono::milliseconds limit = 2s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
      io.restart();
      io.run_for(5ms);
    }
  }
  void pump_for(std::chrono::milliseconds d) {
    pump_until([] { return false; }, d);
  }

  asio::io_context io;
  scripted_log primary;
  memory_outbox box;
  manual_clock clk;
  obs::metrics_registry metrics;
  outbox_log_options opts;
  bool healthy = false;
  std::unique_ptr<outbox_log> ol;
};

TEST_F(outbox_log_test, appends_go_to_the_log_while_it_acknowledges) {
  ASSERT_TRUE(append("a"));
  ASSERT_TRUE(append("b"));
  EXPECT_EQ(primary.written, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(box.values.empty());
  EXPECT_EQ(log().current_mode(), outbox_log::mode::direct);
}

TEST_F(outbox_log_test, an_unacknowledged_append_goes_to_the_outbox_and_so_does_everything_after) {
  primary.next = scripted_log::behaviour::hang;
  ASSERT_TRUE(append("a"));  // after fallback_after
  EXPECT_EQ(box.values, (std::vector<std::string>{"a"}));
  EXPECT_EQ(log().current_mode(), outbox_log::mode::diverting);
  primary.next = scripted_log::behaviour::ack;  // back, but "a" is still in the outbox
  ASSERT_TRUE(append("b"));
  EXPECT_EQ(box.values, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(primary.written.empty());
}

TEST_F(outbox_log_test, a_failed_append_goes_to_the_outbox_at_once) {
  primary.next = scripted_log::behaviour::fail;
  ASSERT_TRUE(append("a"));
  EXPECT_EQ(box.values, (std::vector<std::string>{"a"}));
  EXPECT_EQ(log().current_mode(), outbox_log::mode::diverting);
}

TEST_F(outbox_log_test, with_neither_log_nor_outbox_the_append_fails_as_unavailable) {
  primary.next = scripted_log::behaviour::fail;
  box.down = true;
  auto r = append("a");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
}

TEST_F(outbox_log_test, goes_back_to_the_log_only_when_healthy_and_the_outbox_is_empty) {
  primary.next = scripted_log::behaviour::fail;
  ASSERT_TRUE(append("a"));
  primary.next = scripted_log::behaviour::ack;
  box.values.clear();  // the relay published "a"
  pump_for(30ms);
  ASSERT_TRUE(append("b"));  // unhealthy: no way back yet, "b" queues behind
  pump_for(30ms);
  EXPECT_EQ(log().current_mode(), outbox_log::mode::diverting);
  EXPECT_EQ(box.values, (std::vector<std::string>{"b"}));

  healthy = true;
  box.values.clear();  // the relay published "b"
  pump_for(30ms);
  ASSERT_TRUE(append("c"));  // lands in the outbox, then triggers the way back
  EXPECT_EQ(box.values, (std::vector<std::string>{"c"}));
  pump_for(30ms);
  EXPECT_EQ(log().current_mode(), outbox_log::mode::holding);  // "c" not yet published

  // While holding, a new append waits: it must not overtake "c".
  std::optional<result<void>> d;
  start_append("d", &d);
  pump_for(30ms);
  EXPECT_FALSE(d.has_value());
  box.values.clear();  // the relay published "c"
  pump_until([&] { return d.has_value(); });
  ASSERT_TRUE(d && *d);
  EXPECT_EQ(log().current_mode(), outbox_log::mode::direct);
  EXPECT_EQ(primary.written, (std::vector<std::string>{"d"}));
  EXPECT_TRUE(box.values.empty());
}

TEST_F(outbox_log_test, a_hold_that_does_not_drain_in_time_diverts_again) {
  primary.next = scripted_log::behaviour::fail;
  ASSERT_TRUE(append("a"));
  primary.next = scripted_log::behaviour::ack;
  healthy = true;
  pump_for(30ms);
  ASSERT_TRUE(append("b"));
  pump_for(30ms);
  EXPECT_EQ(log().current_mode(), outbox_log::mode::holding);
  std::optional<result<void>> c;
  start_append("c", &c);
  pump_until([&] { return c.has_value(); });  // no relay: the hold gives up after hold_max
  ASSERT_TRUE(c && *c);
  EXPECT_EQ(box.values, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(primary.written.empty());
}

}  // namespace
}  // namespace chat4all
