// Contract suite for the counters port (domain/ports/counters.hpp): inproc_counters and
// redis_counters (against CHAT4ALL_TEST_REDIS_URL; skipped without it).

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "adapters/counters/inproc/inproc_counters.hpp"
#include "adapters/counters/redis/redis_counters.hpp"
#include "contract/fanout/redis_factory.hpp"  // parse_redis_url
#include "support/run_sync.hpp"

namespace chat4all::testing {
namespace {

using namespace std::chrono_literals;

struct inproc_counters_factory {
  static constexpr const char* name = "inproc";
  std::unique_ptr<counters> open() { return std::make_unique<inproc_counters>(); }
};

struct redis_counters_factory {
  static constexpr const char* name = "redis";
  static std::optional<std::string> skip_reason() {
    if (!std::getenv("CHAT4ALL_TEST_REDIS_URL"))
      return "CHAT4ALL_TEST_REDIS_URL is not set (scripts/services/redis.sh)";
    return std::nullopt;
  }
  redis_counters_factory() {
    std::random_device rd;
    prefix = "test:counters:" + std::to_string(rd()) + ":";
  }
  // Every instance of one test shares the prefix: they are the "instances" of one cluster.
  std::unique_ptr<counters> open() {
    auto ep = parse_redis_url(std::getenv("CHAT4ALL_TEST_REDIS_URL"));
    EXPECT_TRUE(ep);
    redis_counters_options o;
    o.host = ep->host;
    o.port = ep->port;
    o.key_prefix = prefix;
    return std::make_unique<redis_counters>(o);
  }
  std::string prefix;
};

template <class Factory>
class counters_contract : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (requires { Factory::skip_reason(); })
      if (auto why = Factory::skip_reason()) GTEST_SKIP() << *why;
    c_ = factory_.open();
  }
  std::int64_t add(const std::string& key, std::int64_t n, std::chrono::milliseconds w = 10s) {
    auto r = run_sync(c_->add(key, n, w));
    EXPECT_TRUE(r) << r.err().message;
    return r ? *r : -1;
  }
  Factory factory_;
  std::unique_ptr<counters> c_;
};

TYPED_TEST_SUITE_P(counters_contract);

TYPED_TEST_P(counters_contract, adds_accumulate_per_key) {
  EXPECT_EQ(this->add("a", 1), 1);
  EXPECT_EQ(this->add("a", 5), 6);
  EXPECT_EQ(this->add("b", 2), 2);
  EXPECT_EQ(this->add("a", 0), 6);
}

TYPED_TEST_P(counters_contract, a_window_ends_and_the_next_add_starts_a_new_one) {
  EXPECT_EQ(this->add("w", 3, 200ms), 3);
  EXPECT_EQ(this->add("w", 1, 200ms), 4);  // same window (its length is not extended)
  std::this_thread::sleep_for(350ms);
  EXPECT_EQ(this->add("w", 2, 200ms), 2);
}

TYPED_TEST_P(counters_contract, concurrent_adds_are_never_lost) {
  constexpr int threads = 6, each = 100;
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < each; ++i)
        if (!run_sync(this->c_->add("hot", 1, 10s))) ++failures;
    });
  for (auto& th : ts) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(this->add("hot", 0), threads * each);
}

TYPED_TEST_P(counters_contract, instances_of_one_deployment_share_counts) {
  auto other = this->factory_.open();
  EXPECT_EQ(this->add("shared", 1), 1);
  auto r = run_sync(other->add("shared", 1, 10s));
  ASSERT_TRUE(r);
  // One process (inproc): separate instances are separate counters; Redis: one count.
  EXPECT_EQ(*r, std::string(TypeParam::name) == "redis" ? 2 : 1);
}

TYPED_TEST_P(counters_contract, a_window_that_is_not_positive_is_invalid_input) {
  auto r = run_sync(this->c_->add("x", 1, 0ms));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_input);
}

REGISTER_TYPED_TEST_SUITE_P(counters_contract, adds_accumulate_per_key,
                            a_window_ends_and_the_next_add_starts_a_new_one,
                            concurrent_adds_are_never_lost,
                            instances_of_one_deployment_share_counts,
                            a_window_that_is_not_positive_is_invalid_input);

using counter_factories = ::testing::Types<inproc_counters_factory, redis_counters_factory>;
struct factory_names {
  template <class T>
  static std::string GetName(int) {
    return T::name;
  }
};
INSTANTIATE_TYPED_TEST_SUITE_P(adapters, counters_contract, counter_factories, factory_names);

TEST(redis_counters, an_unreachable_redis_is_unavailable_not_a_hang) {
  redis_counters_options o;
  o.port = 1;  // nothing listens there
  o.timeout = 300ms;
  redis_counters c(o);
  auto r = run_sync(c.add("k", 1, 1s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
}

}  // namespace
}  // namespace chat4all::testing
