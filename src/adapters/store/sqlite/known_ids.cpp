#include "adapters/store/sqlite/known_ids.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace chat4all::sqlite {
namespace {
constexpr int probes = 4;
constexpr std::size_t bits_per_id = 16;

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Two independent hashes of the 16 id bytes; probe i is h1 + i * h2 (Kirsch-Mitzenmacher).
void hashes(const uuid& id, std::uint64_t& h1, std::uint64_t& h2) noexcept {
  std::uint64_t a, b;
  std::memcpy(&a, id.bytes.data(), 8);
  std::memcpy(&b, id.bytes.data() + 8, 8);
  h1 = mix(a ^ mix(b));
  h2 = mix(b + 0x9e3779b97f4a7c15ULL * a) | 1;
}
}  // namespace

known_ids::known_ids(std::size_t expected, std::size_t min_capacity) {
  // At least 64 ids: 16 bits each fill whole 64-bit words.
  const std::size_t lo = std::bit_ceil(std::clamp<std::size_t>(min_capacity, 64, max_capacity));
  capacity_ =
      std::clamp<std::size_t>(std::bit_ceil(std::max<std::size_t>(expected, 1)), lo, max_capacity);
  const std::size_t bits = capacity_ * bits_per_id;
  const std::size_t words = bits / 64;
  words_ = std::make_unique<std::atomic<std::uint64_t>[]>(words);
  for (std::size_t i = 0; i < words; ++i) words_[i].store(0, std::memory_order_relaxed);
  bit_mask_ = bits - 1;
}

void known_ids::add(const uuid& id) noexcept {
  std::uint64_t h1, h2;
  hashes(id, h1, h2);
  for (int i = 0; i < probes; ++i) {
    const std::uint64_t bit = (h1 + static_cast<std::uint64_t>(i) * h2) & bit_mask_;
    words_[bit >> 6].fetch_or(std::uint64_t{1} << (bit & 63), std::memory_order_relaxed);
  }
  added_.fetch_add(1, std::memory_order_relaxed);
}

bool known_ids::may_contain(const uuid& id) const noexcept {
  std::uint64_t h1, h2;
  hashes(id, h1, h2);
  for (int i = 0; i < probes; ++i) {
    const std::uint64_t bit = (h1 + static_cast<std::uint64_t>(i) * h2) & bit_mask_;
    if ((words_[bit >> 6].load(std::memory_order_relaxed) & (std::uint64_t{1} << (bit & 63))) == 0)
      return false;
  }
  return true;
}

}  // namespace chat4all::sqlite
