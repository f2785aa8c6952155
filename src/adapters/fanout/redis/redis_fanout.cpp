#include "adapters/fanout/redis/redis_fanout.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "adapters/fanout/redis/redis_link.hpp"
#include "core/thread_name.hpp"
#include "obs/logging.hpp"
#include "obs/metrics.hpp"

namespace chat4all::fanout_redis {
namespace {

namespace asio = boost::asio;

// Pipelining bound: PUBLISH commands handed to hiredis and not yet answered. The rest waits
// in our queue, so hiredis' output buffer stays small (it shifts the buffer on partial
// writes) while the pipeline still carries thousands of commands per round trip.
constexpr std::size_t max_inflight = 4096;
constexpr std::size_t max_inflight_bytes = 4u << 20;

struct subscriber {
  explicit subscriber(fanout::handler h) : h_(std::move(h)) {}
  // Recursive: a handler may destroy its own subscription.
  std::recursive_mutex call_mu;
  bool active = true;  // under call_mu
  fanout::handler h_;
};

using subscriber_list = std::vector<std::shared_ptr<subscriber>>;

struct channel_entry {
  // Copy-on-write: the adapter thread delivers to a snapshot without holding core::mu_.
  std::shared_ptr<const subscriber_list> subs = std::make_shared<subscriber_list>();
  bool confirmed = false;  // Redis confirmed the SUBSCRIBE (under core::mu_)
};

// The subscribe connection's view of a channel on Redis (adapter thread only).
struct remote_channel {
  bool subscribed = false;   // the last command sent for it was SUBSCRIBE
  int awaiting_replies = 0;  // SUBSCRIBE replies not received yet
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

struct pending_publish {
  std::string channel;
  std::string payload;
};

}  // namespace

struct core final : redis_link::listener {
  core(redis_options o, obs::metrics_registry* metrics)
      : opts(std::move(o)),
        max_pending(std::max<std::size_t>(opts.max_pending, 1)),
        work(asio::make_work_guard(io)),
        pub(io, opts.host, opts.port, "publish", *this),
        sub(io, opts.host, opts.port, "subscribe", *this) {
    if (metrics != nullptr) register_metrics(*metrics);
  }

  void register_metrics(obs::metrics_registry& m) {
    published_metric =
        &m.counter_family("chat4all_fanout_published_total",
                          "Payloads published to the fan-out (Redis: acknowledged by Redis)",
                          {"adapter"})
             .with({"redis"});
    delivered_metric =
        &m.counter_family("chat4all_fanout_delivered_total",
                          "Payloads handed to local subscribers (handler calls)", {"adapter"})
             .with({"redis"});
    auto& dropped = m.counter_family(
        "chat4all_fanout_dropped_total",
        "Payloads not published: queue full, connection lost before Redis' reply, or an "
        "error reply",
        {"adapter", "reason"});
    dropped_queue_full = &dropped.with({"redis", "queue_full"});
    dropped_connection_lost = &dropped.with({"redis", "connection_lost"});
    dropped_error = &dropped.with({"redis", "error_reply"});
    auto& reconnects =
        m.counter_family("chat4all_fanout_reconnects_total",
                         "Connections to the fan-out backend re-established after a loss",
                         {"adapter", "connection"});
    pub_reconnects_metric = &reconnects.with({"redis", "publish"});
    sub_reconnects_metric = &reconnects.with({"redis", "subscribe"});
  }

  static void bump(obs::counter* c) {
    if (c != nullptr) c->inc();
  }
  void count_dropped(obs::counter* reason) {
    dropped.fetch_add(1, std::memory_order_relaxed);
    bump(reason);
  }

  // ---- lifecycle (constructor / destructor threads) ---------------------------------------

  void start() {
    thread = std::thread([this] {
      name_this_thread("c4a-redis");
      run();
    });
    asio::post(io, [this] {
      pub.start();
      sub.start();
    });
  }

  void run() {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        // Handlers catch what user code throws; anything else is a bug worth a log line,
        // not a dead fan-out.
        log::error("redis fanout: unexpected exception on the adapter thread",
                   {{"error", e.what()}});
      }
    }
  }

  void stop() {
    {
      std::lock_guard lk(mu);
      stopping = true;
    }
    cv.notify_all();
    asio::post(io, [this] { shutdown(); });
    if (thread.joinable()) thread.join();
  }

  void shutdown() {
    pub.stop();
    sub.stop();
    work.reset();
    io.stop();  // what is still queued is destroyed with the io_context
  }

  // ---- connections (adapter thread) -------------------------------------------------------

  void set_sub_link(redis_link::state s) {
    std::lock_guard lk(mu);
    sub_link = s;
    if (s != redis_link::state::up) {
      for (auto& [name, entry] : channels) entry->confirmed = false;
    }
    cv.notify_all();
  }

  void on_up(redis_link& link, bool reconnected) override {
    if (reconnected) {
      reconnects.fetch_add(1, std::memory_order_relaxed);
      bump(&link == &pub ? pub_reconnects_metric : sub_reconnects_metric);
    }
    if (&link == &pub) {
      pub_up = true;
      return flush();
    }
    set_sub_link(redis_link::state::up);
    std::vector<std::string> names;
    {
      std::lock_guard lk(mu);
      names.reserve(channels.size());
      for (const auto& [name, entry] : channels) names.push_back(name);
    }
    for (const auto& name : names) sync(name);  // subscribe every channel (again)
  }

  void on_down(redis_link& link) override {
    if (&link == &pub) {
      pub_up = false;
      inflight_bytes = 0;  // every pending PUBLISH has had its NULL reply
      return;
    }
    remote.clear();
    set_sub_link(redis_link::state::down);
  }

  // ---- publishing -------------------------------------------------------------------------

  void publish(std::string channel, std::string payload) {
    std::string name =
        opts.channel_prefix.empty() ? std::move(channel) : opts.channel_prefix + channel;
    bool post = false;
    {
      std::lock_guard lk(pub_mu);
      if (queue.size() + inflight.load(std::memory_order_relaxed) >= max_pending) {
        count_dropped(dropped_queue_full);
        return;
      }
      queue.push_back({std::move(name), std::move(payload)});
      post = !flush_pending;
      flush_pending = true;
    }
    if (post) asio::post(io, [this] { flush(); });
  }

  // Adapter thread: hands queued payloads to hiredis, up to the pipelining bound.
  void flush() {
    std::vector<pending_publish> batch;
    {
      std::lock_guard lk(pub_mu);
      if (!pub.up()) return;  // on_up() flushes (flush_pending stays set meanwhile)
      std::size_t bytes = inflight_bytes;
      const std::size_t in_pipeline = inflight.load(std::memory_order_relaxed);
      while (!queue.empty() && in_pipeline + batch.size() < max_inflight &&
             bytes < max_inflight_bytes) {
        bytes += queue.front().channel.size() + queue.front().payload.size();
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      // Counted before the lock is released, so that publish() never sees fewer pending
      // payloads than there are.
      inflight.fetch_add(batch.size(), std::memory_order_relaxed);
      // With the pipeline full, the replies post the next flush (on_publish_reply); until
      // then publish() need not post one.
      flush_pending = !queue.empty();
    }
    for (auto& p : batch) {
      const std::size_t bytes = p.channel.size() + p.payload.size();
      const char* argv[] = {"PUBLISH", p.channel.data(), p.payload.data()};
      const std::size_t lens[] = {7, p.channel.size(), p.payload.size()};
      // The payload size travels as the callback's private data (released on the reply).
      if (redisAsyncCommandArgv(pub.context(), &on_publish_reply,
                                reinterpret_cast<void*>(static_cast<std::uintptr_t>(bytes)), 3,
                                argv, lens) != REDIS_OK) {
        inflight.fetch_sub(1, std::memory_order_relaxed);
        count_dropped(dropped_connection_lost);
        continue;
      }
      inflight_bytes += bytes;
    }
  }

  static void on_publish_reply(redisAsyncContext* ac, void* r, void* privdata) {
    auto& k = static_cast<core&>(redis_link::of(ac).owner());
    const auto bytes = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(privdata));
    const std::size_t bytes_before = k.inflight_bytes;
    k.inflight_bytes -= std::min(bytes, k.inflight_bytes);
    const auto* reply = static_cast<const redisReply*>(r);
    if (reply == nullptr) {
      k.count_dropped(k.dropped_connection_lost);
    } else if (reply->type == REDIS_REPLY_ERROR) {
      k.count_dropped(k.dropped_error);
    } else {
      k.published.fetch_add(1, std::memory_order_relaxed);
      bump(k.published_metric);
    }
    // Refill when the pipeline falls to half of either bound (or empties): a few posts per
    // thousands of replies, and a pipeline that stays full.
    const bool refill = reply != nullptr && (bytes_before >= max_inflight_bytes / 2 &&
                                             k.inflight_bytes < max_inflight_bytes / 2);
    const std::size_t left = k.inflight.fetch_sub(1, std::memory_order_relaxed) - 1;
    if (!refill && (reply == nullptr || (left != max_inflight / 2 && left != 0))) return;
    bool post = false;
    {
      std::lock_guard lk(k.pub_mu);
      post = !k.queue.empty();
      k.flush_pending = k.flush_pending || post;
    }
    if (post) asio::post(k.io, [&k] { k.flush(); });
  }

  // ---- subscriptions ----------------------------------------------------------------------

  // Adapter thread: makes Redis' subscription of `name` match the local subscribers.
  void sync(const std::string& name) {
    if (!sub.up()) return;  // on_up() subscribes everything
    bool wanted;
    {
      std::lock_guard lk(mu);
      wanted = channels.find(name) != channels.end();
    }
    auto it = remote.find(name);
    if (wanted && (it == remote.end() || !it->second.subscribed)) {
      const char* argv[] = {"SUBSCRIBE", name.data()};
      const std::size_t lens[] = {9, name.size()};
      if (redisAsyncCommandArgv(sub.context(), &on_sub_reply, nullptr, 2, argv, lens) == REDIS_OK) {
        auto& r = remote[name];
        r.subscribed = true;
        ++r.awaiting_replies;
      }
    } else if (!wanted && it != remote.end() && it->second.subscribed) {
      const char* argv[] = {"UNSUBSCRIBE", name.data()};
      const std::size_t lens[] = {11, name.size()};
      redisAsyncCommandArgv(sub.context(), &on_sub_reply, nullptr, 2, argv, lens);
      it->second.subscribed = false;
      if (it->second.awaiting_replies == 0) remote.erase(it);
    } else if (wanted && it->second.awaiting_replies == 0) {
      confirm(name);  // already subscribed (a subscriber came back before UNSUBSCRIBE left)
    }
  }

  void confirm(std::string_view name) {
    std::lock_guard lk(mu);
    auto it = channels.find(name);
    if (it != channels.end() && !it->second->confirmed) {
      it->second->confirmed = true;
      cv.notify_all();
    }
  }

  static void on_sub_reply(redisAsyncContext* ac, void* r, void*) {
    const auto* reply = static_cast<const redisReply*>(r);
    if (reply == nullptr) return;  // the context is being freed
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    const redisReply* kind = reply->element[0];
    const redisReply* name = reply->element[1];
    if (kind->type != REDIS_REPLY_STRING || name->type != REDIS_REPLY_STRING) return;
    const std::string_view k(kind->str, kind->len), n(name->str, name->len);
    auto& owner = static_cast<core&>(redis_link::of(ac).owner());
    if (k == "message" && reply->element[2]->type == REDIS_REPLY_STRING) {
      owner.deliver(n, std::string_view(reply->element[2]->str, reply->element[2]->len));
    } else if (k == "subscribe") {
      owner.subscribed(n);
    }
    // "unsubscribe": the remote view was updated when it was sent.
  }

  void subscribed(std::string_view name) {
    auto it = remote.find(name);
    if (it == remote.end() || it->second.awaiting_replies == 0) return;
    if (--it->second.awaiting_replies > 0) return;  // a later SUBSCRIBE is still on its way
    if (it->second.subscribed) {
      confirm(name);
    } else {
      remote.erase(it);
    }
  }

  void deliver(std::string_view full_name, std::string_view payload) {
    std::shared_ptr<const subscriber_list> subs;
    {
      std::lock_guard lk(mu);
      auto it = channels.find(full_name);
      if (it == channels.end()) return;  // unsubscribed meanwhile
      subs = it->second->subs;
    }
    const std::string_view local = full_name.substr(opts.channel_prefix.size());
    for (const auto& s : *subs) {
      std::lock_guard lk(s->call_mu);
      if (!s->active) continue;
      try {
        s->h_(local, payload);
        delivered.fetch_add(1, std::memory_order_relaxed);
        bump(delivered_metric);
      } catch (...) {
        // The port says handlers don't throw; one that does must not break delivery to
        // the others: count it and go on.
        handler_errors.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  // Any thread. Returns the channel's entry; waits for Redis' confirmation unless told not to.
  std::shared_ptr<channel_entry> add(const std::string& name, std::shared_ptr<subscriber> s,
                                     bool wait) {
    std::unique_lock lk(mu);
    auto& slot = channels[name];
    const bool first = slot == nullptr;
    if (first) slot = std::make_shared<channel_entry>();
    auto entry = slot;
    auto next = std::make_shared<subscriber_list>(*entry->subs);
    next->push_back(std::move(s));
    entry->subs = std::move(next);
    if (first && !stopping) asio::post(io, [this, name] { sync(name); });
    if (wait) {
      cv.wait_for(lk, redis_fanout::subscribe_confirm_timeout, [&] {
        return entry->confirmed || stopping || sub_link == redis_link::state::down;
      });
    }
    return entry;
  }

  // Any thread, also a handler on the adapter thread.
  void remove(const std::string& name, const std::shared_ptr<channel_entry>& entry,
              const std::shared_ptr<subscriber>& s) {
    {
      // Waits for a call in progress on the adapter thread; re-entrant from the handler.
      std::lock_guard lk(s->call_mu);
      s->active = false;
    }
    std::lock_guard lk(mu);
    auto next = std::make_shared<subscriber_list>();
    for (const auto& other : *entry->subs) {
      if (other != s) next->push_back(other);
    }
    const bool empty = next->empty();
    entry->subs = std::move(next);
    if (!empty) return;
    auto it = channels.find(name);
    if (it != channels.end() && it->second == entry) channels.erase(it);
    if (!stopping) asio::post(io, [this, name] { sync(name); });
  }

  const redis_options opts;
  const std::size_t max_pending;
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;

  // Local subscribers, by channel name on Redis (with the prefix).
  std::mutex mu;  // lock order: subscriber::call_mu before mu; never held while calling out
  std::condition_variable cv;
  string_map<std::shared_ptr<channel_entry>> channels;         // under mu
  redis_link::state sub_link = redis_link::state::connecting;  // under mu
  bool stopping = false;                                       // under mu

  // Publish queue.
  std::mutex pub_mu;
  std::deque<pending_publish> queue;  // under pub_mu
  // Handed to hiredis, reply pending: raised under pub_mu (flush), lowered by the replies.
  std::atomic<std::size_t> inflight{0};
  std::atomic<bool> pub_up{false};  // the PUBLISH connection (the adapter thread sets it)
  bool flush_pending = false;       // under pub_mu: a flush is posted or owed by the replies

  // Adapter thread only.
  redis_link pub, sub;
  string_map<remote_channel> remote;
  std::size_t inflight_bytes = 0;

  std::atomic<std::uint64_t> published{0}, delivered{0}, dropped{0}, reconnects{0},
      handler_errors{0};
  obs::counter* published_metric = nullptr;
  obs::counter* delivered_metric = nullptr;
  obs::counter* dropped_queue_full = nullptr;
  obs::counter* dropped_connection_lost = nullptr;
  obs::counter* dropped_error = nullptr;
  obs::counter* pub_reconnects_metric = nullptr;
  obs::counter* sub_reconnects_metric = nullptr;
};

namespace {

class redis_subscription final : public fanout::subscription {
 public:
  redis_subscription(std::shared_ptr<core> c, std::string name,
                     std::shared_ptr<channel_entry> entry, std::shared_ptr<subscriber> s)
      : core_(std::move(c)), name_(std::move(name)), entry_(std::move(entry)), sub_(std::move(s)) {}
  ~redis_subscription() override { core_->remove(name_, entry_, sub_); }

 private:
  std::shared_ptr<core> core_;
  std::string name_;
  std::shared_ptr<channel_entry> entry_;
  std::shared_ptr<subscriber> sub_;
};

}  // namespace
}  // namespace chat4all::fanout_redis

namespace chat4all {

redis_fanout::redis_fanout(redis_options opts, obs::metrics_registry* metrics)
    : core_(std::make_shared<fanout_redis::core>(std::move(opts), metrics)) {
  core_->start();
}

redis_fanout::~redis_fanout() {
  core_->stop();
}

void redis_fanout::publish(std::string channel, std::string payload) {
  core_->publish(std::move(channel), std::move(payload));
}

std::unique_ptr<fanout::subscription> redis_fanout::subscribe(std::string channel, handler h) {
  auto s = std::make_shared<fanout_redis::subscriber>(std::move(h));
  std::string name = core_->opts.channel_prefix + channel;
  // On the adapter thread (a handler subscribing) waiting would block the confirmation.
  const bool wait = !core_->io.get_executor().running_in_this_thread();
  auto entry = core_->add(name, s, wait);
  return std::make_unique<fanout_redis::redis_subscription>(core_, std::move(name),
                                                            std::move(entry), std::move(s));
}

bool redis_fanout::connected() const {
  auto& c = *core_;
  if (!c.pub_up.load()) return false;
  std::lock_guard lk(c.mu);
  return c.sub_link == fanout_redis::redis_link::state::up;
}

redis_fanout_stats redis_fanout::stats() const {
  const auto& c = *core_;
  redis_fanout_stats s;
  s.published = c.published.load(std::memory_order_relaxed);
  s.delivered = c.delivered.load(std::memory_order_relaxed);
  s.dropped = c.dropped.load(std::memory_order_relaxed);
  s.reconnects = c.reconnects.load(std::memory_order_relaxed);
  s.handler_errors = c.handler_errors.load(std::memory_order_relaxed);
  return s;
}

}  // namespace chat4all
