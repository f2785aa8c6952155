// The SQLite adapter's filter of stored message_ids: never a false negative (an id that is
// stored must be looked up), few false positives (each costs one query).

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "adapters/store/sqlite/known_ids.hpp"

namespace chat4all::sqlite {
namespace {

TEST(known_ids, every_added_id_is_reported_and_few_others_are) {
  known_ids k(100'000);
  std::vector<uuid> added;
  for (int i = 0; i < 100'000; ++i) {
    added.push_back(uuid::random());
    k.add(added.back());
  }
  for (const auto& id : added) ASSERT_TRUE(k.may_contain(id));
  int false_positives = 0;
  for (int i = 0; i < 100'000; ++i) false_positives += k.may_contain(uuid::random()) ? 1 : 0;
  EXPECT_LT(false_positives, 1000) << "over 1 % false positives at design capacity";
  EXPECT_EQ(k.added(), 100'000u);
  EXPECT_GE(k.capacity(), 100'000u);
}

TEST(known_ids, ids_that_differ_in_one_half_are_told_apart) {
  // Time-ordered ids share their first bytes; random ones their version nibbles.
  known_ids k(1);
  uuid base = uuid::random();
  k.add(base);
  int hits = 0;
  for (int i = 0; i < 256; ++i) {
    uuid other = base;
    other.bytes[15] = static_cast<std::uint8_t>(base.bytes[15] ^ (i + 1));
    hits += k.may_contain(other) ? 1 : 0;
  }
  EXPECT_LE(hits, 2);
}

TEST(known_ids, concurrent_readers_see_what_the_writer_added) {
  known_ids k(10'000);
  std::vector<uuid> ids(10'000);
  for (auto& id : ids) id = uuid::random();
  std::atomic<std::size_t> published{0};
  std::thread writer([&] {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      k.add(ids[i]);
      published.store(i + 1, std::memory_order_release);
    }
  });
  std::size_t misses = 0;
  for (std::size_t seen = 0; seen < ids.size();) {
    const auto n = published.load(std::memory_order_acquire);
    for (; seen < n; ++seen) misses += k.may_contain(ids[seen]) ? 0 : 1;
  }
  writer.join();
  EXPECT_EQ(misses, 0u);
}

}  // namespace
}  // namespace chat4all::sqlite
