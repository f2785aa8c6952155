#pragma once
// inproc_fanout: the in-process fanout of the embedded mode.
//
// publish() delivers to the current subscribers of the channel, in publish order per
// channel: per channel, one publishing thread at a time delivers (it also delivers what
// other threads published meanwhile), so a publish from another thread never waits for
// handlers; it queues (at most max_pending_per_channel payloads per channel; beyond that,
// payloads are dropped and counted: delivery is best-effort, clients recover gaps with
// `resume`). Handlers run on the publishing thread with no registry or channel lock held.
//
// Thread-safety: all members, and destroying a subscription, are safe from any thread,
// also from inside a handler. Destroying a subscription waits for a call of its handler in
// progress on another thread, so that whatever the handler captures may be freed right
// after. Hence (lock-order cycles): do not destroy a subscription while holding a lock that
// its handler takes, and a handler must not destroy a subscription of another channel whose
// handler could be destroying this one at the same time.
// Lifetime: subscriptions may outlive the fanout. Errors: none; a handler that throws is
// counted (stats().handler_errors) and the exception does not reach the publisher.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "domain/ports/fanout.hpp"

namespace chat4all {
namespace fanout_inproc {
struct state;
}

struct inproc_fanout_stats {
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;  // handler calls
  std::uint64_t dropped = 0;    // payloads over the per-channel queue bound
  std::uint64_t handler_errors = 0;
};

class inproc_fanout final : public fanout {
 public:
  explicit inproc_fanout(std::size_t max_pending_per_channel = 65536);
  ~inproc_fanout() override;
  inproc_fanout(const inproc_fanout&) = delete;
  inproc_fanout& operator=(const inproc_fanout&) = delete;

  void publish(std::string channel, std::string payload) override;
  std::unique_ptr<subscription> subscribe(std::string channel, handler h) override;
  bool has_subscribers(std::string_view channel) const override;

  inproc_fanout_stats stats() const;

 private:
  std::shared_ptr<fanout_inproc::state> state_;  // shared with subscriptions
};

}  // namespace chat4all
