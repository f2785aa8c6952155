// The SQLite adapter's filter of stored message_ids: never a false negative (an id that is
// stored must be looked up), few false positives (each costs one query).

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <filesystem>
#include <future>
#include <random>
#include <thread>
#include <vector>

#include "adapters/store/sqlite/known_ids.hpp"
#include "adapters/store/sqlite/sqlite_store.hpp"
#include "core/config.hpp"

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

// The store's filter grows on a reader thread while the writer goes on: every id stored
// before, during and after each growth must still be found (a miss would let a retried
// message be stored twice).
TEST(known_ids, the_store_finds_every_stored_id_while_its_filter_grows) {
  namespace asio = boost::asio;
  std::random_device rd;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("chat4all-known-ids-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  storage_config cfg;
  cfg.worker_threads = 2;
  asio::io_context io;
  auto run = [&io](auto t) {
    auto f = asio::co_spawn(io, std::move(t), asio::use_future);
    io.restart();
    io.run();
    return f.get();
  };
  std::vector<uuid> stored;
  {
    sqlite_store db((dir / "db.sqlite").string(), cfg, true, /*id_filter_min_ids=*/256);
    ASSERT_TRUE(run(db.migrate()));
    auto u = run(db.create_user("alice", "x", 1));
    ASSERT_TRUE(u);
    auto c = run(db.create_conversation(conversation_type::group, "g", "", {u->id}, 1, {}));
    ASSERT_TRUE(c);
    const conversation_id conv = c->conv.id;

    // 400 batches of 50, queued at once: the writer stores them back to back, so batches
    // commit while a growth's scan runs (those ids reach the new filter only through the
    // writer). 20,000 ids: the filter grows from 256 four times (x4 each).
    std::vector<std::future<result<std::vector<message>>>> pending;
    for (int b = 0; b < 400; ++b) {
      std::vector<accepted_message> batch(50);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& m = batch[i];
        m.message_id = uuid::random();
        m.conversation = conv;
        m.sender = u->id;
        m.payload_json = R"({"type":"text","content":"x"})";
        m.accepted_at = 2;
        m.content_hash = static_cast<std::uint64_t>(b * 1000 + static_cast<int>(i) + 1);
        stored.push_back(m.message_id);
      }
      pending.push_back(
          asio::co_spawn(io, db.store_messages(std::move(batch), 3), asio::use_future));
    }
    io.restart();
    io.run();
    for (auto& f : pending) {
      auto r = f.get();
      ASSERT_TRUE(r);
      ASSERT_EQ(r->size(), 50u);
    }
    // The last growth finishes in the background.
    for (int i = 0; i < 500 && db.id_filter_capacity() < stored.size(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GE(db.id_filter_capacity(), stored.size());
    auto found = run(db.find_content_hashes(stored));
    ASSERT_TRUE(found);
    std::size_t missed = 0;
    for (const auto& h : *found) missed += h.has_value() ? 0 : 1;
    EXPECT_EQ(missed, 0u) << "stored ids the store says are not stored";
    auto fresh = run(db.find_content_hashes({uuid::random(), uuid::random()}));
    ASSERT_TRUE(fresh);
    EXPECT_FALSE((*fresh)[0].has_value());
    EXPECT_FALSE((*fresh)[1].has_value());
  }
  {
    // Reopened: the filter is loaded at migrate, sized for the table, and finds every id.
    sqlite_store db((dir / "db.sqlite").string(), cfg, true, /*id_filter_min_ids=*/256);
    ASSERT_TRUE(run(db.migrate()));
    EXPECT_GE(db.id_filter_capacity(), 2 * stored.size());
    auto found = run(db.find_content_hashes(stored));
    ASSERT_TRUE(found);
    std::size_t missed = 0;
    for (const auto& h : *found) missed += h.has_value() ? 0 : 1;
    EXPECT_EQ(missed, 0u);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace chat4all::sqlite
