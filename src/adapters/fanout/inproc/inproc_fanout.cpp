#include "adapters/fanout/inproc/inproc_fanout.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <exception>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace chat4all::fanout_inproc {
namespace {

struct subscriber {
  explicit subscriber(fanout::handler h) : h_(std::move(h)) {}
  // Recursive: a handler may destroy its own subscription.
  std::recursive_mutex call_mu;
  bool active = true;  // under call_mu
  fanout::handler h_;
};

using subscriber_list = std::vector<std::shared_ptr<subscriber>>;

// Lets the registry be searched with a string_view (no std::string per lookup).
struct name_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

struct channel {
  std::mutex mu;
  // Copy-on-write: publishers take a snapshot and call handlers without holding `mu`.
  std::shared_ptr<const subscriber_list> subs = std::make_shared<subscriber_list>();
  std::deque<std::string> pending;
  bool delivering = false;
};

}  // namespace

struct state {
  explicit state(std::size_t max_pending) : max_pending(max_pending) {}

  const std::size_t max_pending;
  std::mutex mu;  // the registry; lock order: state::mu before channel::mu
  std::unordered_map<std::string, std::shared_ptr<channel>, name_hash, std::equal_to<>> channels;
  std::atomic<std::uint64_t> published{0}, delivered{0}, dropped{0}, handler_errors{0};

  void deliver(const std::string& name, const std::string& payload, const subscriber_list& subs) {
    for (const auto& s : subs) {
      std::lock_guard lk(s->call_mu);
      if (!s->active) continue;
      try {
        s->h_(name, payload);
        delivered.fetch_add(1, std::memory_order_relaxed);
      } catch (...) {
        // The port says handlers don't throw; one that does must not break delivery to
        // the others or leave the channel stuck in `delivering`: count it and go on.
        handler_errors.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
};

namespace {

class inproc_subscription final : public fanout::subscription {
 public:
  inproc_subscription(std::shared_ptr<state> st, std::string name, std::shared_ptr<channel> ch,
                      std::shared_ptr<subscriber> sub)
      : st_(std::move(st)), name_(std::move(name)), ch_(std::move(ch)), sub_(std::move(sub)) {}

  ~inproc_subscription() override {
    {
      // Waits for a call in progress on another thread; re-entrant from the handler itself.
      std::lock_guard lk(sub_->call_mu);
      sub_->active = false;
    }
    std::lock_guard reg(st_->mu);
    std::lock_guard lk(ch_->mu);
    auto next = std::make_shared<subscriber_list>();
    for (const auto& s : *ch_->subs) {
      if (s != sub_) next->push_back(s);
    }
    const bool empty = next->empty();
    ch_->subs = std::move(next);
    if (empty) {
      auto it = st_->channels.find(name_);
      if (it != st_->channels.end() && it->second == ch_) st_->channels.erase(it);
    }
  }

 private:
  std::shared_ptr<state> st_;
  std::string name_;
  std::shared_ptr<channel> ch_;
  std::shared_ptr<subscriber> sub_;
};

}  // namespace
}  // namespace chat4all::fanout_inproc

namespace chat4all {
using fanout_inproc::channel;
using fanout_inproc::state;
using fanout_inproc::subscriber;
using fanout_inproc::subscriber_list;

inproc_fanout::inproc_fanout(std::size_t max_pending_per_channel)
    : state_(std::make_shared<state>(std::max<std::size_t>(max_pending_per_channel, 1))) {}

inproc_fanout::~inproc_fanout() = default;

void inproc_fanout::publish(std::string channel_name, std::string payload) {
  state_->published.fetch_add(1, std::memory_order_relaxed);
  std::shared_ptr<channel> ch;
  {
    std::lock_guard reg(state_->mu);
    auto it = state_->channels.find(channel_name);
    if (it == state_->channels.end()) return;  // nobody listens
    ch = it->second;
  }
  std::unique_lock lk(ch->mu);
  if (ch->pending.size() >= state_->max_pending) {
    state_->dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ch->pending.push_back(std::move(payload));
  if (ch->delivering) return;  // the delivering thread will take it, in order
  ch->delivering = true;
  while (!ch->pending.empty()) {
    std::string next = std::move(ch->pending.front());
    ch->pending.pop_front();
    std::shared_ptr<const subscriber_list> subs = ch->subs;
    lk.unlock();
    state_->deliver(channel_name, next, *subs);
    lk.lock();
  }
  ch->delivering = false;
}

bool inproc_fanout::has_subscribers(std::string_view channel_name) const {
  // A channel is in the registry exactly while it has subscribers (the last unsubscribe
  // erases it).
  std::lock_guard reg(state_->mu);
  return state_->channels.find(channel_name) != state_->channels.end();
}

std::unique_ptr<fanout::subscription> inproc_fanout::subscribe(std::string channel_name,
                                                               handler h) {
  auto sub = std::make_shared<subscriber>(std::move(h));
  std::shared_ptr<channel> ch;
  {
    std::lock_guard reg(state_->mu);
    auto& slot = state_->channels[channel_name];
    if (!slot) slot = std::make_shared<channel>();
    ch = slot;
    std::lock_guard lk(ch->mu);
    auto next = std::make_shared<subscriber_list>(*ch->subs);
    next->push_back(sub);
    ch->subs = std::move(next);
  }
  return std::make_unique<fanout_inproc::inproc_subscription>(state_, std::move(channel_name),
                                                              std::move(ch), std::move(sub));
}

inproc_fanout_stats inproc_fanout::stats() const {
  inproc_fanout_stats s;
  s.published = state_->published.load(std::memory_order_relaxed);
  s.delivered = state_->delivered.load(std::memory_order_relaxed);
  s.dropped = state_->dropped.load(std::memory_order_relaxed);
  s.handler_errors = state_->handler_errors.load(std::memory_order_relaxed);
  return s;
}

}  // namespace chat4all
