#pragma once
// Real-time event fan-out between the pipeline and connected clients. Adapters:
// inproc_fanout (embedded), redis_fanout (cluster, Redis pub/sub).
// Delivery is best-effort and at-most-once: clients recover gaps with `resume` from the store.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace chat4all {

class fanout {
 public:
  // Called on an adapter thread; must not block. Keep work small (post elsewhere).
  using handler = std::function<void(std::string_view channel, std::string_view payload)>;

  // Unsubscribes when destroyed.
  class subscription {
   public:
    virtual ~subscription() = default;
  };

  virtual ~fanout() = default;
  // Publishes `payload` to every subscriber of `channel` (e.g. "user:42"). Thread-safe,
  // non-blocking; per channel, subscribers see payloads in publish order.
  virtual void publish(std::string channel, std::string payload) = 0;
  // Whether a publish to `channel` could reach anyone, so a publisher may skip building a
  // payload nobody receives. A hint, thread-safe and cheap: true may be a false alarm (the
  // default, e.g. Redis, where subscribers live in other processes); false means no
  // subscriber in this adapter right now (one subscribing later missed nothing it was owed:
  // delivery is best-effort and clients recover with `resume`).
  virtual bool has_subscribers(std::string_view channel) const {
    (void)channel;
    return true;
  }
  virtual std::unique_ptr<subscription> subscribe(std::string channel, handler h) = 0;
  // Whether events published now reach every instance's subscribers (GET /readyz): the
  // in-process adapter always, Redis while both its connections are up. Thread-safe, cheap.
  virtual bool connected() const { return true; }
};

}  // namespace chat4all
