#include "adapters/fanout/redis/redis_fanout.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "adapters/fanout/redis/hiredis_asio.hpp"
#include "obs/logging.hpp"
#include "obs/metrics.hpp"

namespace chat4all::fanout_redis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds initial_backoff = 100ms;
constexpr std::chrono::milliseconds max_backoff = 3s;
constexpr std::chrono::milliseconds connect_timeout = 3s;
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

enum class link_state { connecting, connected, down };

struct pending_publish {
  std::string channel;
  std::string payload;
};

}  // namespace

struct core;

// One hiredis connection and its reconnection state; used on the adapter thread only.
struct connection {
  connection(core& owner, asio::io_context& io, const char* name, bool subscriber)
      : owner(owner), name(name), subscriber(subscriber), timer(io) {}

  core& owner;
  const char* const name;  // "publish" | "subscribe"
  const bool subscriber;
  redisAsyncContext* ac = nullptr;  // null while disconnected
  link_state state = link_state::connecting;
  std::uint64_t attempt = 0;  // tells a stale connect-timeout apart from the current one
  std::chrono::milliseconds backoff{0};
  bool ever_connected = false;
  bool failing = false;      // a failure was logged since the last success: retry quietly
  asio::steady_timer timer;  // connect timeout, then reconnect backoff
  obs::counter* reconnects_metric = nullptr;
};

struct core {
  core(redis_options o, obs::metrics_registry* metrics)
      : opts(std::move(o)),
        max_pending(std::max<std::size_t>(opts.max_pending, 1)),
        work(asio::make_work_guard(io)),
        pub(*this, io, "publish", false),
        sub(*this, io, "subscribe", true),
        rng(std::random_device{}()) {
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
    pub.reconnects_metric = &reconnects.with({"redis", "publish"});
    sub.reconnects_metric = &reconnects.with({"redis", "subscribe"});
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
    thread = std::thread([this] { run(); });
    asio::post(io, [this] {
      connect(pub);
      connect(sub);
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
    stopping_flag.store(true, std::memory_order_release);
    cv.notify_all();
    asio::post(io, [this] { shutdown(); });
    if (thread.joinable()) thread.join();
  }

  void shutdown() {
    pub.timer.cancel();
    sub.timer.cancel();
    for (connection* c : {&pub, &sub}) {
      if (c->ac != nullptr) {
        redisAsyncContext* ac = c->ac;
        c->ac = nullptr;
        redisAsyncFree(ac);  // NULL replies to pending commands, then on_disconnect
      }
    }
    work.reset();
    io.stop();  // what is still queued is destroyed with the io_context
  }

  // ---- connections (adapter thread) -------------------------------------------------------

  void set_sub_link(link_state s) {
    std::lock_guard lk(mu);
    sub_link = s;
    if (s != link_state::connected) {
      for (auto& [name, entry] : channels) entry->confirmed = false;
    }
    cv.notify_all();
  }

  void connect(connection& c) {
    if (stopping_flag.load(std::memory_order_acquire)) return;
    const std::uint64_t attempt = ++c.attempt;
    c.state = link_state::connecting;
    if (c.subscriber) set_sub_link(link_state::connecting);
    redisAsyncContext* ac = redisAsyncConnect(opts.host.c_str(), opts.port);
    if (ac == nullptr) return lost(c, "out of memory");
    if (ac->err != 0) {
      std::string why = ac->errstr;
      redisAsyncFree(ac);
      return lost(c, why);
    }
    if (!attach_to_asio(ac, io)) {
      redisAsyncFree(ac);
      return lost(c, "cannot watch the socket");
    }
    ac->data = &c;
    c.ac = ac;
    redisAsyncSetConnectCallback(ac, &on_connect);  // waits for writability
    redisAsyncSetDisconnectCallback(ac, &on_disconnect);
    c.timer.expires_after(connect_timeout);
    c.timer.async_wait([this, &c, attempt](const boost::system::error_code& ec) {
      if (ec || c.attempt != attempt || c.state != link_state::connecting || c.ac == nullptr) {
        return;
      }
      redisAsyncContext* stuck = c.ac;
      c.ac = nullptr;
      redisAsyncFree(stuck);  // not connected: no callback runs
      lost(c, "connect timed out");
    });
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto& c = *static_cast<connection*>(ac->data);
    if (status != REDIS_OK) {
      // hiredis frees the context when this returns.
      c.ac = nullptr;
      c.owner.lost(c, ac->errstr != nullptr ? ac->errstr : "connect failed");
      return;
    }
    c.owner.connected(c);
  }

  static void on_disconnect(const redisAsyncContext* ac, int status) {
    auto& c = *static_cast<connection*>(ac->data);
    c.ac = nullptr;  // hiredis frees the context when this returns
    std::string why = status == REDIS_OK ? "closed" : (ac->errstr != nullptr ? ac->errstr : "");
    if (why.empty()) why = "connection lost";
    c.owner.lost(c, why);
  }

  void connected(connection& c) {
    c.state = link_state::connected;
    c.timer.cancel();
    redisEnableKeepAlive(&c.ac->c);  // TCP keepalive every 15 s: notices a dead peer
    if (c.ever_connected) {
      reconnects.fetch_add(1, std::memory_order_relaxed);
      bump(c.reconnects_metric);
      log::info("redis fanout: reconnected", {{"connection", c.name}});
    } else if (c.failing) {
      log::info("redis fanout: connected", {{"connection", c.name}});
    }
    c.ever_connected = true;
    c.failing = false;
    c.backoff = 0ms;
    if (c.subscriber) {
      set_sub_link(link_state::connected);
      std::vector<std::string> names;
      {
        std::lock_guard lk(mu);
        names.reserve(channels.size());
        for (const auto& [name, entry] : channels) names.push_back(name);
      }
      for (const auto& name : names) sync(name);  // subscribe every channel again
    } else {
      flush();
    }
  }

  void lost(connection& c, std::string_view why) {
    c.state = link_state::down;
    if (c.subscriber) {
      remote.clear();
      set_sub_link(link_state::down);
    } else {
      inflight_bytes = 0;  // every pending reply has been answered with NULL
    }
    if (stopping_flag.load(std::memory_order_acquire)) return;
    c.backoff = c.backoff == 0ms ? initial_backoff : std::min(c.backoff * 2, max_backoff);
    // ±25 % jitter: instances that lost Redis together do not reconnect in lockstep.
    std::uniform_int_distribution<long> spread(c.backoff.count() * 3 / 4,
                                               c.backoff.count() * 5 / 4);
    const std::chrono::milliseconds delay{spread(rng)};
    if (!c.failing) {
      log::warn("redis fanout: connection unavailable, retrying",
                {{"connection", c.name},
                 {"host", opts.host},
                 {"port", opts.port},
                 {"error", why},
                 {"retry_ms", static_cast<std::int64_t>(delay.count())}});
      c.failing = true;
    }
    c.timer.expires_after(delay);
    c.timer.async_wait([this, &c](const boost::system::error_code& ec) {
      if (!ec && c.state == link_state::down) connect(c);
    });
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
      post = !flush_posted;
      flush_posted = true;
    }
    if (post) asio::post(io, [this] { flush(); });
  }

  // Adapter thread: hands queued payloads to hiredis, up to the pipelining bound.
  void flush() {
    std::vector<pending_publish> batch;
    {
      std::lock_guard lk(pub_mu);
      flush_posted = false;
      if (pub.state != link_state::connected) return;  // connected() flushes
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
    }
    for (auto& p : batch) {
      const std::size_t bytes = p.channel.size() + p.payload.size();
      const char* argv[] = {"PUBLISH", p.channel.data(), p.payload.data()};
      const std::size_t lens[] = {7, p.channel.size(), p.payload.size()};
      // The payload size travels as the callback's private data (released on the reply).
      if (redisAsyncCommandArgv(pub.ac, &on_publish_reply,
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
    auto& k = static_cast<connection*>(ac->data)->owner;
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
      if (!k.queue.empty() && !k.flush_posted) k.flush_posted = post = true;
    }
    if (post) asio::post(k.io, [&k] { k.flush(); });
  }

  // ---- subscriptions ----------------------------------------------------------------------

  // Adapter thread: makes Redis' subscription of `name` match the local subscribers.
  void sync(const std::string& name) {
    if (sub.state != link_state::connected) return;  // connected() subscribes everything
    bool wanted;
    {
      std::lock_guard lk(mu);
      wanted = channels.find(name) != channels.end();
    }
    auto it = remote.find(name);
    if (wanted && (it == remote.end() || !it->second.subscribed)) {
      const char* argv[] = {"SUBSCRIBE", name.data()};
      const std::size_t lens[] = {9, name.size()};
      if (redisAsyncCommandArgv(sub.ac, &on_sub_reply, nullptr, 2, argv, lens) == REDIS_OK) {
        auto& r = remote[name];
        r.subscribed = true;
        ++r.awaiting_replies;
      }
    } else if (!wanted && it != remote.end() && it->second.subscribed) {
      const char* argv[] = {"UNSUBSCRIBE", name.data()};
      const std::size_t lens[] = {11, name.size()};
      redisAsyncCommandArgv(sub.ac, &on_sub_reply, nullptr, 2, argv, lens);
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
    auto& owner = static_cast<connection*>(ac->data)->owner;
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
      cv.wait_for(lk, redis_fanout::subscribe_confirm_timeout,
                  [&] { return entry->confirmed || stopping || sub_link == link_state::down; });
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
  std::atomic<bool> stopping_flag{false};

  // Local subscribers, by channel name on Redis (with the prefix).
  std::mutex mu;  // lock order: subscriber::call_mu before mu; never held while calling out
  std::condition_variable cv;
  string_map<std::shared_ptr<channel_entry>> channels;  // under mu
  link_state sub_link = link_state::connecting;         // under mu
  bool stopping = false;                                // under mu

  // Publish queue.
  std::mutex pub_mu;
  std::deque<pending_publish> queue;  // under pub_mu
  // Handed to hiredis, reply pending: raised under pub_mu (flush), lowered by the replies.
  std::atomic<std::size_t> inflight{0};
  bool flush_posted = false;  // under pub_mu

  // Adapter thread only.
  connection pub, sub;
  string_map<remote_channel> remote;
  std::size_t inflight_bytes = 0;
  std::minstd_rand rng;

  std::atomic<std::uint64_t> published{0}, delivered{0}, dropped{0}, reconnects{0},
      handler_errors{0};
  obs::counter* published_metric = nullptr;
  obs::counter* delivered_metric = nullptr;
  obs::counter* dropped_queue_full = nullptr;
  obs::counter* dropped_connection_lost = nullptr;
  obs::counter* dropped_error = nullptr;
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
