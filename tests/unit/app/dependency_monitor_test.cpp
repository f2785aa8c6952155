// dependency_monitor: the last check's answer for GET /readyz, "starting" before the first,
// and a prompt end on stop().

#include "app/dependency_monitor.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <thread>

namespace chat4all::app {
namespace {

using namespace std::chrono_literals;

// Runs the monitor on its own thread; `answer` says what the next checks return.
struct running_monitor {
  std::atomic<int> answer{0};  // 0: ok, 1: unavailable
  std::atomic<int> checks{0};
  dependency_monitor m;
  boost::asio::io_context ioc;
  std::atomic<bool> ended{false};
  std::thread t;

  explicit running_monitor(bool ready_when_down)
      : m(
            "thing",
            [this]() -> boost::asio::awaitable<result<void>> {
              ++checks;
              if (answer.load() == 0) co_return ok;
              co_return error(errc::unavailable, "no answer");
            },
            10ms, ready_when_down) {}
  void start() {
    boost::asio::co_spawn(ioc, m.run(), [this](std::exception_ptr) { ended = true; });
    t = std::thread([this] { ioc.run(); });
  }
  ~running_monitor() {
    m.stop();
    if (t.joinable()) t.join();
  }
  // Waits until at least `n` more checks ran.
  void await_checks(int n) {
    const int target = checks.load() + n;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (checks.load() < target && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    ASSERT_GE(checks.load(), target);
  }
};

TEST(dependency_monitor, starting_then_the_last_answer) {
  running_monitor r(/*ready_when_down=*/true);
  EXPECT_EQ(r.m.state().state, "starting");
  EXPECT_TRUE(r.m.state().ready);
  r.start();
  r.await_checks(2);
  EXPECT_EQ(r.m.state().state, "ok");
  r.answer = 1;
  r.await_checks(2);
  EXPECT_EQ(r.m.state().state, "down: no answer");
  EXPECT_TRUE(r.m.state().ready);  // shown down, the process still serves
  r.answer = 0;
  r.await_checks(2);
  EXPECT_EQ(r.m.state().state, "ok");
}

TEST(dependency_monitor, a_dependency_the_process_needs_makes_it_not_ready) {
  running_monitor r(/*ready_when_down=*/false);
  r.answer = 1;
  r.start();
  r.await_checks(2);
  EXPECT_EQ(r.m.state().state, "down: no answer");
  EXPECT_FALSE(r.m.state().ready);
}

TEST(dependency_monitor, stop_ends_run_promptly) {
  running_monitor r(true);
  r.start();
  r.await_checks(1);
  const auto t0 = std::chrono::steady_clock::now();
  r.m.stop();
  r.t.join();
  EXPECT_TRUE(r.ended.load());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

}  // namespace
}  // namespace chat4all::app
