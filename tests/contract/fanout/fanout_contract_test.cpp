// Contract of the fanout port, run against every adapter. Each adapter supplies a factory:
//   void set_up()                             may GTEST_SKIP (service not configured) or FAIL
//   std::unique_ptr<fanout> make()            a fanout (fresh connection for Redis)
//   std::string channel(std::string_view)     a channel name unique to this test
//   void settle()                             waits until subscriptions made so far are live
// Deliveries are awaited with a timeout, so an asynchronous adapter passes too.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/fanout/inproc/inproc_fanout.hpp"
#include "contract/fanout/redis_factory.hpp"

namespace chat4all {
namespace {

using namespace std::chrono_literals;

struct inproc_fanout_factory {
  void set_up() {}
  std::unique_ptr<fanout> make() { return std::make_unique<inproc_fanout>(); }
  std::string channel(std::string_view base) { return std::string(base); }
  void settle() {}
};

// Records what a subscriber receives; thread-safe.
class collector {
 public:
  fanout::handler handler() {
    return [this](std::string_view channel, std::string_view payload) {
      std::lock_guard lk(m_);
      got_.emplace_back(channel, payload);
      cv_.notify_all();
    };
  }
  // Waits until `n` payloads arrived (or `timeout`); returns the payloads.
  std::vector<std::string> wait_for(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lk(m_);
    cv_.wait_for(lk, timeout, [&] { return got_.size() >= n; });
    return payloads_locked();
  }
  std::vector<std::string> payloads() {
    std::lock_guard lk(m_);
    return payloads_locked();
  }
  std::vector<std::string> channels() {
    std::lock_guard lk(m_);
    std::vector<std::string> out;
    for (const auto& [c, p] : got_) out.push_back(c);
    return out;
  }

 private:
  std::vector<std::string> payloads_locked() const {
    std::vector<std::string> out;
    for (const auto& [c, p] : got_) out.push_back(p);
    return out;
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> got_;
};

template <class Factory>
class fanout_contract : public ::testing::Test {
 protected:
  void SetUp() override {
    factory_.set_up();
    if (this->IsSkipped() || this->HasFatalFailure()) return;
    f_ = factory_.make();
  }
  Factory factory_;
  std::unique_ptr<fanout> f_;
};

TYPED_TEST_SUITE_P(fanout_contract);

TYPED_TEST_P(fanout_contract, delivers_to_every_subscriber_of_the_channel_only) {
  const auto a = this->factory_.channel("user:1"), b = this->factory_.channel("user:2");
  collector a1, a2, b1;
  auto s1 = this->f_->subscribe(a, a1.handler());
  auto s2 = this->f_->subscribe(a, a2.handler());
  auto s3 = this->f_->subscribe(b, b1.handler());
  this->factory_.settle();
  this->f_->publish(a, "hello");
  EXPECT_EQ(a1.wait_for(1), std::vector<std::string>{"hello"});
  EXPECT_EQ(a2.wait_for(1), std::vector<std::string>{"hello"});
  EXPECT_EQ(a1.channels(), std::vector<std::string>{a});
  this->f_->publish(b, "other");
  EXPECT_EQ(b1.wait_for(1), std::vector<std::string>{"other"});
  EXPECT_EQ(a1.payloads().size(), 1u);
  EXPECT_EQ(a2.payloads().size(), 1u);
}

TYPED_TEST_P(fanout_contract, publishing_to_a_channel_without_subscribers_is_harmless) {
  this->f_->publish(this->factory_.channel("nobody"), "x");
  SUCCEED();
}

TYPED_TEST_P(fanout_contract, preserves_publish_order_per_channel) {
  const auto ch = this->factory_.channel("conv");
  collector c;
  auto s = this->f_->subscribe(ch, c.handler());
  this->factory_.settle();
  std::vector<std::string> sent;
  for (int i = 0; i < 1000; ++i) {
    sent.push_back(std::to_string(i));
    this->f_->publish(ch, sent.back());
  }
  EXPECT_EQ(c.wait_for(sent.size()), sent);
}

TYPED_TEST_P(fanout_contract, destroying_the_subscription_unsubscribes) {
  const auto ch = this->factory_.channel("user:3");
  collector gone, stays;
  auto s1 = this->f_->subscribe(ch, gone.handler());
  auto s2 = this->f_->subscribe(ch, stays.handler());
  this->factory_.settle();
  this->f_->publish(ch, "1");
  ASSERT_EQ(gone.wait_for(1).size(), 1u);
  s1.reset();
  this->factory_.settle();
  this->f_->publish(ch, "2");
  EXPECT_EQ(stays.wait_for(2), (std::vector<std::string>{"1", "2"}));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(gone.payloads(), std::vector<std::string>{"1"});
}

TYPED_TEST_P(fanout_contract, concurrent_publishers_keep_one_order_per_channel) {
  constexpr int threads = 4, per_thread = 500;
  const auto ch = this->factory_.channel("busy");
  collector c1, c2;
  auto s1 = this->f_->subscribe(ch, c1.handler());
  auto s2 = this->f_->subscribe(ch, c2.handler());
  this->factory_.settle();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        this->f_->publish(ch, std::to_string(t) + ":" + std::to_string(i));
      }
    });
  }
  for (auto& th : pool) th.join();
  const auto got1 = c1.wait_for(threads * per_thread);
  const auto got2 = c2.wait_for(threads * per_thread);
  ASSERT_EQ(got1.size(), std::size_t{threads * per_thread});
  EXPECT_EQ(got1, got2) << "every subscriber sees the same order";
  std::map<std::string, int> next;
  for (const auto& p : got1) {
    const auto colon = p.find(':');
    const auto t = p.substr(0, colon);
    const int i = std::stoi(p.substr(colon + 1));
    EXPECT_EQ(i, next[t]) << "publisher " << t;
    next[t] = i + 1;
  }
}

TYPED_TEST_P(fanout_contract, subscribing_and_unsubscribing_while_publishing_is_safe) {
  const auto ch = this->factory_.channel("churn");
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    while (!done) this->f_->publish(ch, "tick");
  });
  for (int i = 0; i < 50; ++i) {
    // The handler touches memory freed right after the subscription is destroyed: a
    // delivery after (or during) destruction is a use-after-free for the sanitizers.
    auto counter = std::make_unique<std::atomic<int>>(0);
    auto s = this->f_->subscribe(
        ch, [p = counter.get()](std::string_view, std::string_view) { p->fetch_add(1); });
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (counter->load() == 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();
    }
    EXPECT_GT(counter->load(), 0);
    s.reset();
    counter.reset();
  }
  done = true;
  publisher.join();
  SUCCEED();
}

TYPED_TEST_P(fanout_contract, a_handler_may_publish_and_unsubscribe_itself) {
  const auto ch = this->factory_.channel("reentrant");
  collector c;
  std::unique_ptr<fanout::subscription> self;
  std::mutex m;
  auto* f = this->f_.get();
  auto other = f->subscribe(ch, c.handler());
  self = f->subscribe(ch, [&](std::string_view, std::string_view payload) {
    if (payload == "first") {
      f->publish(ch, "second");
      std::lock_guard lk(m);
      self.reset();
    }
  });
  this->factory_.settle();
  f->publish(ch, "first");
  EXPECT_EQ(c.wait_for(2), (std::vector<std::string>{"first", "second"}));
  std::lock_guard lk(m);
  EXPECT_EQ(self, nullptr);
}

// has_subscribers is a hint that may say true spuriously, never false while a subscriber is
// there (the router skips building events on false).
TYPED_TEST_P(fanout_contract, has_subscribers_is_true_while_someone_listens) {
  const auto ch = this->factory_.channel("listened");
  collector c;
  auto s = this->f_->subscribe(ch, c.handler());
  this->factory_.settle();
  EXPECT_TRUE(this->f_->has_subscribers(ch));
  // A live subscription means the adapter is connected (GET /readyz shows the fan-out ok).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!this->f_->connected() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(this->f_->connected());
}

REGISTER_TYPED_TEST_SUITE_P(fanout_contract, delivers_to_every_subscriber_of_the_channel_only,
                            has_subscribers_is_true_while_someone_listens,
                            publishing_to_a_channel_without_subscribers_is_harmless,
                            preserves_publish_order_per_channel,
                            destroying_the_subscription_unsubscribes,
                            concurrent_publishers_keep_one_order_per_channel,
                            subscribing_and_unsubscribing_while_publishing_is_safe,
                            a_handler_may_publish_and_unsubscribe_itself);

TEST(inproc_fanout, has_subscribers_follows_subscribe_and_unsubscribe) {
  inproc_fanout f;
  EXPECT_FALSE(f.has_subscribers("conversation:7"));
  collector c;
  auto s1 = f.subscribe("conversation:7", c.handler());
  auto s2 = f.subscribe("conversation:7", c.handler());
  EXPECT_TRUE(f.has_subscribers("conversation:7"));
  EXPECT_FALSE(f.has_subscribers("conversation:8"));
  s1.reset();
  EXPECT_TRUE(f.has_subscribers("conversation:7"));
  s2.reset();
  EXPECT_FALSE(f.has_subscribers("conversation:7"));
}

INSTANTIATE_TYPED_TEST_SUITE_P(inproc, fanout_contract, ::testing::Types<inproc_fanout_factory>);
INSTANTIATE_TYPED_TEST_SUITE_P(redis, fanout_contract,
                               ::testing::Types<testing::redis_fanout_factory>);

}  // namespace
}  // namespace chat4all
