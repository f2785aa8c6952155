#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "bench/histogram.hpp"

namespace chat4all::bench {
namespace {

TEST(BenchHistogram, SmallValuesAreExact) {
  histogram h(7);
  for (std::uint64_t v = 0; v < 128; ++v) h.record(v);
  EXPECT_EQ(h.count(), 128u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 127u);
  for (std::uint64_t v = 0; v < 128; ++v) {
    EXPECT_EQ(h.index_of(v), v);
    EXPECT_EQ(h.value_of(h.index_of(v)), v);
  }
}

TEST(BenchHistogram, BucketsTileTheRangeWithoutGaps) {
  for (int bits : {1, 3, 7, 10}) {
    histogram h(bits, std::uint64_t{1} << 30);
    std::uint64_t next = 0;
    for (std::size_t i = 0; i <= h.index_of(std::uint64_t{1} << 30); ++i) {
      ASSERT_EQ(h.lowest_of(i), next) << "bits " << bits << " index " << i;
      ASSERT_EQ(h.index_of(h.lowest_of(i)), i);
      ASSERT_EQ(h.index_of(h.lowest_of(i) + h.width_of(i) - 1), i);
      next = h.lowest_of(i) + h.width_of(i);
    }
  }
}

TEST(BenchHistogram, EveryValueIsWithinTheRelativeErrorBound) {
  for (int bits : {2, 5, 7, 9}) {
    histogram h(bits);
    const double bound = h.relative_error();
    EXPECT_DOUBLE_EQ(bound, std::ldexp(1.0, -bits));
    std::mt19937_64 rng(bits);
    for (int i = 0; i < 200000; ++i) {
      // Log-uniform values from 1 to 2^40.
      const auto v =
          static_cast<std::uint64_t>(std::exp2(std::uniform_real_distribution<>(0, 40)(rng)));
      const auto r = h.value_of(h.index_of(v));
      ASSERT_LE(std::fabs(static_cast<double>(r) - static_cast<double>(v)),
                bound * static_cast<double>(v))
          << "bits " << bits << " value " << v << " read back " << r;
    }
  }
}

TEST(BenchHistogram, PercentilesMatchExactOnesWithinTheBound) {
  histogram h;  // 7 bits: 0.78 %
  std::mt19937_64 rng(7);
  std::lognormal_distribution<> dist(13.0, 1.5);  // ~ms-scale latencies in ns, heavy tail
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng)) + 1;
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999}) {
    const auto rank =
        static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size()))) - 1;
    const double exact = static_cast<double>(values[rank]);
    const double got = static_cast<double>(h.percentile(q));
    EXPECT_LE(std::fabs(got - exact), h.relative_error() * exact) << "q=" << q;
  }
  EXPECT_EQ(h.percentile(0), values.front());
  EXPECT_EQ(h.percentile(1), values.back());
  const double mean =
      std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  EXPECT_NEAR(h.mean(), mean, 1.0);
}

TEST(BenchHistogram, MergeEqualsRecordingEverythingInOne) {
  histogram a, b, all;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 50000; ++i) {
    const auto v = rng() % 5'000'000'000ULL;
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double q : {0.0, 0.25, 0.5, 0.9, 0.99, 1.0}) EXPECT_EQ(a.percentile(q), all.percentile(q));
  histogram other_geometry(5);
  EXPECT_THROW(a.merge(other_geometry), std::invalid_argument);
}

TEST(BenchHistogram, ValuesAboveTheMaximumSaturate) {
  histogram h(7, 1'000'000);
  h.record(5'000'000, 3);
  h.record(10);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.saturated(), 3u);
  EXPECT_EQ(h.max(), 1'000'000u);
  EXPECT_EQ(h.percentile(0.99), 1'000'000u);
}

TEST(BenchHistogram, EmptyAndReset) {
  histogram h;
  EXPECT_EQ(h.percentile(0.99), 0u);
  EXPECT_EQ(h.min(), 0u);
  h.record(42);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(0.5), 0u);
  EXPECT_TRUE(h.buckets().empty());
  EXPECT_THROW(histogram(0), std::invalid_argument);
  EXPECT_THROW(histogram(7, 100), std::invalid_argument);
}

}  // namespace
}  // namespace chat4all::bench
