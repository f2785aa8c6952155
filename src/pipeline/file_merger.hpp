#pragma once
// The `merger` role: consumes `file_merge_requests` (one record per completed upload, key =
// upload id) and runs upload_service::merge for each, committing offsets only after the
// merge reached a final state (COMPLETED or FAILED), so a crash mid-merge merges again
// (merge is idempotent). And the `gc` task: every uploads.gc_interval_s it expires abandoned
// uploads (upload_service::expire_due).
//
// Lifetime: run() is a coroutine on one executor; stop() (any thread) makes it return soon.

#include <atomic>
#include <chrono>
#include <memory>

#include "domain/ports/event_log.hpp"
#include "domain/upload_service.hpp"

namespace chat4all {

class file_merger {
 public:
  file_merger(event_log& log, upload_service& files, std::string group = "merger");
  task<void> run();
  void stop() noexcept { stopping_ = true; }

 private:
  task<bool> pause(std::chrono::milliseconds d);
  upload_service& files_;
  std::unique_ptr<log_consumer> consumer_;
  std::atomic<bool> stopping_{false};
};

class upload_gc {
 public:
  upload_gc(upload_service& files, std::chrono::seconds interval);
  // One pass: expires every due upload (in batches); returns how many.
  task<result<int>> sweep();
  task<void> run();
  void stop() noexcept { stopping_ = true; }

 private:
  upload_service& files_;
  std::chrono::seconds interval_;
  std::atomic<bool> stopping_{false};
};

}  // namespace chat4all
