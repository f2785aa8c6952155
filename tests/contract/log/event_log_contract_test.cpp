// Contract of the event_log port, run against every adapter. Each adapter supplies a factory:
//   Factory()                             prepares fresh storage (a temp dir, a topic prefix)
//   std::unique_ptr<event_log> open()     a log on that storage
//   std::string topic(std::string_view)   a topic name unique to this test
// Waits are generous so that a broker-backed adapter (consumer group joins) passes too.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/log/embedded/embedded_log.hpp"
#include "contract/log/kafka_factory.hpp"
#include "support/run_sync.hpp"

namespace chat4all {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class temp_dir {
 public:
  temp_dir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "chat4all-log-contract-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct embedded_log_factory {
  temp_dir dir;
  std::unique_ptr<event_log> open() {
    return std::make_unique<embedded_log>(dir.path().string(), log_config{});
  }
  std::string topic(std::string_view base) { return std::string(base); }
};

using testing::optional_of;

// Runs one coroutine to completion on a fresh io_context.
template <class T>
T run(asio::awaitable<T> aw) {
  return testing::run_sync(std::move(aw));
}

std::vector<log_record> records(std::string_view key, int first, int n) {
  std::vector<log_record> out;
  for (int i = first; i < first + n; ++i) {
    out.push_back({std::string(key), std::string(key) + ":" + std::to_string(i)});
  }
  return out;
}

template <class Factory>
class event_log_contract : public ::testing::Test {
 protected:
  void SetUp() override {
    // A factory whose service is not configured (skip_reason() not empty) skips its tests.
    if constexpr (requires { factory_.skip_reason(); }) {
      if (auto why = factory_.skip_reason(); !why.empty()) GTEST_SKIP() << why;
    }
    log_ = factory_.open();
    topic_ = factory_.topic("contract");
  }
  void TearDown() override {
    if (log_) log_->stop();
  }

  void append_ok(std::vector<log_record> recs) {
    auto r = run(log_->append(topic_, std::move(recs)));
    ASSERT_TRUE(r) << r.err().message;
  }

  // Polls until `n` entries arrived or `total` elapsed.
  std::vector<log_entry> collect(log_consumer& c, std::size_t n,
                                 std::chrono::milliseconds total = 15s) {
    std::vector<log_entry> got;
    const auto deadline = std::chrono::steady_clock::now() + total;
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto r = run(c.poll(n - got.size(), 200ms));
      EXPECT_TRUE(r) << r.err().message;
      if (!r) break;
      for (auto& e : *r) got.push_back(std::move(e));
    }
    return got;
  }

  void expect_nothing_more(log_consumer& c) {
    auto r = run(c.poll(100, 300ms));
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->empty()) << r->size() << " unexpected entries, first offset "
                            << r->front().offset;
  }

  void commit_ok(log_consumer& c, const std::vector<log_entry>& processed) {
    auto r = run(c.commit(processed));
    ASSERT_TRUE(r) << r.err().message;
  }

  Factory factory_;
  std::unique_ptr<event_log> log_;
  std::string topic_;
};

TYPED_TEST_SUITE_P(event_log_contract);

TYPED_TEST_P(event_log_contract, poll_returns_appended_records_in_order_with_offsets) {
  auto c = this->log_->subscribe(this->topic_, "g");
  this->append_ok(records("conv-1", 0, 3));
  this->append_ok(records("conv-1", 3, 2));
  auto got = this->collect(*c, 5);
  ASSERT_EQ(got.size(), 5u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].key, "conv-1");
    EXPECT_EQ(got[i].value, "conv-1:" + std::to_string(i));
    if (i > 0) {
      EXPECT_EQ(got[i].partition, got[0].partition);
      EXPECT_EQ(got[i].offset, got[i - 1].offset + 1);
    }
  }
  this->expect_nothing_more(*c);
}

TYPED_TEST_P(event_log_contract, concurrent_appends_are_all_visible_exactly_once) {
  constexpr int coroutines = 200, threads = 4, per_thread = 50;
  asio::io_context ioc;
  std::atomic<int> failures{0};
  for (int i = 0; i < coroutines; ++i) {
    asio::co_spawn(
        ioc,
        [](event_log& log, std::string topic, int i,
           std::atomic<int>& failures) -> asio::awaitable<void> {
          auto r = co_await log.append(topic, records("k" + std::to_string(i % 7), i, 1));
          if (!r) ++failures;
        }(*this->log_, this->topic_, i, failures),
        asio::detached);
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < 2; ++t) pool.emplace_back([&] { ioc.run(); });
  // Plain threads, each with its own io_context, append at the same time.
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int j = 0; j < per_thread; ++j) {
        const int i = coroutines + t * per_thread + j;
        auto r = run(this->log_->append(this->topic_, records("t" + std::to_string(t), i, 1)));
        if (!r) ++failures;
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(failures.load(), 0);

  const std::size_t total = coroutines + threads * per_thread;
  auto c = this->log_->subscribe(this->topic_, "g");
  auto got = this->collect(*c, total);
  ASSERT_EQ(got.size(), total);
  std::set<std::string> values;
  for (const auto& e : got) values.insert(e.value);
  EXPECT_EQ(values.size(), total);
  std::set<std::pair<int, std::int64_t>> positions;
  for (const auto& e : got) positions.insert({e.partition, e.offset});
  EXPECT_EQ(positions.size(), total);
  this->expect_nothing_more(*c);
}

TYPED_TEST_P(event_log_contract, a_new_consumer_resumes_after_the_commit) {
  this->append_ok(records("k", 0, 10));
  {
    auto c = this->log_->subscribe(this->topic_, "g");
    auto got = this->collect(*c, 4);
    ASSERT_EQ(got.size(), 4u);
    this->commit_ok(*c, got);
  }
  auto c2 = this->log_->subscribe(this->topic_, "g");
  auto rest = this->collect(*c2, 6);
  ASSERT_EQ(rest.size(), 6u);
  EXPECT_EQ(rest.front().value, "k:4");
  EXPECT_EQ(rest.back().value, "k:9");
  this->expect_nothing_more(*c2);
}

TYPED_TEST_P(event_log_contract, uncommitted_entries_are_redelivered_to_a_new_consumer) {
  this->append_ok(records("k", 0, 5));
  {
    auto c = this->log_->subscribe(this->topic_, "g");
    auto got = this->collect(*c, 5);
    ASSERT_EQ(got.size(), 5u);
    this->commit_ok(*c, {got[0], got[1]});
  }
  auto c2 = this->log_->subscribe(this->topic_, "g");
  auto again = this->collect(*c2, 3);
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again[0].value, "k:2");
  EXPECT_EQ(again[2].value, "k:4");
}

TYPED_TEST_P(event_log_contract, groups_are_independent) {
  this->append_ok(records("k", 0, 4));
  auto a = this->log_->subscribe(this->topic_, "group-a");
  auto got_a = this->collect(*a, 4);
  ASSERT_EQ(got_a.size(), 4u);
  this->commit_ok(*a, got_a);

  auto b = this->log_->subscribe(this->topic_, "group-b");
  auto got_b = this->collect(*b, 4);
  ASSERT_EQ(got_b.size(), 4u);
  EXPECT_EQ(got_b.front().value, "k:0");
  this->expect_nothing_more(*a);
}

TYPED_TEST_P(event_log_contract, poll_times_out_with_an_empty_result) {
  auto c = this->log_->subscribe(this->topic_, "g");
  const auto start = std::chrono::steady_clock::now();
  auto r = run(c->poll(10, 150ms));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_TRUE(r->empty());
  EXPECT_GE(elapsed, 140ms);
  EXPECT_LT(elapsed, 5s);
}

TYPED_TEST_P(event_log_contract, a_waiting_poll_returns_when_records_arrive) {
  auto c = this->log_->subscribe(this->topic_, "g");
  this->collect(*c, 1, 500ms);  // lets a broker-backed consumer join its group first
  asio::io_context ioc;
  auto polled = asio::co_spawn(ioc, optional_of(c->poll(10, 10s)), asio::use_future);
  auto append_later = [](event_log& log, std::string topic) -> asio::awaitable<result<void>> {
    asio::steady_timer t(co_await asio::this_coro::executor, 100ms);
    co_await t.async_wait(asio::use_awaitable);
    co_return co_await log.append(topic, records("k", 0, 1));
  };
  auto appended =
      asio::co_spawn(ioc, optional_of(append_later(*this->log_, this->topic_)), asio::use_future);
  const auto start = std::chrono::steady_clock::now();
  ioc.run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 9s);
  ASSERT_TRUE(*appended.get());
  auto r = *polled.get();
  ASSERT_TRUE(r) << r.err().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().value, "k:0");
}

TYPED_TEST_P(event_log_contract, order_per_key_is_preserved) {
  constexpr int keys = 4, per_key = 40;
  asio::io_context ioc;
  for (int k = 0; k < keys; ++k) {
    asio::co_spawn(
        ioc,
        [](event_log& log, std::string topic, int k) -> asio::awaitable<void> {
          const std::string key = "conv-" + std::to_string(k);
          for (int i = 0; i < per_key; ++i) {
            auto r = co_await log.append(topic, records(key, i, 1));
            EXPECT_TRUE(r);
          }
        }(*this->log_, this->topic_, k),
        asio::detached);
  }
  ioc.run();
  auto c = this->log_->subscribe(this->topic_, "g");
  auto got = this->collect(*c, keys * per_key);
  ASSERT_EQ(got.size(), std::size_t{keys * per_key});
  std::map<std::string, int> next;
  for (const auto& e : got) {
    const int i = std::stoi(e.value.substr(e.value.find(':') + 1));
    EXPECT_EQ(i, next[e.key]) << e.key;
    next[e.key] = i + 1;
  }
}

TYPED_TEST_P(event_log_contract, append_after_stop_is_unavailable) {
  this->log_->stop();
  auto r = run(this->log_->append(this->topic_, records("k", 0, 1)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
}

REGISTER_TYPED_TEST_SUITE_P(event_log_contract, poll_returns_appended_records_in_order_with_offsets,
                            concurrent_appends_are_all_visible_exactly_once,
                            a_new_consumer_resumes_after_the_commit,
                            uncommitted_entries_are_redelivered_to_a_new_consumer,
                            groups_are_independent, poll_times_out_with_an_empty_result,
                            a_waiting_poll_returns_when_records_arrive, order_per_key_is_preserved,
                            append_after_stop_is_unavailable);

using adapters = ::testing::Types<embedded_log_factory>;
INSTANTIATE_TYPED_TEST_SUITE_P(embedded, event_log_contract, adapters);
INSTANTIATE_TYPED_TEST_SUITE_P(kafka, event_log_contract, ::testing::Types<kafka_log_factory>);

}  // namespace
}  // namespace chat4all
