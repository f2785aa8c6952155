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
  h2 = mix(b + 0x9e3779b97f4a7c15ULL * a);
}
}  // namespace

known_ids::known_ids(std::size_t expected, std::size_t min_capacity) {
  // At least 64 ids: 16 bits each fill whole 64-bit words.
  const std::size_t lo = std::bit_ceil(std::clamp<std::size_t>(min_capacity, 64, max_capacity));
  capacity_ =
      std::clamp<std::size_t>(std::bit_ceil(std::max<std::size_t>(expected, 1)), lo, max_capacity);
  const std::size_t blocks = capacity_ * bits_per_id / 512;  // capacity >= 64: 2 blocks
  blocks_ = std::make_unique<block[]>(blocks);
  for (std::size_t i = 0; i < blocks; ++i)
    for (auto& w : blocks_[i].words) w.store(0, std::memory_order_relaxed);
  block_mask_ = blocks - 1;
}

// Blocked: the 4 probes of an id fall in one 512-bit block (one cache line), so an add or a
// lookup costs one cache miss instead of four in a filter of tens of MiB. h1 picks the
// block, h2 the bits in it.
void known_ids::add(const uuid& id) noexcept {
  std::uint64_t h1, h2;
  hashes(id, h1, h2);
  auto& b = blocks_[h1 & block_mask_];
  for (int i = 0; i < probes; ++i) {
    const auto bit = static_cast<unsigned>((h2 >> (9 * i)) & 511);
    b.words[bit >> 6].fetch_or(std::uint64_t{1} << (bit & 63), std::memory_order_relaxed);
  }
  added_.fetch_add(1, std::memory_order_relaxed);
}

bool known_ids::may_contain(const uuid& id) const noexcept {
  std::uint64_t h1, h2;
  hashes(id, h1, h2);
  const auto& b = blocks_[h1 & block_mask_];
  for (int i = 0; i < probes; ++i) {
    const auto bit = static_cast<unsigned>((h2 >> (9 * i)) & 511);
    if ((b.words[bit >> 6].load(std::memory_order_relaxed) & (std::uint64_t{1} << (bit & 63))) == 0)
      return false;
  }
  return true;
}

}  // namespace chat4all::sqlite
