#pragma once
// The router stage (SPEC §6): consumes accepted messages from the `messages` log topic in
// batches, stores them (seq assigned by the store, idempotent on message_id), hands channel
// copies to connectors, publishes `message.created` to the conversation's real-time channel,
// and commits the log position only after the store succeeded. A crash anywhere replays
// from the last commit; the idempotent store makes the replay invisible.

#include <atomic>
#include <memory>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "domain/inflight_messages.hpp"
#include "domain/ports/channel_dispatch.hpp"
#include "domain/ports/event_log.hpp"
#include "domain/ports/fanout.hpp"
#include "domain/ports/store.hpp"
#include "obs/metrics.hpp"

namespace chat4all {

class message_router {
 public:
  message_router(event_log& log, message_store& store, fanout& fan, channel_dispatch& channels,
                 inflight_messages& inflight, const clock& clk, router_config cfg,
                 obs::metrics_registry& metrics);
  ~message_router();

  // Consumes until stop(). Transient store errors are retried with exponential backoff;
  // undecodable records are logged, counted and skipped.
  task<void> run();
  // Processes everything already in the log, then returns (start-up catch-up, so that the
  // store answers idempotency checks for every accepted message before traffic starts).
  task<result<std::size_t>> drain();
  void stop() noexcept { stopping_ = true; }

 private:
  // One poll + store + commit. Returns the number of entries handled (0 on idle timeout).
  task<result<std::size_t>> step(std::chrono::milliseconds wait);

  std::unique_ptr<log_consumer> consumer_;
  message_store& store_;
  fanout& fanout_;
  channel_dispatch& channels_;
  inflight_messages& inflight_;
  const clock& clock_;
  router_config cfg_;
  std::atomic<bool> stopping_{false};

  obs::counter& stored_;
  obs::counter& duplicates_;
  obs::counter& poison_;
  obs::counter& store_errors_;
  obs::histogram& accept_to_store_;
  obs::histogram& batch_size_;
};

}  // namespace chat4all
