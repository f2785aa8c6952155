// redis_fanout behaviour beyond the port's contract: surviving a Redis restart, and staying
// bounded and non-blocking while Redis is unreachable. These tests restart Redis, so each
// runs its own instance (scripts/services/redis.sh on a free port) rather than the shared one
// that concurrent contract tests use. Enabled, like the Redis contract tests, by
// CHAT4ALL_TEST_REDIS_URL.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "contract/fanout/redis_factory.hpp"

namespace chat4all::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;

// A port nobody listens on right now (the kernel's choice for an ephemeral bind).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// A Redis of this test's own, driven by the project's script; stopped and removed at the end.
class private_redis {
 public:
  private_redis() : port_(free_port()) {}
  ~private_redis() {
    run("stop");
    std::error_code ec;
    std::filesystem::remove_all(repo() / "var" / "services" / ("redis-" + std::to_string(port_)),
                                ec);
  }
  private_redis(const private_redis&) = delete;
  private_redis& operator=(const private_redis&) = delete;

  int port() const { return port_; }
  bool start() { return run("start"); }
  bool stop() { return run("stop"); }

 private:
  static std::filesystem::path repo() {
    return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
  }
  bool run(const char* cmd) const {
    const std::string line = "CHAT4ALL_REDIS_PORT=" + std::to_string(port_) + " '" +
                             (repo() / "scripts" / "services" / "redis.sh").string() + "' " + cmd +
                             " 2>/dev/null";
    return std::system(line.c_str()) == 0;
  }
  int port_;
};

class collector {
 public:
  fanout::handler handler() {
    return [this](std::string_view, std::string_view payload) {
      std::lock_guard lk(m_);
      got_.emplace_back(payload);
      cv_.notify_all();
    };
  }
  // Waits (bounded) until a payload satisfies `pred`; returns whether one did.
  template <class Pred>
  bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
    std::unique_lock lk(m_);
    return cv_.wait_for(lk, timeout, [&] {
      for (const auto& p : got_) {
        if (pred(p)) return true;
      }
      return false;
    });
  }
  std::vector<std::string> payloads() {
    std::lock_guard lk(m_);
    return got_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::string> got_;
};

class redis_fanout_test : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_endpoint shared;
    require_test_redis(shared);  // the shared instance is not used: only the switch
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_NE(redis_.port(), 0);
  }
  redis_options options() const {
    redis_options o;
    o.host = "127.0.0.1";
    o.port = redis_.port();
    o.channel_prefix = random_channel_prefix();
    return o;
  }
  private_redis redis_;
};

// Polls `pred` every 10 ms for at most `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
  const auto until = steady_clock::now() + limit;
  while (!pred()) {
    if (steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

TEST_F(redis_fanout_test, delivers_again_after_redis_restarts) {
  ASSERT_TRUE(redis_.start());
  redis_fanout f(options());
  collector c;
  auto s = f.subscribe("user:7", c.handler());
  f.publish("user:7", "before");
  ASSERT_TRUE(c.wait_until([](const std::string& p) { return p == "before"; }, 5s));

  EXPECT_TRUE(f.connected());
  ASSERT_TRUE(redis_.stop());
  EXPECT_TRUE(eventually([&] { return !f.connected(); }, 5s)) << "connected() with Redis gone";
  ASSERT_TRUE(redis_.start());

  // Both connections must come back and the channel must be subscribed again before a
  // payload can arrive; payloads published earlier may be lost (best-effort), so publish
  // until one arrives (bounded).
  bool delivered = false;
  const auto until = steady_clock::now() + 15s;
  for (int i = 0; !delivered && steady_clock::now() < until; ++i) {
    f.publish("user:7", "after:" + std::to_string(i));
    delivered = c.wait_until([](const std::string& p) { return p.rfind("after:", 0) == 0; }, 100ms);
  }
  ASSERT_TRUE(delivered) << "no payload delivered within 15 s of Redis restarting";
  EXPECT_TRUE(eventually([&] { return f.connected(); }, 5s));
  EXPECT_GE(f.stats().reconnects, 2u) << "both connections reconnect";

  // After the reconnect the subscription behaves as before: ordered, then unsubscribed.
  for (int i = 0; i < 100; ++i) f.publish("user:7", "seq:" + std::to_string(i));
  ASSERT_TRUE(c.wait_until([](const std::string& p) { return p == "seq:99"; }, 5s));
  std::vector<std::string> seq;
  for (const auto& p : c.payloads()) {
    if (p.rfind("seq:", 0) == 0) seq.push_back(p);
  }
  ASSERT_EQ(seq.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seq[i], "seq:" + std::to_string(i));
  s.reset();
  const auto count = c.payloads().size();
  f.publish("user:7", "gone");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(c.payloads().size(), count);
}

TEST_F(redis_fanout_test, publish_stays_bounded_and_non_blocking_while_redis_is_down) {
  // Nobody listens on the port: both connections keep retrying in the background.
  auto opts = options();
  opts.max_pending = 100;
  redis_fanout f(opts);
  const auto t0 = steady_clock::now();
  collector c;
  auto s = f.subscribe("user:8", c.handler());  // returns once the connection is known down
  for (int i = 0; i < 1000; ++i) f.publish("user:8", std::to_string(i));
  EXPECT_LT(steady_clock::now() - t0, 2s);
  EXPECT_EQ(f.stats().dropped, 900u) << "max_pending queued, the rest dropped";
  EXPECT_EQ(f.stats().published, 0u);
  EXPECT_FALSE(f.connected());

  // When Redis comes, the subscription goes live and the queue drains.
  ASSERT_TRUE(redis_.start());
  bool delivered = false;
  const auto until = steady_clock::now() + 15s;
  for (int i = 0; !delivered && steady_clock::now() < until; ++i) {
    f.publish("user:8", "live:" + std::to_string(i));
    delivered = c.wait_until([](const std::string& p) { return p.rfind("live:", 0) == 0; }, 100ms);
  }
  EXPECT_TRUE(delivered) << "subscription live within 15 s of Redis starting";
  EXPECT_GE(f.stats().published, 100u) << "the queued payloads were published";
}

TEST_F(redis_fanout_test, a_subscription_may_outlive_the_fanout) {
  ASSERT_TRUE(redis_.start());
  std::unique_ptr<fanout::subscription> s;
  collector c;
  {
    redis_fanout f(options());
    s = f.subscribe("user:9", c.handler());
    f.publish("user:9", "x");
    ASSERT_TRUE(c.wait_until([](const std::string& p) { return p == "x"; }, 5s));
  }
  s.reset();  // after the fanout: no adapter thread left, nothing to unsubscribe on Redis
  EXPECT_EQ(c.payloads().size(), 1u);
}

}  // namespace
}  // namespace chat4all::testing
