#pragma once
// outbox_log: the event_log the API writes accepted messages to in cluster mode. It appends
// to the primary log (Kafka) and, when the primary does not acknowledge within
// `fallback_after` (or fails), commits the records to the transactional outbox instead
// (SPEC §6): the 202 stays durable while Kafka is unreachable. The relay
// (pipeline/outbox_relay) publishes the outbox to the primary, in order, once it is back.
//
// Modes (per process):
//   direct     appends go to the primary, each raced against fallback_after;
//   diverting  after a fallback: every append goes to the outbox, so a conversation's
//              messages stay in acceptance order behind the ones already there;
//   holding    the way back: when the primary looks healthy and the backlog is small, new
//              appends wait (at most hold_max) until this process has no outbox write in
//              flight and the outbox is empty, i.e. the relay published everything; then
//              direct again. If the outbox does not empty in time: diverting again.
// A record whose primary append timed out may still reach the primary later, besides its
// outbox copy: the router's store is idempotent, so no duplicate is ever visible, and the
// copy that comes first keeps the order.
// Across processes, the order of two messages accepted by *different* API instances while
// only one of them sees Kafka failing is not defined (nor is it for concurrent requests).
//
// Thread-safety: append() may be called concurrently from any executor.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "core/clock.hpp"
#include "domain/ports/event_log.hpp"
#include "domain/ports/outbox.hpp"
#include "obs/metrics.hpp"

namespace chat4all {

struct outbox_log_options {
  std::chrono::milliseconds fallback_after{2000};
  std::chrono::milliseconds check_every{1000};  // while diverting: how often to try the way back
  std::chrono::milliseconds hold_max{3000};
  std::int64_t hold_below = 10000;  // try the way back only when the backlog is this small
};

class outbox_log final : public event_log {
 public:
  enum class mode { direct = 0, diverting = 1, holding = 2 };

  // `primary_healthy` tells whether the primary looks reachable (e.g. Kafka metadata
  // refreshed); it is only a hint for when to try the way back.
  outbox_log(event_log& primary, outbox& box, const clock& clk,
             std::function<bool()> primary_healthy, outbox_log_options opts,
             obs::metrics_registry& metrics);
  ~outbox_log() override;

  boost::asio::awaitable<result<void>> append(std::string topic,
                                              std::vector<log_record> records) override;
  std::unique_ptr<log_consumer> subscribe(std::string topic, std::string group) override {
    return primary_.subscribe(std::move(topic), std::move(group));
  }
  void stop() override { primary_.stop(); }

  mode current_mode() const noexcept { return mode_.load(); }

 private:
  boost::asio::awaitable<result<void>> to_outbox(std::string topic,
                                                 std::vector<log_record> records);
  boost::asio::awaitable<void> try_way_back();
  void set_mode(mode m);

  event_log& primary_;
  outbox& box_;
  const clock& clock_;
  std::function<bool()> primary_healthy_;
  const outbox_log_options opts_;

  std::atomic<mode> mode_{mode::direct};
  std::atomic<int> outbox_writes_{0};  // enqueues in flight
  std::atomic<bool> checking_{false};  // one way-back attempt at a time
  std::atomic<std::int64_t> last_check_ms_{0};

  obs::counter& diverted_;
  obs::counter& fallbacks_;
  obs::gauge& mode_gauge_;
  obs::gauge& backlog_;
};

}  // namespace chat4all
