#pragma once
// Internal to the SQLite adapter: a Bloom filter over the message_ids of the messages table,
// so find_content_hashes can answer "not stored" for a fresh id (the common case: every new
// message is checked) without a query and without leaving the caller's thread.
//
// It is exact where it must be: an id that is in the table is always reported as possibly
// present (no false negatives), because the filter is loaded from the table and every insert
// of the writer adds its ids after the commit and before the router tells anyone the message
// is stored. A false positive only costs the query that would have run anyway. This holds
// only while this process is the only writer of the messages table (role `all`); sqlite_store
// is told so at construction.
//
// Thread-safety: may_contain and add from any thread, concurrently (lock-free bit ops): a
// filter being grown is filled by the growth scan's thread and by the writer at once.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/ids.hpp"

namespace chat4all::sqlite {

class known_ids {
 public:
  // Room for `expected` ids at ~0.3 % false positives (16 bits and 4 probes per id, in one
  // cache line), at least min_capacity ids, at most 64 Mi ids (128 MiB); beyond capacity()
  // the false-positive rate rises.
  explicit known_ids(std::size_t expected, std::size_t min_capacity = default_min_capacity);
  void add(const uuid& id) noexcept;
  bool may_contain(const uuid& id) const noexcept;
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t added() const noexcept { return added_.load(std::memory_order_relaxed); }
  // The largest filter this class makes: a bigger table keeps this size (more false positives).
  static constexpr std::size_t max_capacity = std::size_t{1} << 26;
  static constexpr std::size_t default_min_capacity = std::size_t{1} << 20;

 private:
  struct alignas(64) block {  // 512 bits: one cache line
    std::atomic<std::uint64_t> words[8];
  };
  std::unique_ptr<block[]> blocks_;
  std::uint64_t block_mask_ = 0;  // number of blocks - 1 (a power of two)
  std::size_t capacity_ = 0;
  std::atomic<std::size_t> added_{0};
};

}  // namespace chat4all::sqlite
