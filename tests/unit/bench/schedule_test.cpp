#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "bench/schedule.hpp"

namespace chat4all::bench {
namespace {
using namespace std::chrono;

TEST(BenchOpenLoopSchedule, IntendedTimesFollowTheRateWithoutDrift) {
  const auto t0 = steady::time_point{} + seconds(100);
  open_loop_schedule s(t0, 3000, seconds(10));
  EXPECT_EQ(s.total(), 30000u);
  EXPECT_EQ(s.intended(0), t0);
  EXPECT_EQ(s.intended(3000), t0 + seconds(1));
  // 1/3000 s is not a whole number of ns: computed from the index, no error accumulates.
  EXPECT_EQ(s.intended(29999), t0 + nanoseconds(static_cast<std::int64_t>(29999 * 1e9 / 3000)));
  EXPECT_LE(s.intended(29999), t0 + seconds(10));
}

TEST(BenchOpenLoopSchedule, ClaimsHandOutEachSlotOnceInOrder) {
  open_loop_schedule s(steady::now(), 100, milliseconds(500));
  EXPECT_EQ(s.total(), 50u);
  std::vector<std::uint64_t> got;
  while (auto slot = s.claim()) {
    EXPECT_EQ(slot->due, s.intended(slot->index));
    got.push_back(slot->index);
  }
  ASSERT_EQ(got.size(), 50u);
  for (std::uint64_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], i);
  EXPECT_FALSE(s.claim());
  EXPECT_EQ(s.claimed(), 50u);
}

TEST(BenchOpenLoopSchedule, ConcurrentClaimsNeverShareASlot) {
  open_loop_schedule s(steady::now(), 1e6, seconds(1));
  std::vector<std::vector<std::uint64_t>> per(4);
  std::vector<std::thread> ts;
  for (auto& v : per)
    ts.emplace_back([&s, &v] {
      while (auto slot = s.claim()) v.push_back(slot->index);
    });
  for (auto& t : ts) t.join();
  std::set<std::uint64_t> all;
  std::size_t n = 0;
  for (auto& v : per) {
    n += v.size();
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(n, 1'000'000u);
  EXPECT_EQ(all.size(), n);
}

TEST(BenchOpenLoopSchedule, DueTimesDoNotWaitForSlowRequests) {
  // A request that started late keeps its intended time: a stall is charged to every request
  // it delayed (coordinated omission would measure from the late start instead).
  const auto t0 = steady::time_point{} + seconds(5);
  open_loop_schedule s(t0, 10, seconds(2));
  EXPECT_EQ(s.due_by(t0 - seconds(1)), 0u);
  EXPECT_EQ(s.due_by(t0), 1u);
  EXPECT_EQ(s.due_by(t0 + milliseconds(1050)), 11u);
  EXPECT_EQ(s.due_by(t0 + seconds(60)), 20u);
  auto first = s.claim();
  auto second = s.claim();
  EXPECT_EQ(second->due - first->due, milliseconds(100));
}

TEST(BenchOpenLoopSchedule, BoundsAndBadRates) {
  open_loop_schedule s(steady::now(), 1000, seconds(10), 7);
  EXPECT_EQ(s.total(), 7u);
  EXPECT_THROW(open_loop_schedule(steady::now(), 0, seconds(1)), std::invalid_argument);
  EXPECT_THROW(open_loop_schedule(steady::now(), -5, seconds(1)), std::invalid_argument);
}

}  // namespace
}  // namespace chat4all::bench
