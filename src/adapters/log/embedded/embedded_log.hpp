#pragma once
// embedded_log: the durable event log of the embedded (single-node) mode, in plain files.
//
// Layout: <dir>/<topic>/<20-digit base offset>.log segment files (a new one once the active
// one reaches log_config::segment_bytes) and <dir>/<topic>/consumer-<group>.offset. One
// partition (0) per topic; offsets 0, 1, 2, ... Records are framed with a CRC-32C
// (record_format.hpp); on open, a torn or corrupt tail of the last segment is cut off.
//
// Group commit: append() queues its records for the log's single writer thread, which
// takes everything queued (up to log_config::max_batch_records), writes it with one write
// per segment and makes it durable with one fdatasync, then completes all those appends.
// The queue is bounded: an append that does not fit waits (suspended, in FIFO order) until
// the writer has made room.
//
// Consumers see only durable records. Segments that every known consumer group has
// committed past are deleted on commit (the active segment never is).
//
// Thread-safety: every member function may be called from any thread; append() resumes the
// awaiting coroutine on its own executor. A log_consumer is used by one coroutine at a time.
// Lifetime: consumers may outlive the log (they then report `unavailable`). An append or
// poll keeps its coroutine's executor busy until it completes: stop() the log before
// destroying the io_context of a coroutine that may still be waiting on it. A consumer
// group that subscribed once is kept (in memory, or in its offset file once it committed)
// and holds back retention until it commits.
// Errors: append -> invalid_input (empty topic), too_large (a record over 64 MiB),
// unavailable (stopped, or an I/O error: a topic whose write or fsync failed stays
// unwritable until restart, since a failed fsync may have lost pages silently).
// poll -> unavailable (stopped, or an I/O error), internal (a durable record is corrupt);
// commit -> unavailable (the offset file can't be written).
// The constructor and subscribe() throw std::system_error when the directory can't be used.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/config.hpp"
#include "domain/ports/event_log.hpp"

namespace chat4all {
namespace log_embedded {
class log_core;
}

struct embedded_log_stats {
  std::uint64_t appends = 0;  // completed append() calls written to disk
  std::uint64_t records = 0;
  std::uint64_t batches = 0;  // writer rounds (one write + one fsync per topic touched)
  std::uint64_t fsyncs = 0;   // fdatasync calls on segment files
  std::uint64_t bytes = 0;    // framed bytes written
};

struct embedded_log_options {
  // Bound of the writer's queue; an append that would exceed it waits. 0: four batches.
  std::size_t max_queued_records = 0;
  std::size_t max_queued_bytes = 64 * 1024 * 1024;
  // Fault injection for tests: runs on the writer thread after a batch is written and
  // before it is made durable. Empty in production.
  std::function<void()> before_sync;
};

class embedded_log final : public event_log {
 public:
  // Creates `dir` if needed and starts the writer thread. Topics are opened (and recovered)
  // on first use.
  embedded_log(std::string dir, log_config cfg, embedded_log_options opts = {});
  ~embedded_log() override;  // stop()
  embedded_log(const embedded_log&) = delete;
  embedded_log& operator=(const embedded_log&) = delete;

  boost::asio::awaitable<result<void>> append(std::string topic,
                                              std::vector<log_record> records) override;
  // The consumer starts after the group's committed offset (the first retained record for a
  // new group). Opens the topic if needed (file I/O on the calling thread).
  std::unique_ptr<log_consumer> subscribe(std::string topic, std::string group) override;
  // Idempotent. Appends not yet being written complete with `unavailable`; the batch being
  // written completes normally; waiting polls return; the writer thread is joined.
  void stop() override;

  embedded_log_stats stats() const;

 private:
  std::shared_ptr<log_embedded::log_core> core_;  // shared with consumers and appends
};

}  // namespace chat4all
