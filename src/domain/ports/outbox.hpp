#pragma once
// The transactional outbox (SPEC §6): log records committed to the database when the event
// log cannot take them, published later, in order, by the relay (pipeline/outbox_relay).
// Adapter: pg_store (cluster mode). The embedded default needs none: its log is local.
//
// Order: entries have increasing ids in commit order; the relay publishes them in id order.
// Only the holder of the publisher lease publishes, so several relays may run (one active,
// the others standing by) without reordering a conversation. A lease holder that stalls
// past its lease may publish a record a second time: the router's store is idempotent.
//
// Thread-safety: every method may be called concurrently from any thread and process.
// Errors: unavailable when the database cannot be reached (retryable).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "domain/ports/event_log.hpp"
#include "domain/ports/store.hpp"  // task

namespace chat4all {

struct outbox_entry {
  std::int64_t id = 0;
  std::string topic;
  log_record record;
  int attempts = 0;  // failed publish attempts with a permanent error so far
  timestamp_us created_at = 0;
};

class outbox {
 public:
  virtual ~outbox() = default;
  // Commits every record in one transaction, in order. Completes once durable.
  virtual task<result<void>> enqueue(std::string topic, std::vector<log_record> records,
                                     timestamp_us now) = 0;
  // Entries waiting to be published.
  virtual task<result<std::int64_t>> backlog() = 0;
  // Takes the publisher lease for `holder`, or renews it when `holder` has it, for `ttl`
  // (measured on the database's clock). False when another holder's lease is still valid.
  virtual task<result<bool>> acquire_lease(std::string holder, std::chrono::milliseconds ttl) = 0;
  // Gives the lease up (no-op when `holder` does not have it).
  virtual task<result<void>> release_lease(std::string holder) = 0;
  // The oldest `max` entries, in id order.
  virtual task<result<std::vector<outbox_entry>>> oldest(std::size_t max) = 0;
  // Deletes published (or dead-lettered) entries.
  virtual task<result<void>> remove(std::vector<std::int64_t> ids) = 0;
  // Counts one more failed attempt of entry `id` and keeps `reason`; returns the new count.
  virtual task<result<int>> note_failure(std::int64_t id, std::string reason) = 0;
};

}  // namespace chat4all
