#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "bench/verifier.hpp"

namespace chat4all::bench {
namespace {

id128 id(std::uint64_t n) {
  return id128{0x1111222233334444ULL, 0x8000000000000000ULL | n};
}

TEST(BenchVerifier, EverythingStoredOnceInOrderIsOk) {
  verifier v;
  for (std::uint64_t i = 1; i <= 5; ++i) v.expect(7, id(i));
  EXPECT_FALSE(v.complete(7));
  for (std::uint64_t i = 1; i <= 5; ++i) v.observe(7, static_cast<std::int64_t>(i), id(i));
  EXPECT_TRUE(v.complete(7));
  EXPECT_EQ(v.cursor(7), 5);
  const auto r = v.report();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.expected, 5u);
  EXPECT_EQ(r.found, 5u);
  EXPECT_EQ(r.lost, 0u);
}

TEST(BenchVerifier, CountsLostMessages) {
  verifier v;
  for (std::uint64_t i = 1; i <= 4; ++i) v.expect(1, id(i));
  v.expect(2, id(10));
  v.observe(1, 1, id(1));
  v.observe(1, 2, id(3));
  const auto r = v.report();
  EXPECT_EQ(r.lost, 3u);  // id 2 and 4 of conversation 1, id 10 of conversation 2
  EXPECT_EQ(r.found, 2u);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(v.complete(1));
  EXPECT_FALSE(v.complete(2));
}

TEST(BenchVerifier, CountsDuplicatesOfAcceptedAndOfUnacknowledgedMessages) {
  verifier v;
  v.expect(1, id(1));
  v.expect(1, id(2));
  v.observe(1, 1, id(1));
  v.observe(1, 2, id(1));  // the same message stored twice
  v.observe(1, 3, id(2));
  v.observe(1, 4, id(99));  // stored, never acknowledged (client-side timeout): not a loss
  v.observe(1, 5, id(99));  // ... but a second copy is a duplicate
  const auto r = v.report();
  EXPECT_EQ(r.duplicates, 2u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.unacknowledged, 1u);
  EXPECT_EQ(r.order_violations, 0u);
  EXPECT_FALSE(r.ok());
}

TEST(BenchVerifier, CountsOrderViolationsAndGaps) {
  verifier v;
  for (std::uint64_t i = 1; i <= 4; ++i) v.expect(3, id(i));
  v.observe(3, 1, id(1));
  v.observe(3, 3, id(2));  // gap: seq 2 missing
  v.observe(3, 2, id(3));  // goes backwards
  v.observe(3, 4, id(4));
  const auto r = v.report();
  EXPECT_EQ(r.gaps, 1u);
  EXPECT_EQ(r.order_violations, 1u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_FALSE(r.ok());
}

TEST(BenchVerifier, ResumesPagingAfterTheLastSeenSeq) {
  verifier v;
  v.expect(9, id(1));
  v.expect(9, id(2));
  EXPECT_EQ(v.cursor(9), 0);
  v.observe(9, 1, id(1));
  EXPECT_EQ(v.cursor(9), 1);
  v.observe(9, 2, id(2));
  EXPECT_TRUE(v.complete(9));
  EXPECT_EQ(v.conversations(), std::vector<std::int64_t>{9});
}

TEST(BenchIds, ParseAndFormatRoundTripAndGeneratedIdsAreUniqueV4) {
  auto p = id128::parse("0123abcd-4567-89ef-8123-456789abcdef");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->str(), "0123abcd-4567-89ef-8123-456789abcdef");
  EXPECT_FALSE(id128::parse("0123abcd-4567-89ef-8123-456789abcdeg"));
  EXPECT_FALSE(id128::parse("0123abcd456789ef8123456789abcdef"));
  id_generator g(id_kind::sequential);
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const auto s = g.next().str();
    EXPECT_EQ(s[14], '4');                                          // version 4
    EXPECT_NE(std::string("89ab").find(s[19]), std::string::npos);  // RFC 4122 variant
    EXPECT_EQ(id128::parse(s)->str(), s);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(BenchIds, V7IdsAreTimeOrderedUniqueAndCarryTheMillisecond) {
  id_generator g(id_kind::v7);
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::set<std::string> seen;
  id128 prev;
  for (int i = 0; i < 20000; ++i) {  // more than 4,096 in a millisecond: the counter rolls over
    const auto id = g.next();
    const auto s = id.str();
    EXPECT_EQ(s[14], '7');
    EXPECT_NE(std::string("89ab").find(s[19]), std::string::npos);
    if (i > 0) {
      // Within one generator the ids only grow (as the store's index sees them: bytes in order).
      EXPECT_TRUE(id.hi > prev.hi || (id.hi == prev.hi && id.lo != prev.lo)) << s;
    }
    prev = id;
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 20000u);
  const auto ms = static_cast<std::int64_t>(prev.hi >> 16);
  EXPECT_GE(ms, before);
  EXPECT_LT(ms, before + 60'000);
}

TEST(BenchIds, V4IdsAreRandomAndKindsParse) {
  id_generator g(id_kind::v4);
  std::set<std::uint64_t> tops;
  for (int i = 0; i < 1000; ++i) {
    const auto id = g.next();
    EXPECT_EQ((id.hi >> 12) & 0xf, 4u);
    EXPECT_EQ(id.lo >> 62, 2u);
    tops.insert(id.hi >> 48);
  }
  EXPECT_GT(tops.size(), 900u);  // spread over the key space, not one prefix
  EXPECT_EQ(parse_id_kind("v7"), id_kind::v7);
  EXPECT_EQ(parse_id_kind("v4"), id_kind::v4);
  EXPECT_EQ(parse_id_kind("sequential"), id_kind::sequential);
  EXPECT_FALSE(parse_id_kind("v5"));
  EXPECT_EQ(id_kind_name(id_kind::v4), "v4");
}

}  // namespace
}  // namespace chat4all::bench
