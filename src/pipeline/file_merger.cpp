#include "pipeline/file_merger.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "obs/logging.hpp"

namespace chat4all {
namespace asio = boost::asio;

namespace {
// Waits `d`, waking every 100 ms to notice stop(); false when stopped.
task<bool> sleep_unless(const std::atomic<bool>& stopping, std::chrono::milliseconds d) {
  using clk = std::chrono::steady_clock;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto until = clk::now() + d;
  while (!stopping) {
    const auto left = until - clk::now();
    if (left <= clk::duration::zero()) co_return true;
    timer.expires_after(std::min<clk::duration>(left, std::chrono::milliseconds(100)));
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return false;
}
}  // namespace

file_merger::file_merger(event_log& log, upload_service& files, std::string group)
    : files_(files), consumer_(log.subscribe(file_merge_topic, std::move(group))) {}

task<bool> file_merger::pause(std::chrono::milliseconds d) {
  co_return co_await sleep_unless(stopping_, d);
}

task<void> file_merger::run() {
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_) {
    auto polled = co_await consumer_->poll(16, std::chrono::milliseconds(200));
    if (!polled) {
      log::warn("merge request poll failed", {{"reason", polled.err().message}});
      if (!co_await pause(backoff)) break;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(4000));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    for (const auto& e : *polled) {
      auto id = uuid::parse(e.value);
      if (!id) {
        log::warn("ignoring a malformed merge request", {{"value", e.value}});
        continue;
      }
      // Retried until it reaches a final state (storage down = retryable): the offset is
      // committed only after every request of the batch is done.
      for (auto wait = std::chrono::milliseconds(500); !stopping_;) {
        auto r = co_await files_.merge(*id);
        if (r) break;
        log::warn("merge failed; retrying",
                  {{"upload_id", e.value}, {"code", r.err().name()}, {"reason", r.err().message}});
        if (!co_await pause(wait)) co_return;
        wait = std::min(wait * 2, std::chrono::milliseconds(8000));
      }
      if (stopping_) co_return;
    }
    if (!polled->empty()) {
      if (auto c = co_await consumer_->commit(*polled); !c)
        log::warn("merge offset commit failed", {{"reason", c.err().message}});
    }
  }
}

upload_gc::upload_gc(upload_service& files, std::chrono::seconds interval)
    : files_(files), interval_(interval) {}

task<result<int>> upload_gc::sweep() {
  int total = 0;
  for (;;) {
    auto n = co_await files_.expire_due(100);
    if (!n) co_return n;
    total += *n;
    if (*n < 100) co_return total;
  }
}

task<void> upload_gc::run() {
  while (!stopping_) {
    auto n = co_await sweep();
    if (!n)
      log::warn("expiring uploads failed", {{"reason", n.err().message}});
    else if (*n > 0)
      log::info("expired uploads removed", {{"count", *n}});
    if (!co_await sleep_unless(stopping_,
                               std::chrono::duration_cast<std::chrono::milliseconds>(interval_)))
      break;
  }
}

}  // namespace chat4all
