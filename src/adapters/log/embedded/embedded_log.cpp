#include "adapters/log/embedded/embedded_log.hpp"

#include <fcntl.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "adapters/log/embedded/log_core.hpp"
#include "adapters/log/embedded/record_format.hpp"

namespace chat4all {
namespace asio = boost::asio;

namespace log_embedded {
namespace {

class embedded_consumer final : public log_consumer {
 public:
  embedded_consumer(std::shared_ptr<log_core> core, std::shared_ptr<topic> t, std::string group,
                    std::int64_t start)
      : core_(std::move(core)), t_(std::move(t)), group_(std::move(group)), position_(start) {}

  asio::awaitable<result<std::vector<log_entry>>> poll(
      std::size_t max_entries, std::chrono::milliseconds max_wait) override {
    if (core_->stopped()) co_return error(errc::unavailable, "log stopped");
    const auto deadline = std::chrono::steady_clock::now() + max_wait;
    for (;;) {
      auto r = read_available(max_entries);
      if (!r || !r->empty() || max_entries == 0) co_return r;
      if (core_->stopped()) co_return error(errc::unavailable, "log stopped");
      if (std::chrono::steady_clock::now() >= deadline) co_return r;
      co_await wait_for_data(deadline);
    }
  }

  asio::awaitable<result<void>> commit(const std::vector<log_entry>& processed) override {
    if (processed.empty()) co_return ok;
    std::int64_t last = processed.front().offset;
    for (const auto& e : processed) last = std::max(last, e.offset);
    co_return t_->commit(group_, last + 1);
  }

 private:
  // Reads what is durable after position_ (a page-cache read: no waiting on the device).
  // A read error after some records returns those (position_ is past them already); the
  // next call meets the error again and reports it.
  result<std::vector<log_entry>> read_available(std::size_t max_entries) {
    std::vector<log_entry> out;
    while (out.size() < max_entries) {
      std::int64_t end, base, next_base;
      {
        std::lock_guard lk(t_->mu);
        end = t_->durable_end;
        position_ = std::max(position_, t_->segments.front());
        auto it = std::upper_bound(t_->segments.begin(), t_->segments.end(), position_);
        base = *std::prev(it);
        next_base = it == t_->segments.end() ? std::numeric_limits<std::int64_t>::max() : *it;
      }
      if (position_ >= end) break;
      if (auto r = seek(base); !r) return partial(std::move(out), std::move(r).err());
      const std::int64_t limit = std::min(end, next_base);
      while (out.size() < max_entries && next_ < limit) {
        frame_view f;
        if (auto r = next_frame(f); !r) return partial(std::move(out), std::move(r).err());
        out.push_back(log_entry{0, f.offset, std::string(f.key), std::string(f.value)});
        position_ = next_;
      }
    }
    return out;
  }

  static result<std::vector<log_entry>> partial(std::vector<log_entry> out, error e) {
    if (out.empty()) return e;
    return out;
  }

  // Positions the reader on record position_ of the segment starting at `base`.
  result<void> seek(std::int64_t base) {
    if (reader_ && cursor_base_ == base && next_ == position_) return ok;
    const auto path = t_->segment_path(base);
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return error(errc::unavailable, "cannot open " + path.string());
    fd_ = std::move(fd);
    reader_ = std::make_unique<segment_reader>(fd_.get());
    cursor_base_ = base;
    next_ = base;
    frame_view f;
    while (next_ < position_) {
      if (auto r = next_frame(f); !r) return r;
    }
    return ok;
  }

  result<void> next_frame(frame_view& f) {
    const auto st = reader_->next(f);
    if (st == segment_reader::status::ok && f.offset == next_) {
      ++next_;
      return ok;
    }
    const auto path = t_->segment_path(cursor_base_).string();
    reader_.reset();
    if (st == segment_reader::status::io_error) {
      return error(errc::unavailable, "cannot read " + path);
    }
    return error(errc::internal, "corrupt durable record " + std::to_string(next_) + " in " + path);
  }

  // Returns when records after position_ may be durable, at `deadline`, or on stop().
  asio::awaitable<void> wait_for_data(std::chrono::steady_clock::time_point deadline) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, deadline);
    std::shared_ptr<poll_waiter> waiter;
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [&](auto handler) {
          waiter = std::make_shared<poll_waiter>(make_completion<>(std::move(handler)));
          bool ready;
          {
            std::lock_guard lk(t_->mu);
            ready = t_->durable_end > position_ || core_->stopped();
            if (!ready) t_->waiters.push_back(waiter);
          }
          if (ready) {
            waiter->fire();
            return;
          }
          timer.async_wait([waiter](const boost::system::error_code&) { waiter->fire(); });
        },
        asio::use_awaitable);
    timer.cancel();
    std::lock_guard lk(t_->mu);
    std::erase(t_->waiters, waiter);
  }

  std::shared_ptr<log_core> core_;
  std::shared_ptr<topic> t_;
  std::string group_;
  std::int64_t position_;  // next offset to deliver

  // Read cursor: the segment being read and the offset of the reader's next record.
  unique_fd fd_;
  std::unique_ptr<segment_reader> reader_;
  std::int64_t cursor_base_ = -1;
  std::int64_t next_ = -1;
};

}  // namespace
}  // namespace log_embedded

embedded_log::embedded_log(std::string dir, log_config cfg, embedded_log_options opts)
    : core_(std::make_shared<log_embedded::log_core>(std::move(dir), cfg, std::move(opts))) {}

embedded_log::~embedded_log() {
  stop();
}

void embedded_log::stop() {
  core_->stop();
}

embedded_log_stats embedded_log::stats() const {
  return core_->stats();
}

asio::awaitable<result<void>> embedded_log::append(std::string topic,
                                                   std::vector<log_record> records) {
  using namespace log_embedded;
  if (topic.empty()) co_return error(errc::invalid_input, "empty topic name");
  if (records.empty()) co_return ok;
  std::size_t bytes = 0;
  for (const auto& r : records) {
    const std::size_t size = frame_size(r.key.size(), r.value.size());
    if (size > max_frame_bytes) co_return error(errc::too_large, "log record over 64 MiB");
    bytes += size;
  }
  // A copy: the log object may be destroyed while this append waits (stop() completes it).
  std::shared_ptr<log_core> core = core_;
  append_request req{core->get_topic(topic), std::move(records), bytes, nullptr};
  append_outcome out =
      co_await asio::async_initiate<decltype(asio::use_awaitable), void(append_outcome)>(
          [&core, &req](auto handler) {
            auto ex = asio::get_associated_executor(handler);
            req.done = make_completion<append_outcome>(std::move(handler));
            // Woken after the work already queued on this loop: that work's appends join
            // this one's batch (see log_core::submit).
            if (core->submit(std::move(req))) asio::post(ex, [core] { core->wake(); });
          },
          asio::use_awaitable);
  if (out.code != errc::ok) co_return error(out.code, std::move(out.message));
  co_return ok;
}

std::unique_ptr<log_consumer> embedded_log::subscribe(std::string topic, std::string group) {
  if (topic.empty() || group.empty()) {
    throw std::invalid_argument("embedded_log::subscribe: empty topic or group name");
  }
  auto t = core_->get_topic(topic);
  t->open();
  const std::int64_t start = t->register_group(group);
  return std::make_unique<log_embedded::embedded_consumer>(core_, std::move(t), std::move(group),
                                                           start);
}

}  // namespace chat4all
