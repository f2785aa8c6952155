// embedded_log specifics: recovery, group commit, segments and retention, stop().

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/log/embedded/crc32c.hpp"
#include "adapters/log/embedded/embedded_log.hpp"
#include "adapters/log/embedded/record_format.hpp"

namespace chat4all {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "chat4all-log-unit-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

template <class T>
asio::awaitable<std::optional<T>> optional_of(asio::awaitable<T> aw) {
  co_return co_await std::move(aw);
}

template <class T>
T run(asio::awaitable<T> aw) {
  asio::io_context ioc;
  auto f = asio::co_spawn(ioc, optional_of(std::move(aw)), asio::use_future);
  ioc.run();
  return *f.get();
}

std::vector<log_record> values(int first, int n, std::size_t pad = 0) {
  std::vector<log_record> out;
  for (int i = first; i < first + n; ++i) {
    out.push_back({"k", "v" + std::to_string(i) + std::string(pad, 'x')});
  }
  return out;
}

void append_ok(event_log& log, const std::string& topic, std::vector<log_record> recs) {
  auto r = run(log.append(topic, std::move(recs)));
  ASSERT_TRUE(r) << r.err().message;
}

// Everything the group has not committed, read without waiting.
std::vector<log_entry> read_all(event_log& log, const std::string& topic,
                                const std::string& group) {
  auto c = log.subscribe(topic, group);
  std::vector<log_entry> out;
  for (;;) {
    auto r = run(c->poll(1000, 0ms));
    EXPECT_TRUE(r) << r.err().message;
    if (!r || r->empty()) return out;
    for (auto& e : *r) out.push_back(std::move(e));
  }
}

void expect_sequence(const std::vector<log_entry>& got, int first, int n) {
  ASSERT_EQ(got.size(), std::size_t(n));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(got[i].offset, first + i);
    EXPECT_EQ(got[i].value.substr(0, got[i].value.find('x')), "v" + std::to_string(first + i));
  }
}

std::vector<fs::path> segments(const fs::path& topic_dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(topic_dir)) {
    if (e.path().extension() == ".log") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Blocks the writer thread at its first batch (after the write, before the fsync) until
// released.
class sync_gate {
 public:
  std::function<void()> hook() {
    return [this] {
      std::unique_lock lk(m_);
      if (calls_++ > 0) return;
      cv_.notify_all();
      cv_.wait(lk, [this] { return released_; });
    };
  }
  void wait_entered() {
    std::unique_lock lk(m_);
    cv_.wait(lk, [this] { return calls_ > 0; });
  }
  void release() {
    std::lock_guard lk(m_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int calls_ = 0;
  bool released_ = false;
};

TEST(embedded_log_crc32c, matches_the_standard_check_value) {
  EXPECT_EQ(log_embedded::crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(log_embedded::crc32c(""), 0u);
  const std::string long_text(1000, 'a');
  const auto whole = log_embedded::crc32c(long_text);
  const auto split =
      log_embedded::crc32c_extend(log_embedded::crc32c_extend(0, long_text.data(), 13),
                                  long_text.data() + 13, long_text.size() - 13);
  EXPECT_EQ(whole, split);
}

TEST(embedded_log_crc32c, hardware_and_table_versions_agree) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  for (std::size_t off = 0; off < 9; ++off) {
    for (std::size_t len : {0, 1, 7, 8, 9, 63, 64, 65, 250}) {
      if (off + len > data.size()) continue;
      EXPECT_EQ(log_embedded::crc32c_extend(0x1234u, data.data() + off, len),
                log_embedded::crc32c_extend_portable(0x1234u, data.data() + off, len))
          << off << "+" << len;
    }
  }
  EXPECT_EQ(log_embedded::crc32c_extend_portable(0, "123456789", 9), 0xE3069283u);
}

TEST(embedded_log, reopening_keeps_every_record_and_continues_offsets) {
  temp_dir dir;
  {
    embedded_log log(dir.str(), log_config{});
    append_ok(log, "messages", values(0, 3));
    append_ok(log, "messages", values(3, 97));
  }
  embedded_log log(dir.str(), log_config{});
  expect_sequence(read_all(log, "messages", "g"), 0, 100);
  append_ok(log, "messages", values(100, 1));
  expect_sequence(read_all(log, "messages", "g"), 0, 101);
}

TEST(embedded_log, topics_written_in_one_batch_keep_their_own_offsets) {
  temp_dir dir;
  embedded_log log(dir.str(), log_config{});
  asio::io_context ioc;
  for (int i = 0; i < 90; ++i) {
    asio::co_spawn(
        ioc,
        [](embedded_log* log, int i) -> asio::awaitable<void> {
          auto r = co_await log->append("topic-" + std::to_string(i % 3), values(i / 3, 1));
          EXPECT_TRUE(r);
        }(&log, i),
        asio::detached);
  }
  ioc.run();
  for (int t = 0; t < 3; ++t) {
    const auto got = read_all(log, "topic-" + std::to_string(t), "g");
    ASSERT_EQ(got.size(), 30u);
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].offset, std::int64_t(i));
  }
}

TEST(embedded_log, names_with_path_characters_stay_inside_the_directory) {
  temp_dir dir;
  embedded_log log(dir.str(), log_config{});
  append_ok(log, "../evil/topic", values(0, 1));
  expect_sequence(read_all(log, "../evil/topic", "g/../x"), 0, 1);
  EXPECT_FALSE(fs::exists(dir.path().parent_path() / "evil"));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_TRUE(e.is_directory());
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

class embedded_log_torn_tail : public ::testing::Test {
 protected:
  void SetUp() override {
    embedded_log log(dir_.str(), log_config{});
    append_ok(log, "t", values(0, 10));
    file_ = segments(dir_.path() / "t").at(0);
    size_ = fs::file_size(file_);
  }
  void reopen_expect(int records) {
    embedded_log log(dir_.str(), log_config{});
    expect_sequence(read_all(log, "t", "g"), 0, records);
    append_ok(log, "t", values(records, 1));
    expect_sequence(read_all(log, "t", "g2"), 0, records + 1);
  }
  void write_at(std::uint64_t pos, std::string_view bytes) {
    const int fd = ::open(file_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(pos)),
              static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }

  temp_dir dir_;
  fs::path file_;
  std::uint64_t size_ = 0;
};

TEST_F(embedded_log_torn_tail, garbage_after_the_last_record_is_cut_off) {
  write_at(size_, "\x13\x00\x00\x00garbage that is not a record");
  reopen_expect(10);
}

TEST_F(embedded_log_torn_tail, a_partial_last_record_is_cut_off) {
  fs::resize_file(file_, size_ - 5);
  reopen_expect(9);
}

TEST_F(embedded_log_torn_tail, a_last_record_with_a_bad_checksum_is_cut_off) {
  write_at(size_ - 1, "?");
  reopen_expect(9);
}

TEST_F(embedded_log_torn_tail, a_huge_length_field_is_cut_off) {
  write_at(size_, std::string("\xff\xff\xff\x7f\x00\x00\x00\x00", 8));
  reopen_expect(10);
}

// A durable record found corrupt while reading: the poll returns the records before it (the
// consumer has moved past them, so dropping them would skip them for good), and the next
// poll reports the corruption.
TEST(embedded_log, a_corrupt_record_mid_poll_keeps_the_records_read_before_it) {
  temp_dir dir;
  embedded_log log(dir.str(), log_config{});
  append_ok(log, "t", values(0, 5, 20));
  const auto file = segments(dir.path() / "t").at(0);
  std::string bytes(fs::file_size(file), '\0');
  {
    const int fd = ::open(file.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pread(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    const auto at = bytes.find("v3x");  // inside record 3's value: its checksum fails
    ASSERT_NE(at, std::string::npos);
    ASSERT_EQ(::pwrite(fd, "w", 1, static_cast<off_t>(at)), 1);
    ::close(fd);
  }
  auto c = log.subscribe("t", "g");
  auto first = run(c->poll(100, 0ms));
  ASSERT_TRUE(first) << first.err().message;
  expect_sequence(*first, 0, 3);
  auto second = run(c->poll(100, 0ms));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.err().code, errc::internal);
  EXPECT_NE(second.err().message.find("corrupt durable record 3"), std::string::npos)
      << second.err().message;
}

TEST(embedded_log, concurrent_appends_share_fsyncs) {
  temp_dir dir;
  embedded_log log(dir.str(), log_config{});
  asio::io_context ioc;
  std::atomic<int> failed{0};
  for (int i = 0; i < 1000; ++i) {
    asio::co_spawn(
        ioc,
        [](embedded_log* log, int i, std::atomic<int>* failed) -> asio::awaitable<void> {
          if (!co_await log->append("m", values(i, 1))) ++*failed;
        }(&log, i, &failed),
        asio::detached);
  }
  std::thread other([&] { ioc.run(); });
  ioc.run();
  other.join();
  EXPECT_EQ(failed.load(), 0);
  const auto s = log.stats();
  EXPECT_EQ(s.appends, 1000u);
  EXPECT_EQ(s.records, 1000u);
  EXPECT_LT(s.fsyncs, s.appends / 4) << "batches " << s.batches;
  std::cout << "1000 concurrent appends: " << s.batches << " batches, " << s.fsyncs << " fsyncs\n";
  EXPECT_EQ(read_all(log, "m", "g").size(), 1000u);
}

TEST(embedded_log, appends_queued_during_an_fsync_are_committed_together) {
  temp_dir dir;
  sync_gate gate;
  embedded_log log(dir.str(), log_config{}, {.before_sync = gate.hook()});
  asio::io_context ioc;
  int done = 0;
  for (int i = 0; i < 1000; ++i) {
    asio::co_spawn(
        ioc,
        [](embedded_log* log, int i, int* done) -> asio::awaitable<void> {
          auto r = co_await log->append("m", values(i, 1));
          EXPECT_TRUE(r);
          ++*done;
        }(&log, i, &done),
        asio::detached);
  }
  ioc.poll();  // every append is queued, the first batch waits at the gate
  gate.wait_entered();
  gate.release();
  ioc.run();
  EXPECT_EQ(done, 1000);
  const auto s = log.stats();
  EXPECT_EQ(s.appends, 1000u);
  // The first batch took what was queued when the writer woke (maybe everything); the rest
  // queued while it waited and went out together.
  EXPECT_LE(s.batches, 2u);
  EXPECT_EQ(s.fsyncs, s.batches);
}

TEST(embedded_log, the_appends_of_one_event_loop_turn_wake_the_writer_once) {
  // All appends started by the handlers ready in one turn of an event loop go out in one
  // batch: the writer is woken once, after them, not by the first of them.
  temp_dir dir;
  embedded_log log(dir.str(), log_config{});
  asio::io_context ioc;
  int done = 0;
  for (int i = 0; i < 20; ++i) {
    asio::co_spawn(
        ioc,
        [](embedded_log* log, int i, int* done) -> asio::awaitable<void> {
          EXPECT_TRUE(co_await log->append("m", values(i, 1)));
          ++*done;
        }(&log, i, &done),
        asio::detached);
  }
  ioc.run();
  EXPECT_EQ(done, 20);
  const auto s = log.stats();
  EXPECT_EQ(s.appends, 20u);
  EXPECT_EQ(s.batches, 1u);
  EXPECT_EQ(s.fsyncs, 1u);
  expect_sequence(read_all(log, "m", "g"), 0, 20);
}

// Starts one append on `ioc` and runs it only up to its wait: its wake-up stays queued on
// `ioc`, never run. Expects the writer to take the append anyway, then completes it.
void expect_written_without_its_wake_up(embedded_log& log, int value) {
  asio::io_context ioc;
  std::optional<bool> ok;
  asio::co_spawn(
      ioc,
      [](embedded_log* log, int value, std::optional<bool>* ok) -> asio::awaitable<void> {
        *ok = static_cast<bool>(co_await log->append("m", values(value, 1)));
      }(&log, value, &ok),
      asio::detached);
  const auto before = log.stats().appends;
  ASSERT_EQ(ioc.poll_one(), 1u);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (log.stats().appends == before && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(log.stats().appends, before + 1) << "the writer never took the append";
  EXPECT_FALSE(ok.has_value());  // its completion waits for the loop, like the wake-up
  ioc.run();
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE(*ok);
}

TEST(embedded_log, an_append_whose_wake_up_never_runs_is_still_written) {
  // The wake-up is posted to the appending coroutine's event loop; if that loop never runs
  // it (stopped, or busy for long), the writer still finds the append: by its idle poll
  // while recently busy, and woken by the append itself after a long idle time.
  temp_dir dir;
  embedded_log log(dir.str(), log_config{});
  expect_written_without_its_wake_up(log, 0);
  std::this_thread::sleep_for(1200ms);  // past the writer's polling second
  expect_written_without_its_wake_up(log, 1);
  expect_sequence(read_all(log, "m", "g"), 0, 2);
}

TEST(embedded_log, a_full_queue_makes_appends_wait_and_loses_nothing) {
  temp_dir dir;
  log_config cfg;
  cfg.max_batch_records = 3;
  embedded_log_options opts;
  opts.max_queued_records = 5;
  embedded_log log(dir.str(), cfg, opts);
  asio::io_context ioc;
  int ok_count = 0;
  for (int i = 0; i < 60; ++i) {
    asio::co_spawn(
        ioc,
        [](embedded_log* log, int i, int* ok_count) -> asio::awaitable<void> {
          if (co_await log->append("m", values(i, 2))) ++*ok_count;
        }(&log, i, &ok_count),
        asio::detached);
  }
  ioc.run();
  EXPECT_EQ(ok_count, 60);
  EXPECT_EQ(read_all(log, "m", "g").size(), 120u);
  EXPECT_GE(log.stats().batches, 120u / 3);
}

TEST(embedded_log, records_are_invisible_until_durable) {
  temp_dir dir;
  sync_gate gate;
  embedded_log log(dir.str(), log_config{}, {.before_sync = gate.hook()});
  auto c = log.subscribe("m", "g");
  asio::io_context ioc;
  auto appended = asio::co_spawn(ioc, optional_of(log.append("m", values(0, 1))), asio::use_future);
  ioc.poll();
  gate.wait_entered();  // written, not yet fsync'd
  auto early = run(c->poll(10, 0ms));
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->empty());
  gate.release();
  ioc.run();
  ASSERT_TRUE(*appended.get());
  auto later = run(c->poll(10, 1s));
  ASSERT_TRUE(later);
  EXPECT_EQ(later->size(), 1u);
}

TEST(embedded_log, segments_roll_and_are_deleted_only_once_every_group_committed) {
  temp_dir dir;
  log_config cfg;
  cfg.segment_bytes = 1024;
  const fs::path topic_dir = dir.path() / "t";
  {
    embedded_log log(dir.str(), cfg);
    auto a = log.subscribe("t", "a");
    auto b = log.subscribe("t", "b");
    for (int i = 0; i < 100; i += 10) append_ok(log, "t", values(i, 10, 80));
    const auto initial = segments(topic_dir).size();
    ASSERT_GE(initial, 8u);
    for (const auto& s : segments(topic_dir)) EXPECT_LE(fs::file_size(s), 1024u);

    auto all_a = run(a->poll(100, 0ms));
    ASSERT_TRUE(all_a);
    ASSERT_EQ(all_a->size(), 100u);
    EXPECT_EQ(segments(topic_dir).size(), initial) << "polling alone deletes nothing";
    ASSERT_TRUE(run(a->commit(*all_a)));
    EXPECT_EQ(segments(topic_dir).size(), initial) << "group b has consumed nothing";

    auto half_b = run(b->poll(50, 0ms));
    ASSERT_TRUE(half_b);
    ASSERT_EQ(half_b->size(), 50u);
    ASSERT_TRUE(run(b->commit(*half_b)));
    const auto left = segments(topic_dir);
    EXPECT_LT(left.size(), initial);
    // The first remaining segment still holds offset 50 or starts at it.
    EXPECT_LE(std::stoll(left.front().stem().string()), 50);
  }
  // After a restart, group b resumes at 50 and a new group starts at the first retained
  // record.
  embedded_log log(dir.str(), cfg);
  expect_sequence(read_all(log, "t", "b"), 50, 50);
  const auto fresh = read_all(log, "t", "new-group");
  ASSERT_FALSE(fresh.empty());
  EXPECT_GT(fresh.front().offset, 0);
  EXPECT_EQ(fresh.back().offset, 99);
  append_ok(log, "t", values(100, 1, 80));
  expect_sequence(read_all(log, "t", "b"), 50, 51);
}

TEST(embedded_log, stop_fails_pending_appends_with_unavailable) {
  temp_dir dir;
  sync_gate gate;
  embedded_log log(dir.str(), log_config{}, {.before_sync = gate.hook()});
  asio::io_context ioc;
  auto first = asio::co_spawn(ioc, optional_of(log.append("m", values(0, 1))), asio::use_future);
  ioc.poll();
  gate.wait_entered();  // the first append is being written
  std::vector<std::future<std::optional<result<void>>>> pending;
  for (int i = 1; i <= 10; ++i) {
    pending.push_back(
        asio::co_spawn(ioc, optional_of(log.append("m", values(i, 1))), asio::use_future));
  }
  ioc.poll();
  std::thread stopper([&] { log.stop(); });  // joins the writer: returns after release()
  for (auto& p : pending) {
    while (p.wait_for(0s) != std::future_status::ready) ioc.run_one_for(10ms);
    auto r = *p.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, errc::unavailable);
  }
  gate.release();
  stopper.join();
  ioc.run();
  EXPECT_TRUE(*first.get()) << "the batch being written completes normally";

  auto after = run(log.append("m", values(11, 1)));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.err().code, errc::unavailable);
  auto c = log.subscribe("m", "g");
  auto polled = run(c->poll(10, 0ms));
  ASSERT_FALSE(polled);
  EXPECT_EQ(polled.err().code, errc::unavailable);
}

TEST(embedded_log, stop_wakes_a_waiting_poll) {
  temp_dir dir;
  embedded_log log(dir.str(), log_config{});
  auto c = log.subscribe("m", "g");
  asio::io_context ioc;
  auto polled = asio::co_spawn(ioc, optional_of(c->poll(10, 30s)), asio::use_future);
  ioc.poll();
  log.stop();
  const auto start = std::chrono::steady_clock::now();
  ioc.run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  auto r = *polled.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
}

TEST(embedded_log, rejects_an_empty_topic_and_an_oversized_record) {
  temp_dir dir;
  embedded_log log(dir.str(), log_config{});
  auto r = run(log.append("", values(0, 1)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_input);
  std::vector<log_record> big{{"k", std::string(log_embedded::max_frame_bytes, 'x')}};
  auto r2 = run(log.append("m", std::move(big)));
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.err().code, errc::too_large);
}

// A child process appends and reports each acknowledged offset through a pipe; it is killed
// with SIGKILL mid-stream. Every acknowledged record must be there after reopening.
TEST(embedded_log, acknowledged_records_survive_kill_9) {
  temp_dir dir;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    embedded_log log(dir.str(), log_config{});
    asio::io_context ioc;
    asio::co_spawn(
        ioc,
        [](embedded_log* log, int out) -> asio::awaitable<void> {
          for (int i = 0;; i += 4) {
            if (!co_await log->append("m", values(i, 4, 100))) ::_exit(3);
            const std::int32_t acked = i + 4;
            if (::write(out, &acked, sizeof acked) != sizeof acked) ::_exit(4);
          }
        }(&log, fds[1]),
        asio::detached);
    ioc.run();
    ::_exit(2);
  }
  ::close(fds[1]);
  std::int32_t acked = 0, v = 0;
  while (acked < 400 && ::read(fds[0], &v, sizeof v) == sizeof v) acked = v;
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  while (::read(fds[0], &v, sizeof v) == sizeof v) acked = v;
  ::close(fds[0]);
  ASSERT_GE(acked, 400);

  embedded_log log(dir.str(), log_config{});
  const auto got = read_all(log, "m", "g");
  ASSERT_GE(got.size(), std::size_t(acked));
  expect_sequence(std::vector<log_entry>(got.begin(), got.begin() + acked), 0, acked);
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].offset, std::int64_t(i));
}

}  // namespace
}  // namespace chat4all
