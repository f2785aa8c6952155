#pragma once
// The relay stage (SPEC §6, role `relay`): publishes the transactional outbox to the event
// log, oldest first, and deletes what the log acknowledged.
//
// One relay publishes at a time: each loop takes or renews the outbox's publisher lease
// (cfg.lease_ms); the others stand by and take over when the lease expires (a crashed or
// partitioned relay). Consecutive entries of one topic are appended as one batch, in id
// order, so every conversation keeps its acceptance order.
//
// Failures: the log unavailable (Kafka down, a delivery timeout) -> the entries stay, the
// relay waits with exponential backoff (backoff_initial_ms doubling up to backoff_max_ms)
// and tries again. A permanent rejection (a record the log refuses, e.g. too large) is
// retried entry by entry; an entry refused max_attempts times goes to the dead-letter topic
// `message_processing_dlq` with the reason, and, when it is an accepted message, is marked
// FAILED in the store (like the router's poison messages). Nothing is deleted before the
// log (or the DLQ) acknowledged it: a crash re-publishes at most the batch in flight, which
// the router's idempotent store makes invisible.
//
// Metrics: chat4all_outbox_backlog, chat4all_outbox_published_records_total,
// chat4all_outbox_dead_letters_total, chat4all_outbox_relay_errors_total,
// chat4all_outbox_relay_leader (1 while this relay holds the lease).

#include <atomic>
#include <string>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "domain/ports/event_log.hpp"
#include "domain/ports/outbox.hpp"
#include "domain/ports/store.hpp"
#include "obs/metrics.hpp"

namespace chat4all {

class outbox_relay {
 public:
  // `log` is the primary log (Kafka), not an outbox_log.
  outbox_relay(outbox& box, event_log& log, message_store& store, const clock& clk,
               relay_config cfg, obs::metrics_registry& metrics);

  // Relays until stop(); then gives the lease up.
  task<void> run();
  // One pass: publishes up to cfg.batch_size entries if this relay holds (or gets) the
  // lease. Returns how many entries left the outbox; unavailable when the log or the
  // database failed (the caller backs off).
  task<result<std::size_t>> step();
  void stop() noexcept { stopping_ = true; }
  const std::string& holder() const noexcept { return holder_; }

 private:
  task<result<void>> publish_one_by_one(const std::vector<outbox_entry>& entries);
  task<result<void>> dead_letter(const outbox_entry& e, const std::string& reason);
  task<bool> pause(std::chrono::milliseconds d);

  outbox& box_;
  event_log& log_;
  message_store& store_;
  const clock& clock_;
  const relay_config cfg_;
  const std::string holder_;
  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point next_backlog_read_{};

  obs::gauge& backlog_;
  obs::gauge& leader_;
  obs::counter& published_;
  obs::counter& dead_letters_;
  obs::counter& errors_;
};

}  // namespace chat4all
