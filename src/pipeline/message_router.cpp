#include "pipeline/message_router.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include "domain/events.hpp"
#include "domain/message_service.hpp"
#include "domain/message_codec.hpp"
#include "obs/logging.hpp"

namespace chat4all {
namespace asio = boost::asio;

namespace {
std::vector<double> batch_buckets() { return {1, 10, 50, 100, 250, 500, 1000, 2000, 5000}; }
}  // namespace

message_router::message_router(event_log& log, message_store& store, fanout& fan,
                               channel_dispatch& channels, inflight_messages& inflight,
                               const clock& clk, router_config cfg,
                               obs::metrics_registry& metrics)
    : consumer_(log.subscribe(messages_topic, "router")),
      store_(store),
      fanout_(fan),
      channels_(channels),
      inflight_(inflight),
      clock_(clk),
      cfg_(cfg),
      stored_(metrics.counter("chat4all_messages_stored_total",
                              "Messages stored by the router (first time)")),
      duplicates_(metrics.counter("chat4all_router_duplicates_total",
                                  "Log records skipped because the message was already stored")),
      poison_(metrics.counter("chat4all_router_poison_records_total",
                              "Log records that could not be decoded")),
      store_errors_(metrics.counter("chat4all_router_store_errors_total",
                                    "Failed store attempts (retried)")),
      accept_to_store_(metrics.histogram("chat4all_message_accept_to_store_seconds",
                                         "Time from durable accept to stored")),
      batch_size_(metrics.histogram("chat4all_router_batch_messages",
                                    "Messages per router store transaction", batch_buckets())) {}

message_router::~message_router() = default;

task<result<std::size_t>> message_router::step(std::chrono::milliseconds wait) {
  auto polled = co_await consumer_->poll(static_cast<std::size_t>(cfg_.batch_size), wait);
  if (!polled) co_return std::move(polled).err();
  auto& entries = *polled;
  if (entries.empty()) co_return std::size_t{0};

  std::vector<accepted_message> batch;
  batch.reserve(entries.size());
  for (const auto& e : entries) {
    auto m = decode_log_record(e.value);
    if (!m) {
      poison_.inc();
      log::error("undecodable message record skipped",
                 {{"offset", e.offset}, {"reason", m.err().message}});
      continue;
    }
    batch.push_back(std::move(m).value());
  }
  std::vector<uuid> ids;
  ids.reserve(batch.size());
  for (const auto& m : batch) ids.push_back(m.message_id);
  const auto n_batch = batch.size();

  auto stored = co_await store_.store_messages(std::move(batch), clock_.now_us());
  if (!stored) {
    store_errors_.inc();
    co_return std::move(stored).err();
  }
  const auto now = clock_.now_us();
  batch_size_.observe(static_cast<double>(n_batch));
  stored_.inc(stored->size());
  duplicates_.inc(n_batch - stored->size());

  std::vector<message> with_channels;
  for (const auto& m : *stored) {
    accept_to_store_.observe(static_cast<double>(now - m.created_at) / 1e6);
    fanout_.publish(conversation_channel(m.conversation), event_message_created(m, now));
    if (!m.channels.empty()) with_channels.push_back(m);
  }
  if (!with_channels.empty()) {
    if (auto r = co_await channels_.hand_off(with_channels); !r) co_return std::move(r).err();
  }
  if (auto r = co_await consumer_->commit(entries); !r) co_return std::move(r).err();
  inflight_.stored(ids);
  co_return entries.size();
}

task<result<std::size_t>> message_router::drain() {
  std::size_t total = 0;
  for (;;) {
    auto n = co_await step(std::chrono::milliseconds(0));
    if (!n) co_return n;
    if (*n == 0) co_return total;
    total += *n;
  }
}

task<void> message_router::run() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto backoff = std::chrono::milliseconds(100);
  const auto max_backoff = std::chrono::milliseconds(4000);
  while (!stopping_) {
    auto n = co_await step(std::chrono::milliseconds(cfg_.poll_wait_ms));
    if (n) {
      backoff = std::chrono::milliseconds(100);
      continue;
    }
    if (stopping_) break;
    log::warn("router step failed; retrying",
              {{"code", n.err().name()}, {"reason", n.err().message},
               {"backoff_ms", static_cast<std::int64_t>(backoff.count())}});
    timer.expires_after(backoff);
    co_await timer.async_wait(asio::use_awaitable);
    backoff = std::min(backoff * 2, max_backoff);
  }
}

}  // namespace chat4all
