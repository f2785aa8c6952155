#pragma once
// The bounded send queue of one WebSocket connection (SPEC §4 backpressure).
//
// Policy: an event that would take the queue past `max_events` or `max_bytes` is refused
// (push returns false) and nothing is added (an empty queue takes any one event, so that an
// event larger than max_bytes still goes out). A connection whose socket is draining (the
// caller says so: `draining`) may hold a burst of up to burst_factor times the bounds, since
// events of a burst arrive on its thread before the writer's next turn; a socket that stopped
// taking data gets only the bounds. Past the bound that applies: the caller then closes the
// connection with 1013 and the client resumes from the store. The server never buffers without
// bound, and a stalled reader costs at most the bounds (events are shared between connections, so
// the bytes are a bound, not a per-connection copy). An idle queue holds no allocation (a
// std::deque would keep ~600 bytes per connection). Not thread-safe: one connection's executor owns
// it.

#include <cstddef>
#include <utility>
#include <vector>

#include "ws/protocol.hpp"

namespace chat4all::ws {

class send_queue {
 public:
  send_queue(std::size_t max_events, std::size_t max_bytes)
      : max_events_(max_events), max_bytes_(max_bytes) {}

  static constexpr std::size_t burst_factor = 4;

  // False (nothing added) when the event does not fit.
  bool push(event_ptr e, bool draining = false) {
    const std::size_t k = draining ? burst_factor : 1;
    if (!empty() &&
        !(size() + 1 <= k * max_events_ && bytes_ + e->payload.size() <= k * max_bytes_))
      return false;
    bytes_ += e->payload.size();
    items_.push_back(std::move(e));
    return true;
  }
  // Ahead of everything queued, whatever the bounds (the connection's greeting).
  void push_front(event_ptr e) {
    bytes_ += e->payload.size();
    if (head_ > 0)
      items_[--head_] = std::move(e);
    else
      items_.insert(items_.begin(), std::move(e));
  }
  // True when `n` more events of `bytes` in total would fit (a producer that can wait, like
  // a resume replay, waits for room instead of overflowing).
  bool fits(std::size_t n, std::size_t bytes) const noexcept {
    return size() + n <= max_events_ && bytes_ + bytes <= max_bytes_;
  }
  bool empty() const noexcept { return head_ == items_.size(); }
  // Holding a burst past the plain bounds (see push).
  bool over_bound() const noexcept { return size() > max_events_ || bytes_ > max_bytes_; }
  std::size_t size() const noexcept { return items_.size() - head_; }
  std::size_t bytes() const noexcept { return bytes_; }
  std::size_t max_events() const noexcept { return max_events_; }

  // The oldest event (precondition: !empty()).
  event_ptr pop() {
    event_ptr e = std::move(items_[head_++]);
    bytes_ -= e->payload.size();
    if (head_ == items_.size()) release();
    return e;
  }
  // Drops everything; returns how many events were dropped.
  std::size_t clear() {
    const std::size_t n = size();
    release();
    return n;
  }

 private:
  void release() {
    items_.clear();
    head_ = 0;
    bytes_ = 0;
    if (items_.capacity() > 64) std::vector<event_ptr>().swap(items_);
  }

  std::size_t max_events_;
  std::size_t max_bytes_;
  std::vector<event_ptr> items_;
  std::size_t head_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace chat4all::ws
