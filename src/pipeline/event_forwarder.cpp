#include "pipeline/event_forwarder.hpp"

#include <algorithm>

#include "domain/events.hpp"
#include "obs/logging.hpp"
#include "pipeline/pause.hpp"

namespace chat4all {
using std::chrono::milliseconds;

event_forwarder::event_forwarder(event_log& log, fanout& fan, obs::metrics_registry& metrics)
    : consumer_(log.subscribe(conversation_events_topic, group)),
      fanout_(fan),
      forwarded_(metrics.counter("chat4all_forwarded_events_total",
                                 "Database-originated events published to the fan-out")),
      undecodable_(metrics.counter("chat4all_forwarder_undecodable_total",
                                   "conversation_events records that were not events (skipped)")) {}

event_forwarder::~event_forwarder() = default;

task<result<std::size_t>> event_forwarder::step(milliseconds wait) {
  auto polled = co_await consumer_->poll(1000, wait);
  if (!polled) co_return std::move(polled).err();
  if (polled->empty()) co_return std::size_t{0};
  for (const auto& e : *polled) {
    auto ev = decode_change_event(e.value);
    if (!ev) {
      undecodable_.inc();
      log::warn("skipping a conversation_events record that is not an event",
                {{"partition", e.partition}, {"offset", e.offset}});
      continue;
    }
    fanout_.publish(std::move(ev->first), std::move(ev->second));
    forwarded_.inc();
  }
  if (auto c = co_await consumer_->commit(*polled); !c) co_return std::move(c).err();
  co_return polled->size();
}

task<void> event_forwarder::run() {
  milliseconds backoff(100);
  while (!stopping_) {
    auto r = co_await step(milliseconds(200));
    if (r) {
      backoff = milliseconds(100);
      continue;
    }
    log::warn("forwarder step failed; backing off",
              {{"code", r.err().name()}, {"reason", r.err().message}});
    if (!co_await pause_unless_stopping(stopping_, backoff)) break;
    backoff = std::min(backoff * 2, milliseconds(4000));
  }
}

}  // namespace chat4all
