#include "adapters/fanout/redis/redis_link.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <utility>

#include "adapters/fanout/redis/hiredis_asio.hpp"
#include "obs/logging.hpp"

namespace chat4all::fanout_redis {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds initial_backoff = 100ms;
constexpr std::chrono::milliseconds max_backoff = 3s;
constexpr std::chrono::milliseconds connect_timeout = 3s;

}  // namespace

redis_link::redis_link(boost::asio::io_context& io, std::string host, int port, const char* name,
                       listener& owner)
    : io_(io),
      host_(std::move(host)),
      port_(port),
      name_(name),
      owner_(owner),
      timer_(io),
      rng_(std::random_device{}()) {}

redis_link& redis_link::of(const redisAsyncContext* ac) {
  return *static_cast<redis_link*>(ac->data);
}

void redis_link::start() {
  connect();
}

void redis_link::stop() {
  stopped_ = true;
  timer_.cancel();
  if (ac_ != nullptr) {
    redisAsyncContext* ac = std::exchange(ac_, nullptr);
    // Pending commands get NULL replies; on_disconnect runs if it was connected.
    redisAsyncFree(ac);
  }
  state_ = state::down;
}

void redis_link::connect() {
  if (stopped_) return;
  const std::uint64_t attempt = ++attempt_;
  state_ = state::connecting;
  redisAsyncContext* ac = redisAsyncConnect(host_.c_str(), port_);
  if (ac == nullptr) return lost("out of memory");
  if (ac->err != 0) {
    std::string why = ac->errstr;
    redisAsyncFree(ac);
    return lost(why);
  }
  if (!attach_to_asio(ac, io_)) {
    redisAsyncFree(ac);
    return lost("cannot watch the socket");
  }
  ac->data = this;
  ac_ = ac;
  redisAsyncSetConnectCallback(ac, &on_connect);  // starts waiting for writability
  redisAsyncSetDisconnectCallback(ac, &on_disconnect);
  timer_.expires_after(connect_timeout);
  timer_.async_wait([this, attempt](const boost::system::error_code& ec) {
    if (ec || attempt_ != attempt || state_ != state::connecting || ac_ == nullptr) return;
    redisAsyncFree(std::exchange(ac_, nullptr));  // not connected: no callback runs
    lost("connect timed out");
  });
}

void redis_link::on_connect(const redisAsyncContext* ac, int status) {
  redis_link& l = of(ac);
  if (status != REDIS_OK) {
    l.ac_ = nullptr;  // hiredis frees the context when this returns
    l.lost(ac->errstr != nullptr ? ac->errstr : "connect failed");
    return;
  }
  l.state_ = state::up;
  l.timer_.cancel();
  redisEnableKeepAlive(&l.ac_->c);  // TCP keepalive (15 s): notices a peer gone silent
  const bool reconnected = l.ever_up_;
  if (reconnected) {
    log::info("redis fanout: reconnected", {{"connection", l.name_}});
  } else if (l.failing_) {
    log::info("redis fanout: connected", {{"connection", l.name_}});
  }
  l.ever_up_ = true;
  l.failing_ = false;
  l.backoff_ = 0ms;
  l.owner_.on_up(l, reconnected);
}

void redis_link::on_disconnect(const redisAsyncContext* ac, int status) {
  redis_link& l = of(ac);
  l.ac_ = nullptr;  // hiredis frees the context when this returns
  std::string why = status == REDIS_OK ? "closed" : (ac->errstr != nullptr ? ac->errstr : "");
  l.lost(why.empty() ? "connection lost" : why);
}

void redis_link::lost(std::string_view why) {
  state_ = state::down;
  owner_.on_down(*this);
  if (stopped_) return;
  backoff_ = backoff_ == 0ms ? initial_backoff : std::min(backoff_ * 2, max_backoff);
  std::uniform_int_distribution<long> spread(backoff_.count() * 3 / 4, backoff_.count() * 5 / 4);
  const std::chrono::milliseconds delay{spread(rng_)};
  if (!failing_) {
    log::warn("redis fanout: connection unavailable, retrying",
              {{"connection", name_},
               {"host", host_},
               {"port", port_},
               {"error", why},
               {"retry_ms", static_cast<std::int64_t>(delay.count())}});
    failing_ = true;
  }
  timer_.expires_after(delay);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && state_ == state::down) connect();
  });
}

}  // namespace chat4all::fanout_redis
