#include <gtest/gtest.h>

#include "domain/inflight_messages.hpp"

namespace chat4all {

TEST(inflight_messages, claims_by_content) {
  inflight_messages f(2);
  const auto a = uuid::random(), b = uuid::random(), c = uuid::random();
  EXPECT_EQ(f.try_claim(a, 1), inflight_messages::claim::fresh);
  EXPECT_EQ(f.try_claim(a, 1), inflight_messages::claim::same);
  EXPECT_EQ(f.try_claim(a, 2), inflight_messages::claim::contended);  // owner not durable yet
  f.durable(a);
  EXPECT_EQ(f.try_claim(a, 2), inflight_messages::claim::conflict);
  EXPECT_EQ(f.try_claim(b, 1), inflight_messages::claim::fresh);
  EXPECT_EQ(f.try_claim(c, 1), inflight_messages::claim::full);
  f.abandon(b);
  EXPECT_EQ(f.try_claim(c, 1), inflight_messages::claim::fresh);
}

TEST(inflight_messages, stored_before_durable_does_not_leak) {
  inflight_messages f(10);
  const auto a = uuid::random();
  ASSERT_EQ(f.try_claim(a, 1), inflight_messages::claim::fresh);
  f.stored({a});  // the router was faster than the append's completion
  f.durable(a);
  EXPECT_EQ(f.size(), 0u);
}

TEST(inflight_messages, durable_then_stored_releases) {
  inflight_messages f(10);
  const auto a = uuid::random();
  ASSERT_EQ(f.try_claim(a, 1), inflight_messages::claim::fresh);
  f.durable(a);
  EXPECT_EQ(f.try_claim(a, 1), inflight_messages::claim::same);
  f.stored({a});
  EXPECT_EQ(f.size(), 0u);
}

}  // namespace chat4all

namespace chat4all {

TEST(inflight_messages, durable_ids_expire_without_a_router) {
  inflight_messages f(10, std::chrono::milliseconds(0));
  const auto a = uuid::random(), b = uuid::random();
  ASSERT_EQ(f.try_claim(a, 1), inflight_messages::claim::fresh);
  f.durable(a);
  ASSERT_EQ(f.try_claim(b, 1), inflight_messages::claim::fresh);  // sweeps a
  EXPECT_EQ(f.size(), 1u);
  EXPECT_EQ(f.try_claim(a, 1), inflight_messages::claim::fresh);  // the store answers now
}

}  // namespace chat4all
