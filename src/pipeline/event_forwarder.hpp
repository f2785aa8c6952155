#pragma once
// The forwarder stage (cluster mode, runs with the router): consumes the
// `conversation_events` log topic — events that started in the database and reached Kafka
// through the transactional outbox and the relay (conversation created, read receipts) —
// and publishes each on its fan-out channel, then commits. At-least-once: a crash between
// publish and commit publishes again (real-time events are best-effort for clients, who
// recover state from the REST API).

#include <atomic>
#include <memory>

#include "domain/ports/event_log.hpp"
#include "domain/ports/fanout.hpp"
#include "domain/ports/store.hpp"  // task
#include "obs/metrics.hpp"

namespace chat4all {

class event_forwarder {
 public:
  static constexpr const char* group = "forwarder";  // its consumer group
  event_forwarder(event_log& log, fanout& fan, obs::metrics_registry& metrics);
  ~event_forwarder();

  task<void> run();
  // One poll: publishes what it got and commits it. Returns how many records it handled.
  task<result<std::size_t>> step(std::chrono::milliseconds wait);
  void stop() noexcept { stopping_ = true; }

 private:
  std::unique_ptr<log_consumer> consumer_;
  fanout& fanout_;
  std::atomic<bool> stopping_{false};
  obs::counter& forwarded_;
  obs::counter& undecodable_;
};

}  // namespace chat4all
