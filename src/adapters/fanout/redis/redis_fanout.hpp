#pragma once
// redis_fanout: the fanout of the cluster mode, over Redis pub/sub, so that an event
// published by any instance reaches the subscribers of every instance.
//
// Two connections to Redis, both driven by hiredis' asynchronous API on the adapter's own
// thread (an io_context of its own): one carries PUBLISH commands, pipelined, the other
// SUBSCRIBE/UNSUBSCRIBE and the messages. Channel names on Redis are
// `channel_prefix + channel`; handlers see the channel name without the prefix.
//
// publish() never blocks: it queues the payload for the adapter thread. At most
// `max_pending` payloads are queued or awaiting Redis' reply; beyond that (Redis slow or
// unreachable) payloads are dropped and counted. Delivery is best-effort, at most once, as
// the port says: clients recover gaps with `resume` from the store. Per channel, payloads
// published through one redis_fanout reach every subscriber in publish order (one
// connection, one queue); Redis does not order payloads of different publishers.
//
// subscribe(): the first local subscriber of a channel makes the adapter send SUBSCRIBE,
// and subscribe() waits (at most subscribe_confirm_timeout) for Redis to confirm it, so a
// publish made after subscribe() returns is received. It does not wait when the subscribe
// connection is down (the subscription goes live when it is back) nor when called on the
// adapter thread (from a handler). The last subscriber leaving sends UNSUBSCRIBE.
// Handlers run on the adapter thread, one at a time, in Redis' message order.
//
// Reconnection: a dropped or refused connection is retried with exponential backoff (100 ms
// doubling to 3 s, with jitter); after reconnecting, every channel with local subscribers
// is subscribed again. Payloads published while a connection is down wait in the queue
// (bounded as above); those Redis had not acknowledged when the connection dropped are
// counted as dropped. Messages published by others while the subscribe connection was down
// are lost for this instance (best-effort; clients resume).
//
// Thread-safety: all members, and destroying a subscription, are safe from any thread,
// also from inside a handler. Destroying a subscription waits for a call of its handler in
// progress on the adapter thread, so whatever the handler captures may be freed right after
// (after the destructor returns the handler is not running and will not run). Hence, as
// with inproc_fanout: do not destroy a subscription while holding a lock its handler takes.
// Lifetime: subscriptions may outlive the fanout; the destructor closes both connections
// and joins the adapter thread (after it, no handler runs), so it must not run inside a
// handler.
// Errors: none are returned; connection failures are logged, counted and retried. A handler
// that throws is counted (stats().handler_errors) and the others still run.
//
// Metrics (when a registry is given): chat4all_fanout_published_total,
// chat4all_fanout_delivered_total, chat4all_fanout_dropped_total{reason} with label
// adapter="redis", and chat4all_fanout_reconnects_total{adapter="redis",connection}.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "domain/ports/fanout.hpp"

namespace chat4all {
namespace obs {
class metrics_registry;
}
namespace fanout_redis {
struct core;
}

struct redis_options {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string channel_prefix;       // prepended to every channel name on Redis
  std::size_t max_pending = 65536;  // payloads queued or awaiting Redis' reply
};

struct redis_fanout_stats {
  std::uint64_t published = 0;       // PUBLISH commands Redis acknowledged
  std::uint64_t delivered = 0;       // handler calls
  std::uint64_t dropped = 0;         // queue full, connection lost before the reply, error reply
  std::uint64_t reconnects = 0;      // connections re-established after a loss (both connections)
  std::uint64_t handler_errors = 0;  // handlers that threw
};

class redis_fanout final : public fanout {
 public:
  // How long subscribe() waits for Redis to confirm a new channel's SUBSCRIBE.
  static constexpr std::chrono::milliseconds subscribe_confirm_timeout{5000};

  // Starts the adapter thread and connects in the background (never throws for an
  // unreachable Redis: it keeps retrying). `metrics` must outlive the fanout.
  explicit redis_fanout(redis_options opts, obs::metrics_registry* metrics = nullptr);
  ~redis_fanout() override;
  redis_fanout(const redis_fanout&) = delete;
  redis_fanout& operator=(const redis_fanout&) = delete;

  void publish(std::string channel, std::string payload) override;
  std::unique_ptr<subscription> subscribe(std::string channel, handler h) override;

  // Both connections (PUBLISH and SUBSCRIBE) are up.
  bool connected() const override;
  redis_fanout_stats stats() const;

 private:
  std::shared_ptr<fanout_redis::core> core_;  // shared with subscriptions
};

}  // namespace chat4all
