#include "pipeline/outbox_log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "obs/logging.hpp"

namespace chat4all {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// The primary append, raced against a timer by append(): whichever ends first decides.
struct race {
  explicit race(asio::any_io_executor ex) : timer(std::move(ex)) {}
  asio::steady_timer timer;
  std::optional<result<void>> outcome;
};

// A named coroutine function (not a capturing lambda): see core/offload.hpp on g++ 12.
asio::awaitable<void> run_primary(event_log& primary, std::shared_ptr<race> r, std::string topic,
                                  std::vector<log_record> records) {
  r->outcome = co_await primary.append(std::move(topic), std::move(records));
  r->timer.cancel();
}

asio::awaitable<void> sleep_for(milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

const char* name_of(outbox_log::mode m) {
  switch (m) {
    case outbox_log::mode::direct:
      return "direct";
    case outbox_log::mode::diverting:
      return "diverting";
    case outbox_log::mode::holding:
      return "holding";
  }
  return "?";
}

}  // namespace

outbox_log::outbox_log(event_log& primary, outbox& box, const clock& clk,
                       std::function<bool()> primary_healthy, outbox_log_options opts,
                       obs::metrics_registry& metrics)
    : primary_(primary),
      box_(box),
      clock_(clk),
      primary_healthy_(std::move(primary_healthy)),
      opts_(opts),
      diverted_(metrics.counter("chat4all_outbox_enqueued_records_total",
                                "Records committed to the outbox because the log did not take "
                                "them (Kafka unreachable or slow)")),
      fallbacks_(metrics.counter("chat4all_outbox_fallbacks_total",
                                 "Times this process switched from the log to the outbox")),
      mode_gauge_(metrics.gauge("chat4all_outbox_mode",
                                "0 = appends go to the log, 1 = to the outbox, 2 = switching "
                                "back (new appends wait for the relay to empty the outbox)")),
      backlog_(metrics.gauge("chat4all_outbox_backlog",
                             "Outbox entries waiting for the relay (last value seen)")) {}

outbox_log::~outbox_log() = default;

void outbox_log::set_mode(mode m) {
  const auto was = mode_.exchange(m);
  mode_gauge_.set(static_cast<double>(m));
  if (was != m) log::warn("outbox mode changed", {{"from", name_of(was)}, {"to", name_of(m)}});
}

asio::awaitable<result<void>> outbox_log::append(std::string topic,
                                                 std::vector<log_record> records) {
  for (;;) {
    // Counted before the mode is read: try_way_back() sets `holding` first, then waits for
    // this count to drop to 0, so no outbox write can slip in after it saw the outbox empty.
    ++outbox_writes_;
    const auto m = mode_.load();
    if (m == mode::diverting) co_return co_await to_outbox(std::move(topic), std::move(records));
    --outbox_writes_;
    if (m == mode::direct) break;
    co_await sleep_for(milliseconds(10));  // holding; bounded: the holder gives up after hold_max
  }

  auto ex = co_await asio::this_coro::executor;
  auto r = std::make_shared<race>(ex);
  r->timer.expires_after(opts_.fallback_after);
  asio::co_spawn(ex, run_primary(primary_, r, topic, records), asio::detached);
  boost::system::error_code ec;
  co_await r->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (r->outcome && *r->outcome) co_return ok;

  // Timed out or failed: the records go to the outbox, and so does everything after them.
  const std::string why = r->outcome ? r->outcome->err().message
                                     : "no acknowledgement within " +
                                           std::to_string(opts_.fallback_after.count()) + " ms";
  ++outbox_writes_;
  if (mode_.load() == mode::direct) {
    fallbacks_.inc();
    log::warn("the log did not take an append; using the outbox",
              {{"topic", topic}, {"reason", why}});
    last_check_ms_ = now_ms();
    set_mode(mode::diverting);
  }
  co_return co_await to_outbox(std::move(topic), std::move(records));
}

// The caller has counted this write in outbox_writes_.
asio::awaitable<result<void>> outbox_log::to_outbox(std::string topic,
                                                    std::vector<log_record> records) {
  const auto n = records.size();
  auto r = co_await box_.enqueue(std::move(topic), std::move(records), clock_.now_us());
  --outbox_writes_;
  if (!r)
    co_return error(errc::unavailable,
                    "neither the log nor the outbox is available: " + r.err().message);
  diverted_.inc(n);
  const auto now = now_ms();
  auto last = last_check_ms_.load();
  if (now - last >= opts_.check_every.count() && !checking_.exchange(true)) {
    last_check_ms_ = now;
    asio::co_spawn(co_await asio::this_coro::executor, try_way_back(), asio::detached);
  }
  co_return ok;
}

asio::awaitable<void> outbox_log::try_way_back() {
  struct reset_flag {
    std::atomic<bool>& f;
    ~reset_flag() { f = false; }
  } guard{checking_};
  if (mode_.load() != mode::diverting || (primary_healthy_ && !primary_healthy_())) co_return;
  auto b = co_await box_.backlog();
  if (!b) co_return;
  backlog_.set(static_cast<double>(*b));
  if (*b > opts_.hold_below) co_return;

  set_mode(mode::holding);
  const auto deadline = steady_clock::now() + opts_.hold_max;
  while (steady_clock::now() < deadline) {
    if (outbox_writes_.load() == 0) {
      auto left = co_await box_.backlog();
      if (left) backlog_.set(static_cast<double>(*left));
      if (left && *left == 0 && outbox_writes_.load() == 0) {
        set_mode(mode::direct);
        co_return;
      }
    }
    co_await sleep_for(milliseconds(20));
  }
  // The relay did not empty it in time: divert again, and let appends flow for a while before
  // the next hold (each hold delays new appends by up to hold_max).
  last_check_ms_ = now_ms() + 4 * opts_.check_every.count();
  set_mode(mode::diverting);
}

}  // namespace chat4all
