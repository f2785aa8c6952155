#include "adapters/counters/redis/redis_counters.hpp"

#include <hiredis/hiredis.h>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <mutex>
#include <vector>

#include "core/offload.hpp"
#include "core/thread_name.hpp"

namespace chat4all {

namespace {

// INCRBY, and the expiry only for a counter this call created: a fixed window.
constexpr const char* add_script =
    "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "if v == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "return v";

struct context_deleter {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
struct reply_deleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using context_ptr = std::unique_ptr<redisContext, context_deleter>;

timeval to_timeval(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000),
                 static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

}  // namespace

struct redis_counters::impl {
  redis_counters_options opts;
  boost::asio::thread_pool pool;
  std::mutex mu;
  std::vector<context_ptr> idle;  // connections not in use

  explicit impl(redis_counters_options o)
      : opts(std::move(o)), pool(static_cast<std::size_t>(std::max(opts.connections, 1))) {
    name_pool_threads(pool, static_cast<std::size_t>(std::max(opts.connections, 1)),
                      "c4a-redis-cnt");
  }

  result<context_ptr> connect() {
    const auto tv = to_timeval(opts.timeout);
    context_ptr c(redisConnectWithTimeout(opts.host.c_str(), opts.port, tv));
    if (!c) return error(errc::unavailable, "redis: out of memory");
    if (c->err) return error(errc::unavailable, std::string("redis: ") + c->errstr);
    redisSetTimeout(c.get(), tv);
    return c;
  }

  result<std::int64_t> add_now(const std::string& key, std::int64_t n, std::int64_t window_ms) {
    context_ptr c;
    {
      std::lock_guard lk(mu);
      if (!idle.empty()) {
        c = std::move(idle.back());
        idle.pop_back();
      }
    }
    if (!c) {
      auto fresh = connect();
      if (!fresh) return std::move(fresh).err();
      c = std::move(*fresh);
    }
    const std::string full = opts.key_prefix + key;
    const std::string by = std::to_string(n), ttl = std::to_string(window_ms);
    std::unique_ptr<redisReply, reply_deleter> r(static_cast<redisReply*>(
        redisCommand(c.get(), "EVAL %s 1 %b %b %b", add_script, full.data(), full.size(), by.data(),
                     by.size(), ttl.data(), ttl.size())));
    if (!r) return error(errc::unavailable, std::string("redis: ") + c->errstr);  // c dropped
    if (r->type != REDIS_REPLY_INTEGER) {
      const std::string why =
          r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "unexpected reply";
      std::lock_guard lk(mu);
      idle.push_back(std::move(c));
      return error(errc::unavailable, "redis: " + why);
    }
    const std::int64_t v = r->integer;
    std::lock_guard lk(mu);
    idle.push_back(std::move(c));
    return v;
  }
};

redis_counters::redis_counters(redis_counters_options opts)
    : impl_(std::make_unique<impl>(std::move(opts))) {}

redis_counters::~redis_counters() {
  impl_->pool.join();
}

task<result<std::int64_t>> redis_counters::add(std::string key, std::int64_t n,
                                               std::chrono::milliseconds window) {
  if (window.count() <= 0) co_return error(errc::invalid_input, "window must be positive");
  auto work = [self = impl_.get(), key = std::move(key), n, ms = window.count()] {
    return self->add_now(key, n, ms);
  };
  co_return co_await offload(impl_->pool.get_executor(), std::move(work));
}

}  // namespace chat4all
