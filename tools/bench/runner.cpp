#include "runner.hpp"

#include <boost/asio/executor_work_guard.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace chat4all::bench {

io_pool::io_pool(int threads) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i)
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
}

io_pool::~io_pool() {
  join();
}

void io_pool::start() {
  for (auto& c : contexts_) {
    auto* ctx = c.get();
    threads_.emplace_back([ctx] { ctx->run(); });
  }
}

void io_pool::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  for (auto& c : contexts_) c->restart();
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string thousands(double v) {
  auto n = static_cast<long long>(std::llround(v));
  std::string s = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return n < 0 ? "-" + s : s;
}

void watch_progress(const std::string& phase, const common_options& opt, live_counters& c,
                    const std::string& unit_name, double unit_scale,
                    const std::function<std::string()>& extra) {
  using namespace std::chrono;
  const auto start = steady_clock::now();
  auto last = start;
  std::uint64_t last_req = 0, last_units = 0;
  bool printed = false;
  while (!c.done.load()) {
    // Wake often so the phase ends promptly, print once per second.
    std::this_thread::sleep_for(milliseconds(50));
    const auto now = steady_clock::now();
    if (now - last < seconds(1) || !opt.progress) continue;
    const double dt = duration<double>(now - last).count();
    const auto req = c.requests.load(), units = c.units.load();
    char line[256];
    std::snprintf(line, sizeof line, "[%s] %3llds  %s req/s  %s %s  errors %s  in flight %lld%s",
                  phase.c_str(),
                  static_cast<long long>(duration_cast<seconds>(now - start).count()),
                  thousands(static_cast<double>(req - last_req) / dt).c_str(),
                  thousands(static_cast<double>(units - last_units) * unit_scale / dt).c_str(),
                  unit_name.c_str(), thousands(static_cast<double>(c.errors.load())).c_str(),
                  static_cast<long long>(c.inflight.load()), extra ? extra().c_str() : "");
    if (opt.tty)
      std::cout << '\r' << line << "\x1b[K" << std::flush;
    else
      std::cout << line << std::endl;
    printed = true;
    last = now;
    last_req = req;
    last_units = units;
  }
  if (printed && opt.tty) std::cout << '\n';
}

}  // namespace chat4all::bench
