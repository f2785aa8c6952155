#include "app/dependency_monitor.hpp"

#include "obs/logging.hpp"
#include "pipeline/pause.hpp"

namespace chat4all::app {

dependency_monitor::dependency_monitor(std::string name, check_fn check,
                                       std::chrono::milliseconds period, bool ready_when_down)
    : name_(std::move(name)),
      check_(std::move(check)),
      period_(period),
      ready_when_down_(ready_when_down) {}

boost::asio::awaitable<void> dependency_monitor::run() {
  while (!stopping_) {
    auto r = co_await check_();
    const status now = r ? status::ok : status::down;
    std::string reason = r ? std::string() : r.err().message;
    status before;
    {
      std::lock_guard lk(mu_);
      before = status_;
      status_ = now;
      reason_ = reason;
    }
    if (now == status::down && before != status::down)
      log::warn("dependency down", {{"dependency", name_}, {"reason", reason}});
    else if (now == status::ok && before == status::down)
      log::info("dependency back", {{"dependency", name_}});
    if (!co_await pause_unless_stopping(stopping_, period_)) break;
  }
}

api::dependency_state dependency_monitor::state() const {
  std::lock_guard lk(mu_);
  switch (status_) {
    case status::starting:
      return {"starting", true};
    case status::ok:
      return {"ok", true};
    case status::down:
      break;
  }
  return {"down: " + reason_, ready_when_down_};
}

}  // namespace chat4all::app
