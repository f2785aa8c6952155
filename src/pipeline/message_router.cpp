#include "pipeline/message_router.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>

#include "domain/events.hpp"
#include "domain/message_codec.hpp"
#include "domain/message_service.hpp"
#include "obs/logging.hpp"
#include "pipeline/pause.hpp"

namespace chat4all {
namespace asio = boost::asio;

namespace {
std::vector<double> batch_buckets() {
  return {1, 10, 50, 100, 250, 500, 1000, 2000, 5000};
}

// The dead-letter record of a `messages` log entry (format in message_router.hpp).
log_record dead_letter(const log_entry& e, const accepted_message* m, std::string_view reason,
                       timestamp_us at) {
  boost::json::object o;
  o["v"] = 1;
  o["topic"] = messages_topic;
  o["partition"] = e.partition;
  o["offset"] = e.offset;
  if (m != nullptr) o["message_id"] = m->message_id.str();
  o["reason"] = reason;
  o["failed_at"] = at;
  o["record"] = e.value;
  return {m != nullptr ? std::to_string(m->conversation) : e.key, boost::json::serialize(o)};
}

std::string describe(const error& e) {
  return std::string(e.name()) + ": " + e.message;
}
}  // namespace

message_router::message_router(event_log& log, message_store& store, fanout& fan,
                               channel_dispatch& channels, inflight_messages& inflight,
                               const clock& clk, router_config cfg, obs::metrics_registry& metrics)
    : log_(log),
      consumer_(log.subscribe(messages_topic, "router")),
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
                              "Log records that could not be decoded (dead-lettered)")),
      store_errors_(
          metrics.counter("chat4all_router_store_errors_total", "Failed store attempts (retried)")),
      failed_(metrics.counter("chat4all_messages_failed_total",
                              "Messages that could not be stored after the retries: marked "
                              "FAILED and dead-lettered")),
      dead_letters_(metrics.counter("chat4all_dlq_records_total",
                                    "Records appended to the message_processing_dlq topic")),
      prefetched_(metrics.counter("chat4all_router_prefetched_batches_total",
                                  "Batches polled and decoded while the previous one was being "
                                  "stored (the router is behind the log)")),
      accept_to_store_(metrics.histogram("chat4all_message_accept_to_store_seconds",
                                         "Time from durable accept to stored")),
      batch_size_(metrics.histogram("chat4all_router_batch_messages",
                                    "Messages per router store transaction", batch_buckets())) {}

message_router::~message_router() = default;

task<result<std::optional<message_router::pending_batch>>> message_router::poll_batch(
    std::chrono::milliseconds wait, std::chrono::milliseconds linger) {
  const auto max = static_cast<std::size_t>(cfg_.batch_size);
  auto polled = co_await consumer_->poll(max, wait);
  if (!polled) co_return std::move(polled).err();
  const bool was_busy = std::exchange(busy_, !polled->empty());
  if (polled->empty()) co_return std::optional<pending_batch>{};
  // A steady stream arrives in small polls (a few group commits each): waiting a moment
  // lets one transaction and one commit cover several of them.
  if (was_busy && linger.count() > 0 && polled->size() < max && co_await pause(linger)) {
    // A failed second poll is left to the next step: what was polled is handled now (the
    // consumer has moved past it).
    if (auto more = co_await consumer_->poll(max - polled->size(), std::chrono::milliseconds(0)))
      polled->insert(polled->end(), std::make_move_iterator(more->begin()),
                     std::make_move_iterator(more->end()));
  }
  std::optional<pending_batch> out(std::in_place);
  pending_batch& p = *out;
  p.entries = std::move(*polled);
  p.messages.reserve(p.entries.size());
  p.ids.reserve(p.entries.size());
  for (const auto& e : p.entries) {
    auto m = decode_log_record(e.value);
    if (!m) {
      poison_.inc();
      log::error("undecodable message record dead-lettered",
                 {{"partition", e.partition}, {"offset", e.offset}, {"reason", m.err().message}});
      p.dead_letters.push_back(
          dead_letter(e, nullptr, "undecodable record: " + m.err().message, clock_.now_us()));
      continue;
    }
    p.ids.push_back(m->message_id);
    p.messages.push_back(std::move(m).value());
  }
  co_return out;
}

task<result<void>> message_router::store_and_prefetch(pending_batch& p) {
  using namespace boost::asio::experimental::awaitable_operators;
  // Both run on this stage's executor: store() waits for the writer thread, and the poll and
  // the decoding of the next batch take that time.
  auto [stored, polled] = co_await (store(p) && poll_batch(std::chrono::milliseconds(0), {}));
  if (polled && *polled) {
    next_ = std::move(**polled);
    prefetched_.inc();
  }
  // A failed poll took nothing from the log: the next step polls again.
  co_return stored;
}

task<result<std::size_t>> message_router::step(std::chrono::milliseconds wait,
                                               std::chrono::milliseconds linger) {
  if (!pending_ && next_) pending_ = std::exchange(next_, std::nullopt);
  if (!pending_) {
    auto polled = co_await poll_batch(wait, linger);
    if (!polled) co_return std::move(polled).err();
    if (!*polled) co_return std::size_t{0};
    pending_ = std::move(**polled);
  }
  // From here on, a failure keeps the batch pending: the next step resumes it where it
  // stopped (the log consumer has moved past these entries and would not return them again).
  auto& p = *pending_;
  if (!p.stored) {
    // Prefetch under a backlog only (a full poll: more is waiting), one batch ahead at most,
    // and not while stopping. A partial poll drained the log: the next one lingers instead.
    const bool backlog = p.entries.size() >= static_cast<std::size_t>(cfg_.batch_size);
    result<void> r;
    if (!backlog || next_ || stopping_)
      r = co_await store(p);
    else
      r = co_await store_and_prefetch(p);
    if (!r) co_return std::move(r).err();
    p.stored = true;
  }
  if (!p.with_channels.empty()) {
    if (auto r = co_await channels_.hand_off(p.with_channels); !r) co_return std::move(r).err();
    p.with_channels.clear();
  }
  if (!p.dead_letters.empty()) {
    const auto n = p.dead_letters.size();
    if (auto r = co_await log_.append(dead_letter_topic, p.dead_letters); !r)
      co_return std::move(r).err();
    dead_letters_.inc(n);
    p.dead_letters.clear();
  }
  if (auto r = co_await consumer_->commit(p.entries); !r) co_return std::move(r).err();
  inflight_.stored(p.ids);
  const auto handled = p.entries.size();
  pending_.reset();
  co_return handled;
}

std::vector<accepted_message> message_router::redecode(const pending_batch& p) const {
  std::vector<accepted_message> out;
  out.reserve(p.entries.size());
  for (const auto& e : p.entries) {
    auto m = decode_log_record(e.value);
    if (m && !p.failed.contains(m->message_id)) out.push_back(std::move(m).value());
  }
  return out;
}

task<result<void>> message_router::store(pending_batch& p) {
  // The first attempt takes the batch decoded at poll time (no copy on the hot path); a
  // retry decodes it again from the entries.
  auto batch = p.messages.empty() ? redecode(p) : std::move(p.messages);
  p.messages.clear();
  if (batch.empty()) co_return ok;
  const auto n = batch.size();

  auto delay = std::chrono::milliseconds(cfg_.retry_initial_ms);
  for (int attempt = 0;; ++attempt) {
    auto r = co_await store_.store_messages(std::move(batch), clock_.now_us());
    if (r) {
      on_stored(p, *r, n);
      co_return ok;
    }
    store_errors_.inc();
    if (attempt == cfg_.max_retries) {
      log::warn("router store failed after the last retry; storing the batch message by message",
                {{"messages", n}, {"code", r.err().name()}, {"reason", r.err().message}});
      break;
    }
    log::warn("router store failed; retrying",
              {{"messages", n},
               {"attempt", attempt + 1},
               {"code", r.err().name()},
               {"reason", r.err().message},
               {"backoff_ms", static_cast<std::int64_t>(delay.count())}});
    if (!co_await pause(delay)) co_return std::move(r).err();
    delay *= 2;
    batch = redecode(p);
  }

  // One message at a time, in log order (seq follows acceptance order): what fails alone
  // is the poison, recorded FAILED and dead-lettered; the rest is stored as usual.
  for (const auto& e : p.entries) {
    auto decoded = decode_log_record(e.value);
    if (!decoded || p.failed.contains(decoded->message_id)) continue;
    const accepted_message& m = *decoded;
    std::vector<accepted_message> single(1, m);
    auto one = co_await store_.store_messages(std::move(single), clock_.now_us());
    if (one) {
      on_stored(p, *one, 1);
      continue;
    }
    store_errors_.inc();
    const std::string reason =
        "not stored after " + std::to_string(cfg_.max_retries) + " retries: " + describe(one.err());
    const auto now = clock_.now_us();
    auto rec = co_await store_.store_failed(m, reason, now);
    // not_found: the conversation is gone, so there is nothing to mark; the record still
    // goes to the dead-letter queue. Any other error: the store cannot even record the
    // failure (it is down, not this message): keep the batch pending and try again later.
    if (!rec && rec.err().code != errc::not_found) co_return std::move(rec).err();
    p.failed.insert(m.message_id);
    failed_.inc();
    // The sender's devices learn it live (message.status FAILED), like any other transition.
    if (rec)
      fanout_.publish(
          conversation_channel(m.conversation),
          event_message_status(m.message_id, m.conversation, message_status::failed, now));
    log::error("message failed and was dead-lettered", {{"message_id", m.message_id.str()},
                                                        {"conversation_id", m.conversation},
                                                        {"reason", reason},
                                                        {"marked_failed", rec.has_value()}});
    p.dead_letters.push_back(dead_letter(e, &m, reason, now));
  }
  co_return ok;
}

void message_router::on_stored(pending_batch& p, const std::vector<message>& stored,
                               std::size_t attempted) {
  const auto now = clock_.now_us();
  batch_size_.observe(static_cast<double>(attempted));
  stored_.inc(stored.size());
  duplicates_.inc(attempted - stored.size());
  for (const auto& m : stored) {
    accept_to_store_.observe(static_cast<double>(now - m.created_at) / 1e6);
    // Building the event is most of the router's own CPU per message: skip it when the
    // channel has nobody to deliver to (the usual case for ingestion-only traffic).
    auto channel = conversation_channel(m.conversation);
    if (fanout_.has_subscribers(channel))
      fanout_.publish(std::move(channel), event_message_created(m, now));
    if (!m.channels.empty()) p.with_channels.push_back(m);
  }
}

task<bool> message_router::pause(std::chrono::milliseconds d) {
  return pause_unless_stopping(stopping_, d);
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
  auto backoff = std::chrono::milliseconds(100);
  const auto max_backoff = std::chrono::milliseconds(4000);
  while (!stopping_) {
    auto n = co_await step(std::chrono::milliseconds(cfg_.poll_wait_ms),
                           std::chrono::milliseconds(cfg_.linger_ms));
    if (n) {
      backoff = std::chrono::milliseconds(100);
      continue;
    }
    if (stopping_) break;
    log::warn("router step failed; retrying",
              {{"code", n.err().name()},
               {"reason", n.err().message},
               {"backoff_ms", static_cast<std::int64_t>(backoff.count())}});
    if (!co_await pause(backoff)) break;
    backoff = std::min(backoff * 2, max_backoff);
  }
}

}  // namespace chat4all
