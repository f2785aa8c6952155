#pragma once
// The pieces every mode shares: the io_context pool the clients run on (a few threads,
// many connections each), the live counters behind the once-a-second progress line, and the
// options common to all modes.

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"

namespace chat4all::bench {

struct common_options {
  server_address addr;
  int threads = 2;        // io_context threads of the load generator
  bool progress = false;  // print the live progress line
  bool tty = false;       // progress overwrites one line (\r) instead of printing lines
  std::string tag;        // unique per run (usernames)
  std::chrono::milliseconds request_timeout{30000};
};

// One io_context per thread; work is spread over them round-robin by index.
class io_pool {
 public:
  explicit io_pool(int threads);
  ~io_pool();
  int size() const { return static_cast<int>(contexts_.size()); }
  boost::asio::io_context& context(std::size_t i) { return *contexts_[i % contexts_.size()]; }
  void start();
  // Waits until every context ran out of work (all spawned coroutines finished).
  void join();

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<std::thread> threads_;
};

// Counters read by the progress line while the load runs (relaxed atomics).
struct live_counters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> units{0};  // messages accepted / bytes uploaded / notifications
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::int64_t> inflight{0};
  std::atomic<bool> done{false};
};

// Prints "[phase] 3s  1,234 req/s  5,678 msg/s  errors 0  in flight 64" once per second
// until counters.done, when enabled; returns when done.
void watch_progress(const std::string& phase, const common_options& opt, live_counters& c,
                    const std::string& unit_name, double unit_scale,
                    const std::function<std::string()>& extra = {});

// Seconds since the Unix epoch (wall clock), for reports.
double unix_now();
std::string thousands(double v);

}  // namespace chat4all::bench
