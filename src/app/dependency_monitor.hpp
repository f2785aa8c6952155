#pragma once
// dependency_monitor: a dependency of GET /readyz that cannot be asked on the request path
// (the blob store: a HEAD of the S3 bucket). run() checks it every `period` on the executor
// it runs on; state() answers at once with the last result ("starting" before the first).
// Changes of state are logged once each, not every check.
// Thread-safety: state() and stop() from any thread; run() once, on one executor.

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>

#include "api/handlers.hpp"
#include "core/error.hpp"

namespace chat4all::app {

class dependency_monitor {
 public:
  using check_fn = std::function<boost::asio::awaitable<result<void>>()>;
  // `ready_when_down`: whether the process still serves when the dependency is down (it
  // then shows as "down: <reason>" without making /readyz answer 503).
  dependency_monitor(std::string name, check_fn check, std::chrono::milliseconds period,
                     bool ready_when_down);

  // Checks until stop(); a check in progress finishes first (checks are bounded).
  boost::asio::awaitable<void> run();
  void stop() { stopping_ = true; }

  const std::string& name() const { return name_; }
  api::dependency_state state() const;

 private:
  const std::string name_;
  const check_fn check_;
  const std::chrono::milliseconds period_;
  const bool ready_when_down_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  enum class status { starting, ok, down } status_ = status::starting;
  std::string reason_;
};

}  // namespace chat4all::app
