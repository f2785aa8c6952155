#pragma once
// Fanout factory for the contract suite: redis_fanout against the Redis named by
// CHAT4ALL_TEST_REDIS_URL (redis://127.0.0.1:26379, as `scripts/services/redis.sh url`
// prints). Without the variable the Redis instantiation is skipped with a message; a value
// that is not a redis://host:port URL fails the test. Every test gets a random channel
// prefix, so concurrent test processes sharing one Redis never see each other's payloads.

#include <gtest/gtest.h>

#include <charconv>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "adapters/fanout/redis/redis_fanout.hpp"

namespace chat4all::testing {

struct redis_endpoint {
  std::string host;
  int port = 6379;
};

// redis://host[:port][/db] (the db number is ignored: pub/sub is not per database).
inline std::optional<redis_endpoint> parse_redis_url(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (url.substr(0, scheme.size()) != scheme) return std::nullopt;
  url.remove_prefix(scheme.size());
  url = url.substr(0, url.find('/'));
  redis_endpoint ep;
  const auto colon = url.rfind(':');
  ep.host = std::string(url.substr(0, colon));
  if (colon != std::string_view::npos) {
    const std::string_view p = url.substr(colon + 1);
    const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), ep.port);
    if (ec != std::errc{} || end != p.data() + p.size() || ep.port <= 0 || ep.port > 65535) {
      return std::nullopt;
    }
  }
  if (ep.host.empty()) return std::nullopt;
  return ep;
}

inline const char* test_redis_url() {
  return std::getenv("CHAT4ALL_TEST_REDIS_URL");
}

inline std::string random_channel_prefix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  constexpr char hex[] = "0123456789abcdef";
  std::string out = "chat4all-test-";
  for (std::uint64_t v = rng(), i = 0; i < 16; ++i, v >>= 4) out += hex[v & 15];
  return out + ":";
}

// Skips (no URL) or fails (bad URL) the calling test; check IsSkipped()/HasFatalFailure().
inline void require_test_redis(redis_endpoint& out) {
  const char* url = test_redis_url();
  if (url == nullptr || *url == '\0') {
    GTEST_SKIP() << "CHAT4ALL_TEST_REDIS_URL is not set (scripts/services/redis.sh start; "
                    "export CHAT4ALL_TEST_REDIS_URL=$(scripts/services/redis.sh url))";
  }
  auto ep = parse_redis_url(url);
  if (!ep) FAIL() << "CHAT4ALL_TEST_REDIS_URL is not redis://host:port: " << url;
  out = std::move(*ep);
}

class redis_fanout_factory {
 public:
  void set_up() { require_test_redis(endpoint_); }

  std::unique_ptr<fanout> make() {
    redis_options opts;
    opts.host = endpoint_.host;
    opts.port = endpoint_.port;
    opts.channel_prefix = prefix_;
    return std::make_unique<redis_fanout>(std::move(opts));
  }
  // The adapter adds the per-test prefix on Redis; handlers see the name as given.
  std::string channel(std::string_view base) { return std::string(base); }
  // subscribe() returns once Redis confirmed the SUBSCRIBE, and destroying a subscription
  // stops its handler at once: nothing is left to wait for.
  void settle() {}

 private:
  redis_endpoint endpoint_;
  std::string prefix_ = random_channel_prefix();
};

}  // namespace chat4all::testing
