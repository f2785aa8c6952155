#pragma once
// The per-instance subscription hub between the fanout port and the local WebSocket
// connections.
//
// ONE fanout subscription per channel per instance, reference-counted across the local
// connections that listen to it (never one Redis subscription per connection). Each
// payload is parsed once per instance (inspect_event) into a shared immutable `event`,
// then posted to the executor of every listening connection; nothing runs on the adapter
// thread beyond that (the port's handlers must not block).
//
// Subscribing can block (redis_fanout::subscribe waits up to 5 s for Redis' confirmation),
// so joins and leaves run on the hub's own thread, never on an I/O thread; they run there
// one at a time, in the order they were asked, so join() returning means the channel is live
// (a publish made afterwards reaches the listener).
//
// Thread-safety: all members may be called from any thread. Lifetime: the fanout must
// outlive the hub; call shutdown() (also done by the destructor) before the executors of the
// listeners go away: after it no listener is called again.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/ports/fanout.hpp"
#include "domain/ports/store.hpp"
#include "obs/metrics.hpp"
#include "ws/protocol.hpp"

namespace chat4all::ws {

// A connection as the hub sees it.
class listener {
 public:
  virtual ~listener() = default;
  // Runs on the listener's executor (the one given to join()).
  virtual void on_event(const event_ptr& ev) = 0;
};

class hub {
 public:
  hub(fanout& fan, obs::metrics_registry& metrics);
  ~hub();
  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  // Adds the listener `id` to these channels (subscribing the instance to those that had no
  // local listener yet) and completes once every one is live. Its events are posted to `ex`
  // holding only the weak_ptr, so a listener that is gone is simply skipped.
  task<void> join(std::vector<std::string> channels, std::uint64_t id, std::weak_ptr<listener> l,
                  boost::asio::any_io_executor ex);
  // Removes the listener from these channels (unsubscribing the instance from channels left
  // with no listener). Does not wait.
  void leave(std::vector<std::string> channels, std::uint64_t id);
  // Drops every subscription; waits for handlers in progress. Idempotent.
  void shutdown();

  std::size_t channel_count() const noexcept { return channels_open_.load(); }

 private:
  struct target {
    std::uint64_t id;
    std::weak_ptr<listener> l;
    boost::asio::any_io_executor ex;
  };
  struct channel_state {
    std::mutex mu;  // guards targets: the hub thread edits, the adapter thread reads
    std::vector<target> targets;
  };
  struct slot {
    std::shared_ptr<channel_state> state;
    std::unique_ptr<fanout::subscription> sub;
  };

  void join_now(const std::vector<std::string>& channels, const target& t);
  void leave_now(const std::vector<std::string>& channels, std::uint64_t id);
  void dispatch(channel_state& st, std::string_view payload);

  fanout& fan_;
  obs::counter& bad_events_;
  obs::counter& dispatched_;
  obs::gauge& channels_gauge_;
  std::atomic<std::size_t> channels_open_{0};
  std::atomic<bool> down_{false};
  std::mutex slots_mu_;  // the hub thread edits; shutdown() clears
  std::unordered_map<std::string, slot> slots_;
  boost::asio::thread_pool thread_{1};  // last: joined first on destruction
};

}  // namespace chat4all::ws
