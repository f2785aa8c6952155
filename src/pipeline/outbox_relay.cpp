#include "pipeline/outbox_relay.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <unistd.h>

#include <algorithm>

#include "core/crypto.hpp"
#include "domain/message_codec.hpp"
#include "domain/message_service.hpp"  // messages_topic
#include "obs/logging.hpp"
#include "pipeline/message_router.hpp"  // dead_letter_topic
#include "pipeline/pause.hpp"

namespace chat4all {
namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

std::string make_holder() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + crypto::random_token(6);
}

bool retryable(const error& e) {
  return e.code == errc::unavailable || e.code == errc::timeout;
}

}  // namespace

outbox_relay::outbox_relay(outbox& box, event_log& log, message_store& store, const clock& clk,
                           relay_config cfg, obs::metrics_registry& metrics)
    : box_(box),
      log_(log),
      store_(store),
      clock_(clk),
      cfg_(cfg),
      holder_(make_holder()),
      backlog_(metrics.gauge("chat4all_outbox_backlog",
                             "Outbox entries waiting for the relay (last value seen)")),
      leader_(metrics.gauge("chat4all_outbox_relay_leader",
                            "1 while this relay holds the outbox publisher lease")),
      published_(metrics.counter("chat4all_outbox_published_records_total",
                                 "Outbox entries published to the log by this relay")),
      dead_letters_(metrics.counter("chat4all_outbox_dead_letters_total",
                                    "Outbox entries the log refused, sent to the DLQ")),
      errors_(metrics.counter("chat4all_outbox_relay_errors_total",
                              "Relay passes that failed (log or database unavailable)")) {}

task<result<std::size_t>> outbox_relay::step() {
  auto lease = co_await box_.acquire_lease(holder_, milliseconds(cfg_.lease_ms));
  if (!lease) co_return std::move(lease).err();
  leader_.set(*lease ? 1.0 : 0.0);
  if (!*lease) co_return std::size_t{0};

  auto entries = co_await box_.oldest(static_cast<std::size_t>(cfg_.batch_size));
  if (!entries) co_return std::move(entries).err();
  const auto now = std::chrono::steady_clock::now();
  if (entries->size() < static_cast<std::size_t>(cfg_.batch_size)) {
    backlog_.set(static_cast<double>(entries->size()));
  } else if (now >= next_backlog_read_) {  // a count(*) of a long outbox: once a second
    next_backlog_read_ = now + std::chrono::seconds(1);
    if (auto b = co_await box_.backlog(); b) backlog_.set(static_cast<double>(*b));
  }

  std::size_t done = 0;
  auto& es = *entries;
  for (std::size_t i = 0; i < es.size();) {
    std::size_t j = i + 1;
    while (j < es.size() && es[j].topic == es[i].topic) ++j;
    std::vector<log_record> records;
    std::vector<std::int64_t> ids;
    records.reserve(j - i);
    ids.reserve(j - i);
    for (std::size_t k = i; k < j; ++k) {
      records.push_back(es[k].record);
      ids.push_back(es[k].id);
    }
    auto r = co_await log_.append(es[i].topic, std::move(records));
    if (!r) {
      if (retryable(r.err())) co_return std::move(r).err();
      std::vector<outbox_entry> run(es.begin() + static_cast<std::ptrdiff_t>(i),
                                    es.begin() + static_cast<std::ptrdiff_t>(j));
      if (auto one = co_await publish_one_by_one(run); !one) co_return std::move(one).err();
      done += j - i;  // published, dead-lettered or counted: publish_one_by_one removed them
      i = j;
      continue;
    }
    if (auto rm = co_await box_.remove(std::move(ids)); !rm) co_return std::move(rm).err();
    published_.inc(j - i);
    done += j - i;
    i = j;
  }
  co_return done;
}

// After a permanent rejection of a batch: one entry at a time, in order. An entry that is
// still refused counts an attempt; after max_attempts it is dead-lettered. An entry that is
// refused but has attempts left stops the pass, so nothing behind it overtakes it.
task<result<void>> outbox_relay::publish_one_by_one(const std::vector<outbox_entry>& entries) {
  for (const auto& e : entries) {
    std::vector<log_record> one(1, e.record);
    auto r = co_await log_.append(e.topic, std::move(one));
    if (r) {
      std::vector<std::int64_t> ids(1, e.id);
      if (auto rm = co_await box_.remove(std::move(ids)); !rm) co_return std::move(rm).err();
      published_.inc();
      continue;
    }
    if (retryable(r.err())) co_return std::move(r).err();
    const std::string reason = std::string(r.err().name()) + ": " + r.err().message;
    auto attempts = co_await box_.note_failure(e.id, reason);
    if (!attempts) co_return std::move(attempts).err();
    if (*attempts < cfg_.max_attempts) {
      log::warn(
          "the log refused an outbox entry; will retry",
          {{"outbox_id", e.id}, {"topic", e.topic}, {"attempts", *attempts}, {"reason", reason}});
      co_return error(errc::unavailable, "outbox entry " + std::to_string(e.id) + " refused");
    }
    if (auto d = co_await dead_letter(e, reason); !d) co_return std::move(d).err();
  }
  co_return ok;
}

task<result<void>> outbox_relay::dead_letter(const outbox_entry& e, const std::string& reason) {
  const auto now = clock_.now_us();
  auto m = e.topic == messages_topic ? decode_log_record(e.record.value)
                                     : result<accepted_message>(error(errc::invalid_input, ""));
  if (m) {
    auto rec = co_await store_.store_failed(*m, "not published to the log: " + reason, now);
    if (!rec && rec.err().code != errc::not_found) co_return std::move(rec).err();
  }
  boost::json::object o;
  o["v"] = 1;
  o["topic"] = e.topic;
  o["outbox_id"] = e.id;
  if (m) o["message_id"] = m->message_id.str();
  o["reason"] = reason;
  o["failed_at"] = now;
  o["record"] = e.record.value;
  std::vector<log_record> dl(1, log_record{e.record.key, boost::json::serialize(o)});
  if (auto r = co_await log_.append(dead_letter_topic, std::move(dl)); !r)
    co_return std::move(r).err();
  std::vector<std::int64_t> ids(1, e.id);
  if (auto rm = co_await box_.remove(std::move(ids)); !rm) co_return std::move(rm).err();
  dead_letters_.inc();
  log::error("outbox entry dead-lettered",
             {{"outbox_id", e.id}, {"topic", e.topic}, {"reason", reason}});
  co_return ok;
}

task<void> outbox_relay::run() {
  milliseconds backoff(cfg_.backoff_initial_ms);
  bool was_failing = false;
  while (!stopping_) {
    auto r = co_await step();
    if (!r) {
      errors_.inc();
      if (!was_failing)
        log::warn("relay pass failed; backing off",
                  {{"code", r.err().name()},
                   {"reason", r.err().message},
                   {"backoff_ms", static_cast<std::int64_t>(backoff.count())}});
      was_failing = true;
      if (!co_await pause(backoff)) break;
      backoff = std::min(backoff * 2, milliseconds(cfg_.backoff_max_ms));
      continue;
    }
    if (was_failing) log::info("relay publishing again");
    was_failing = false;
    backoff = milliseconds(cfg_.backoff_initial_ms);
    if (*r == 0 && !co_await pause(milliseconds(cfg_.poll_ms))) break;
  }
  (void)co_await box_.release_lease(holder_);
  leader_.set(0);
}

task<bool> outbox_relay::pause(std::chrono::milliseconds d) {
  return pause_unless_stopping(stopping_, d);
}

}  // namespace chat4all
