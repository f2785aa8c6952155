#pragma once
// redis_link: one hiredis asynchronous connection that stays up. It connects on start(),
// notices a drop (the server closing, a connect failure, a 3 s connect timeout, TCP
// keepalive for a silent peer) and reconnects with exponential backoff (100 ms doubling to
// 3 s, ±25 % jitter so that instances that lost Redis together do not return in lockstep).
// The owner learns of each transition through its `listener` and issues commands on
// context() while the link is up.
//
// Threading: every member, and the listener calls, run on the thread of `io` (the adapter
// thread). Within a hiredis reply callback, `redis_link::of(ac)` gives the link back.
// Lifetime: stop() frees the context (pending commands get NULL replies, then on_down) and
// ends reconnecting; destroy the link only after stop() and after `io` stopped running.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

struct redisAsyncContext;

namespace chat4all::fanout_redis {

class redis_link {
 public:
  class listener {
   public:
    // The link is up: context() accepts commands. `reconnected`: it had been up before.
    virtual void on_up(redis_link& link, bool reconnected) = 0;
    // The link is down (after the NULL replies of its pending commands); a retry is
    // scheduled unless stop() was called.
    virtual void on_down(redis_link& link) = 0;

   protected:
    ~listener() = default;
  };

  enum class state { connecting, up, down };

  redis_link(boost::asio::io_context& io, std::string host, int port, const char* name,
             listener& owner);
  redis_link(const redis_link&) = delete;
  redis_link& operator=(const redis_link&) = delete;

  void start();
  void stop();

  state current() const { return state_; }
  bool up() const { return state_ == state::up; }
  redisAsyncContext* context() const { return ac_; }  // null unless connecting or up
  const char* name() const { return name_; }
  listener& owner() const { return owner_; }
  static redis_link& of(const redisAsyncContext* ac);

 private:
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  void connect();
  void lost(std::string_view why);

  boost::asio::io_context& io_;
  const std::string host_;
  const int port_;
  const char* const name_;
  listener& owner_;
  redisAsyncContext* ac_ = nullptr;
  state state_ = state::connecting;
  bool stopped_ = false;
  bool ever_up_ = false;
  bool failing_ = false;       // a failure was logged since the last success: retry quietly
  std::uint64_t attempt_ = 0;  // tells a stale connect timeout from the current one
  std::chrono::milliseconds backoff_{0};
  boost::asio::steady_timer timer_;  // connect timeout, then reconnect backoff
  std::minstd_rand rng_;
};

}  // namespace chat4all::fanout_redis
