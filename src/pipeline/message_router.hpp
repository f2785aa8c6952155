#pragma once
// The router stage (SPEC §6): consumes accepted messages from the `messages` log topic in
// batches, stores them (seq assigned by the store, idempotent on message_id), hands channel
// copies to connectors, publishes `message.created` to the conversation's real-time channel,
// and commits the log position only after the store succeeded. A crash anywhere replays
// from the last commit; the idempotent store makes the replay invisible.
//
// Failures (SPEC §6): a failed store is retried cfg.max_retries times with exponential
// backoff (cfg.retry_initial_ms, doubling: 1 s, 2 s, 4 s). After the last retry the batch is
// stored one message at a time; each message that still fails is recorded with
// store_failed (status FAILED, the reason in its history), then appended to the
// dead-letter topic `message_processing_dlq` (the original log record plus the reason) and
// counted; then the position is committed as usual. Undecodable records are dead-lettered
// too. A polled batch is kept until it is committed: a step that fails part-way (store
// unreachable even for store_failed, log append or commit failing) is resumed by the next
// step on the same entries, never skipped.
//
// Pipelined under a backlog: while a full batch is being stored (on the store's writer
// thread), the next one is polled and decoded here, so the writer does not wait for the decoding
// and the decoding does not wait for the writer. Batches are still stored, committed and reported
// one at a time and in log order; a prefetched batch is simply the next one handled.

#include <atomic>
#include <memory>
#include <optional>
#include <unordered_set>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "domain/inflight_messages.hpp"
#include "domain/ports/channel_dispatch.hpp"
#include "domain/ports/event_log.hpp"
#include "domain/ports/fanout.hpp"
#include "domain/ports/store.hpp"
#include "obs/metrics.hpp"

namespace chat4all {

// The dead-letter topic (SPEC §6), keyed by conversation id. Each record is a JSON object:
// {"v":1, "topic":"messages", "partition", "offset", "message_id" (absent when the record
// could not be decoded), "reason", "failed_at" (µs since the epoch), "record" (the original
// log record, as a string)}.
inline constexpr const char* dead_letter_topic = "message_processing_dlq";

class message_router {
 public:
  message_router(event_log& log, message_store& store, fanout& fan, channel_dispatch& channels,
                 inflight_messages& inflight, const clock& clk, router_config cfg,
                 obs::metrics_registry& metrics);
  ~message_router();

  // Consumes until stop(). Store errors are retried with exponential backoff, then
  // dead-lettered (see above); undecodable records are logged, counted and dead-lettered.
  task<void> run();
  // Processes everything already in the log, then returns (start-up catch-up, so that the
  // store answers idempotency checks for every accepted message before traffic starts).
  task<result<std::size_t>> drain();
  void stop() noexcept { stopping_ = true; }

 private:
  // A polled batch, from its poll until its position is committed, and what is done of it.
  struct pending_batch {
    std::vector<log_entry> entries;
    std::vector<accepted_message> messages;      // decoded, for the first store attempt only
    std::vector<uuid> ids;                       // of every decodable entry
    bool stored = false;                         // all stored, or recorded FAILED
    std::vector<message> with_channels;          // stored, still to hand to channels
    std::unordered_set<uuid, uuid_hash> failed;  // recorded FAILED (skipped from now on)
    std::vector<log_record> dead_letters;        // still to append to dead_letter_topic
  };

  // One poll (unless a batch is pending) + store + commit. Returns the number of entries
  // handled (0 on idle timeout).
  // `linger`: after a partial poll that followed a non-empty one, wait this long and take
  // what arrived meanwhile into the same batch (run() only; drain() never lingers).
  task<result<std::size_t>> step(std::chrono::milliseconds wait,
                                 std::chrono::milliseconds linger = {});
  // Polls (with the linger above) and decodes a batch; nullopt when the poll was empty.
  task<result<std::optional<pending_batch>>> poll_batch(std::chrono::milliseconds wait,
                                                        std::chrono::milliseconds linger);
  // store(p), and meanwhile the next batch polled (without waiting) into next_.
  task<result<void>> store_and_prefetch(pending_batch& p);
  // Stores the batch: retries with backoff, then one message at a time, recording those
  // that still fail with store_failed and queueing their dead-letter records.
  task<result<void>> store(pending_batch& p);
  // The batch's messages decoded again from its entries, without those recorded FAILED.
  std::vector<accepted_message> redecode(const pending_batch& p) const;
  // Metrics, fan-out and the channel list for messages just stored.
  void on_stored(pending_batch& p, const std::vector<message>& stored, std::size_t attempted);
  // Waits `d` in short slices; false as soon as stop() was called.
  task<bool> pause(std::chrono::milliseconds d);

  event_log& log_;

  std::unique_ptr<log_consumer> consumer_;
  message_store& store_;
  fanout& fanout_;
  channel_dispatch& channels_;
  inflight_messages& inflight_;
  const clock& clock_;
  router_config cfg_;
  std::atomic<bool> stopping_{false};
  bool busy_ = false;  // the last poll returned entries: linger on a partial one
  std::optional<pending_batch> pending_;
  std::optional<pending_batch> next_;  // polled and decoded while pending_ was being stored

  obs::counter& stored_;
  obs::counter& duplicates_;
  obs::counter& poison_;
  obs::counter& store_errors_;
  obs::counter& failed_;
  obs::counter& dead_letters_;
  obs::counter& prefetched_;
  obs::histogram& accept_to_store_;
  obs::histogram& batch_size_;
};

}  // namespace chat4all
