#pragma once
// The seam between a resume replay (from the store) and live events (from the fanout) of one
// conversation on one connection: SPEC §4 "no gaps, no duplicates".
//
// While the replay runs, live message.created events of the conversation are buffered (the
// subscription is live before the replay starts, so nothing published after the replay's
// last read can be missed). The replay reports each seq it sent; at its end, finish() hands
// back the buffered events with a seq above the last replayed one, in seq order and without
// repeats. From then on live events pass when their seq is above the last one delivered and
// are dropped otherwise (a live event of a message the replay already sent, arriving late).
// Not thread-safe: one connection's executor owns it.

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "core/ids.hpp"

namespace chat4all::ws {

template <class T>
class resume_seam {
 public:
  enum class verdict { pass, drop, buffered, overflow };

  // Starts a replay of the messages after `after_seq`.
  explicit resume_seam(seq_t after_seq) : last_(after_seq) {}

  bool replaying() const noexcept { return replaying_; }
  seq_t last() const noexcept { return last_; }

  // A resume again on the same conversation: a new replay from `after_seq`.
  void restart(seq_t after_seq) {
    last_ = after_seq;
    replaying_ = true;
    buffered_.clear();
  }

  // A live event with this seq. `max_buffered` bounds the buffer during a replay.
  verdict on_live(seq_t seq, T item, std::size_t max_buffered) {
    if (replaying_) {
      if (buffered_.size() >= max_buffered) return verdict::overflow;
      buffered_.emplace_back(seq, std::move(item));
      return verdict::buffered;
    }
    if (seq <= last_) return verdict::drop;
    last_ = seq;
    return verdict::pass;
  }

  // The replay sent the message with this seq (replays go in increasing seq order).
  void replayed(seq_t seq) noexcept { last_ = std::max(last_, seq); }

  // The replay read everything: the buffered events to deliver now (seq above the last one
  // sent, in order, none twice). Still replaying: events that arrive while the caller
  // delivers these (waiting for queue room) are buffered again; call take() until it
  // returns nothing, then end() with no suspension in between.
  std::vector<T> take() {
    std::stable_sort(buffered_.begin(), buffered_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<T> out;
    for (auto& [seq, item] : buffered_) {
      if (seq <= last_) continue;
      last_ = seq;
      out.push_back(std::move(item));
    }
    std::vector<std::pair<seq_t, T>>().swap(buffered_);
    return out;
  }
  // Live from here on (precondition: the last take() returned nothing).
  void end() noexcept { replaying_ = false; }

 private:
  seq_t last_;
  bool replaying_ = true;
  std::vector<std::pair<seq_t, T>> buffered_;
};

}  // namespace chat4all::ws
