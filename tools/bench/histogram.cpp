#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace chat4all::bench {

histogram::histogram(int precision_bits, std::uint64_t max_value)
    : bits_(precision_bits), max_value_(max_value) {
  if (precision_bits < 1 || precision_bits > 16)
    throw std::invalid_argument("histogram: precision_bits must be in [1, 16]");
  if (max_value < (std::uint64_t{1} << precision_bits))
    throw std::invalid_argument("histogram: max_value below 2^precision_bits");
  counts_.assign(index_of(max_value_) + 1, 0);
}

// Index layout: [0, 2^b) hold exact values; then for each shift s >= 1, 2^(b-1) buckets of
// width 2^s covering [2^(b-1+s), 2^(b+s)).
std::size_t histogram::index_of(std::uint64_t v) const {
  const std::uint64_t exact = std::uint64_t{1} << bits_;
  if (v < exact) return static_cast<std::size_t>(v);
  const int shift = std::bit_width(v) - bits_;
  const std::uint64_t half = exact >> 1;
  const std::uint64_t top = v >> shift;  // in [half, exact)
  return static_cast<std::size_t>(exact + (static_cast<std::uint64_t>(shift) - 1) * half +
                                  (top - half));
}

std::uint64_t histogram::lowest_of(std::size_t i) const {
  const std::uint64_t exact = std::uint64_t{1} << bits_;
  if (i < exact) return i;
  const std::uint64_t half = exact >> 1;
  const std::uint64_t k = i - exact;
  const std::uint64_t shift = k / half + 1;
  return (half + k % half) << shift;
}

std::uint64_t histogram::width_of(std::size_t i) const {
  const std::uint64_t exact = std::uint64_t{1} << bits_;
  if (i < exact) return 1;
  return std::uint64_t{1} << ((i - exact) / (exact >> 1) + 1);
}

std::uint64_t histogram::value_of(std::size_t i) const {
  return lowest_of(i) + width_of(i) / 2;
}

void histogram::record(std::uint64_t v, std::uint64_t count) {
  if (count == 0) return;
  if (v > max_value_) {
    v = max_value_;
    saturated_ += count;
  }
  counts_[index_of(v)] += count;
  total_ += count;
  sum_ += v * count;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

void histogram::merge(const histogram& o) {
  if (o.bits_ != bits_ || o.max_value_ != max_value_)
    throw std::invalid_argument("histogram: merge of different geometries");
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  total_ += o.total_;
  sum_ += o.sum_;
  saturated_ += o.saturated_;
  if (o.total_) {
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
  }
}

void histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = sum_ = saturated_ = max_ = 0;
  min_ = UINT64_MAX;
}

std::uint64_t histogram::percentile(double q) const {
  if (total_ == 0) return 0;
  if (q <= 0) return min_;
  if (q >= 1) return max_;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
  rank = std::clamp<std::uint64_t>(rank, 1, total_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(value_of(i), min_, max_);
  }
  return max_;
}

double histogram::relative_error() const {
  return std::ldexp(1.0, -bits_);
}

std::vector<histogram::bucket> histogram::buckets() const {
  std::vector<bucket> out;
  for (std::size_t i = 0; i < counts_.size(); ++i)
    if (counts_[i]) out.push_back({std::clamp(value_of(i), min_, max_), counts_[i]});
  return out;
}

}  // namespace chat4all::bench
