#pragma once
// One topic of the embedded log: a directory of segment files (<20-digit base offset>.log)
// and one committed-offset file per consumer group (consumer-<group>.offset).
//
// Thread-safety: members under "writer thread" are touched only by the log's writer thread
// after open(); members under "shared" only with `mu` held; open() and commit() may be
// called from any thread.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/completion.hpp"
#include "core/error.hpp"

namespace chat4all::log_embedded {

// Encodes a topic or group name as one file-name component: [A-Za-z0-9_-] and a non-leading
// '.' are kept, every other byte becomes %XX. decode_name() is its inverse ("" if invalid).
std::string encode_name(std::string_view name);
std::string decode_name(std::string_view file_name);

// An owned POSIX file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A consumer waiting in poll() for new durable records; fired at most once, by whoever
// comes first (the writer, the poll timeout, stop()).
class poll_waiter {
 public:
  explicit poll_waiter(std::unique_ptr<completion<>> c) : c_(std::move(c)) {}
  void fire();

 private:
  std::mutex m_;
  std::unique_ptr<completion<>> c_;
};

class topic {
 public:
  topic(std::filesystem::path dir, bool fsync);

  // Creates the directory (and a first segment) if needed, cuts a torn or corrupt tail off
  // the last segment, loads committed group offsets. Idempotent; retried after a failure.
  // Throws std::system_error / std::filesystem::filesystem_error on I/O failure.
  void open();

  std::filesystem::path segment_path(std::int64_t base) const;
  const std::filesystem::path& dir() const { return dir_; }

  // The starting position of `group`: its committed offset, else the first retained
  // offset. Registers the group so that retention keeps what it has not consumed.
  std::int64_t register_group(const std::string& group);

  // Persists `offset` (the next offset to consume) for `group`, then deletes the segments
  // that every group has consumed entirely. Errors: unavailable when the file can't be
  // written.
  result<void> commit(const std::string& group, std::int64_t offset);

  // Writer thread: records below `end` are durable. Wakes the waiting consumers.
  void publish_durable(std::int64_t end);
  // Writer thread: a new segment file with base offset `base` exists.
  void add_segment(std::int64_t base);
  // Wakes every waiting consumer (used by stop()).
  void wake_all();

  // ---- writer thread ----
  unique_fd active_fd;
  std::int64_t active_base = 0;
  std::uint64_t active_size = 0;
  std::int64_t next_offset = 0;
  std::string poisoned;  // non-empty: an I/O error made the topic unwritable until restart

  // ---- shared, under mu ----
  std::mutex mu;
  std::vector<std::int64_t> segments;  // base offsets, ascending, never empty once open
  std::int64_t durable_end = 0;        // consumers see offsets below this
  std::map<std::string, std::int64_t> groups;
  std::vector<std::shared_ptr<poll_waiter>> waiters;

 private:
  void open_once();

  std::filesystem::path dir_;
  bool fsync_;
  std::once_flag open_once_;
  std::mutex commit_mu_;  // serialises offset-file writes
};

// fdatasync of a directory (its entries), for a newly created file to survive power loss.
void sync_dir(const std::filesystem::path& dir);

}  // namespace chat4all::log_embedded
