#pragma once
// The shared state of an embedded_log: topics, the bounded append queue and the group-commit
// writer thread. Internal to the adapter; see embedded_log.hpp for the contract.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/log/embedded/embedded_log.hpp"
#include "adapters/log/embedded/topic.hpp"
#include "core/completion.hpp"

namespace chat4all::log_embedded {

struct append_outcome {
  errc code = errc::ok;
  std::string message;
};

struct append_request {
  std::shared_ptr<topic> t;
  std::vector<log_record> records;
  std::size_t bytes = 0;  // framed
  std::unique_ptr<completion<append_outcome>> done;
};

class log_core {
 public:
  log_core(std::filesystem::path dir, log_config cfg, embedded_log_options opts);
  ~log_core();
  log_core(const log_core&) = delete;
  log_core& operator=(const log_core&) = delete;

  // The topic object (not opened yet). Thread-safe.
  std::shared_ptr<topic> get_topic(const std::string& name);
  // Queues `r` for the writer, parks it while the queue is full, or completes it with
  // `unavailable` after stop(). Thread-safe; never blocks on I/O.
  //
  // It does not wake the writer itself. It returns true when the caller must call wake()
  // soon: the writer may be waiting and no earlier caller has promised to wake it. A caller
  // on an event loop wakes it once the loop's ready work has run, so all the appends of
  // one turn share one wake-up and one fsync instead of each waking the writer (on two
  // cores, a wake-up per request cost more than the write). A wake that comes late or never
  // (its event loop busy or stopped) delays the queued appends by at most the idle writer's
  // poll (5 ms); a writer idle for a second sleeps without polling and submit() wakes it.
  [[nodiscard]] bool submit(append_request r);
  // Wakes the writer for what is queued. Thread-safe, cheap when the writer is busy.
  void wake();
  void stop();
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  embedded_log_stats stats() const;

 private:
  struct topic_work;

  void run_writer();
  bool fits_locked(const append_request& r) const;
  void admit_parked_locked();
  void write_batch(std::vector<append_request>& batch);
  void write_topic(topic_work& w);
  bool flush(topic_work& w);
  bool roll(topic_work& w);
  void sync_topic(topic_work& w);
  void poison(topic_work& w, std::string why);

  const std::filesystem::path dir_;
  const log_config cfg_;
  const embedded_log_options opts_;
  const std::size_t max_queued_records_;
  const std::size_t max_queued_bytes_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<append_request> queue_;   // taken by the writer
  std::deque<append_request> parked_;  // waiting for room in queue_, FIFO
  std::size_t queued_records_ = 0;
  std::size_t queued_bytes_ = 0;
  bool stopping_ = false;
  bool wake_promised_ = false;  // a submit() returned true and its wake() is still to come
  bool writer_asleep_ = false;  // idle for long, not polling: submit() must wake it
  std::atomic<bool> stopped_{false};

  std::mutex topics_mu_;
  std::map<std::string, std::shared_ptr<topic>> topics_;

  std::atomic<std::uint64_t> appends_{0}, records_{0}, batches_{0}, fsyncs_{0}, bytes_{0};

  std::string buf_;  // writer thread: the framed records of one topic in one batch
  std::once_flag join_once_;
  std::thread writer_;  // last: starts after everything above is initialised
};

}  // namespace chat4all::log_embedded
