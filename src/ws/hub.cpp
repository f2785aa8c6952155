#include "ws/hub.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

#include "core/offload.hpp"
#include "core/thread_name.hpp"

namespace chat4all::ws {
namespace asio = boost::asio;

hub::hub(fanout& fan, obs::metrics_registry& metrics)
    : fan_(fan),
      bad_events_(metrics.counter("chat4all_ws_bad_fanout_events_total",
                                  "Fanout payloads the WebSocket hub could not read (dropped)")),
      dispatched_(metrics.counter("chat4all_ws_hub_events_total",
                                  "Fanout events received by the WebSocket hub (once per "
                                  "instance, before fan-out to connections)")),
      channels_gauge_(metrics.gauge("chat4all_ws_channels_subscribed",
                                    "Fanout channels this instance is subscribed to for its "
                                    "WebSocket connections")) {
  name_pool_threads(thread_, 1, "c4a-ws-hub");
}

hub::~hub() {
  shutdown();
  thread_.join();
}

void hub::shutdown() {
  if (down_.exchange(true)) return;
  std::unordered_map<std::string, slot> gone;
  {
    std::lock_guard lk(slots_mu_);
    gone.swap(slots_);
  }
  // Subscriptions are destroyed without holding a lock their handlers take.
  for (auto& [name, s] : gone) s.sub.reset();
  channels_gauge_.set(0);
  channels_open_ = 0;
}

task<void> hub::join(std::vector<std::string> channels, std::uint64_t id, std::weak_ptr<listener> l,
                     asio::any_io_executor ex) {
  target t{id, std::move(l), std::move(ex)};
  auto work = [this, channels = std::move(channels), t = std::move(t)] { join_now(channels, t); };
  co_await offload(thread_.get_executor(), std::move(work));
}

void hub::leave(std::vector<std::string> channels, std::uint64_t id) {
  if (down_.load() || channels.empty()) return;
  asio::post(thread_, [this, channels = std::move(channels), id] { leave_now(channels, id); });
}

void hub::join_now(const std::vector<std::string>& channels, const target& t) {
  for (const auto& name : channels) {
    if (down_.load()) return;
    std::shared_ptr<channel_state> st;
    bool fresh = false;
    {
      std::lock_guard lk(slots_mu_);
      auto& s = slots_[name];
      if (!s.state) {
        s.state = std::make_shared<channel_state>();
        fresh = true;
      }
      st = s.state;
    }
    {
      std::lock_guard lk(st->mu);
      st->targets.push_back(t);
    }
    if (!fresh) continue;
    // May block (Redis confirmation): this is the hub's own thread.
    auto sub = fan_.subscribe(
        name, [this, st](std::string_view, std::string_view payload) { dispatch(*st, payload); });
    std::unique_lock lk(slots_mu_);
    auto it = slots_.find(name);
    if (it == slots_.end() || it->second.state != st) {
      lk.unlock();  // shut down meanwhile
      continue;
    }
    it->second.sub = std::move(sub);
    channels_gauge_.set(static_cast<double>(++channels_open_));
  }
}

void hub::leave_now(const std::vector<std::string>& channels, std::uint64_t id) {
  for (const auto& name : channels) {
    std::unique_ptr<fanout::subscription> gone;
    {
      std::lock_guard lk(slots_mu_);
      auto it = slots_.find(name);
      if (it == slots_.end()) continue;
      bool empty = false;
      {
        std::lock_guard sl(it->second.state->mu);
        auto& v = it->second.state->targets;
        auto pos = std::find_if(v.begin(), v.end(), [id](const target& t) { return t.id == id; });
        if (pos != v.end()) {
          *pos = std::move(v.back());
          v.pop_back();
        }
        empty = v.empty();
        if (empty) std::vector<target>().swap(v);
      }
      if (empty) {
        gone = std::move(it->second.sub);
        slots_.erase(it);
        if (gone) channels_gauge_.set(static_cast<double>(--channels_open_));
      }
    }
    gone.reset();  // outside the locks: it waits for a handler in progress
  }
}

void hub::dispatch(channel_state& st, std::string_view payload) {
  auto info = inspect_event(payload);
  if (!info) {
    bad_events_.inc();
    return;
  }
  dispatched_.inc();
  auto ev = make_event(std::string(payload), *info);
  std::lock_guard lk(st.mu);
  for (const auto& t : st.targets) {
    // Only the weak_ptr travels: a connection is never destroyed on the adapter thread.
    asio::post(t.ex, [w = t.l, ev] {
      if (auto l = w.lock()) l->on_event(ev);
    });
  }
}

}  // namespace chat4all::ws
