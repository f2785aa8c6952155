#pragma once
// A log-linear histogram of non-negative integer values (chat4all-bench records latencies in
// nanoseconds). Values below 2^precision_bits are counted exactly; above, every power-of-two
// range is split into 2^(precision_bits-1) equal buckets, so a value read back from a bucket
// (its midpoint) is within a relative error of 2^-precision_bits of every value recorded into
// it (0.78 % with the default 7 bits). Values above the configured maximum are clamped to it
// and counted in saturated().
//
// Not thread-safe: each thread records into its own histogram; merge() them afterwards.

#include <cstdint>
#include <vector>

namespace chat4all::bench {

class histogram {
 public:
  // precision_bits in [1, 16]; max_value >= 2^precision_bits. The default range (2^40 ns)
  // is about 18 minutes.
  explicit histogram(int precision_bits = 7, std::uint64_t max_value = std::uint64_t{1} << 40);

  void record(std::uint64_t value, std::uint64_t count = 1);
  // Adds every count of `other`, which must have the same precision and maximum.
  void merge(const histogram& other);
  void reset();

  std::uint64_t count() const { return total_; }
  std::uint64_t min() const { return total_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  double mean() const {
    return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0;
  }
  std::uint64_t saturated() const { return saturated_; }
  int precision_bits() const { return bits_; }
  // The smallest bucket value v such that at least q of the recorded values are <= v's
  // bucket (q in [0, 1]; 0 gives min(), 1 gives max()). 0 when empty.
  std::uint64_t percentile(double q) const;
  // Relative error bound of percentile() results: 2^-precision_bits.
  double relative_error() const;

  // Non-empty buckets in increasing order: representative value and count.
  struct bucket {
    std::uint64_t value;
    std::uint64_t count;
  };
  std::vector<bucket> buckets() const;

  // Bucket geometry (exposed for tests).
  std::size_t index_of(std::uint64_t value) const;
  std::uint64_t lowest_of(std::size_t index) const;
  std::uint64_t width_of(std::size_t index) const;
  std::uint64_t value_of(std::size_t index) const;  // midpoint

 private:
  int bits_;
  std::uint64_t max_value_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t saturated_ = 0;
};

}  // namespace chat4all::bench
