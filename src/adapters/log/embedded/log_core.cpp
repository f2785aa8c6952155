#include "adapters/log/embedded/log_core.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <system_error>

#include "adapters/log/embedded/record_format.hpp"
#include "core/thread_name.hpp"

namespace chat4all::log_embedded {
namespace fs = std::filesystem;

namespace {
// The writer takes at most this many framed bytes per batch (besides max_batch_records), so
// one batch's buffer stays small.
constexpr std::size_t max_batch_bytes = 16 * 1024 * 1024;
// An idle writer looks at its queue this often on its own, so an append whose promised
// wake() is late (its event loop busy) or never comes (the loop stopped) is not stranded.
constexpr std::chrono::milliseconds idle_poll{5};
// After this long without appends it stops polling and sleeps until submit() wakes it.
constexpr std::chrono::seconds deep_sleep_after{1};

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}
}  // namespace

// The part of a batch that goes to one topic.
struct log_core::topic_work {
  topic* t = nullptr;
  std::vector<append_request*> reqs;
  std::vector<unique_fd> rolled;  // full segments written in this batch, to sync and close
  bool wrote = false;
  std::string err;
};

log_core::log_core(fs::path dir, log_config cfg, embedded_log_options opts)
    : dir_(std::move(dir)),
      cfg_(cfg),
      opts_(std::move(opts)),
      max_queued_records_(opts_.max_queued_records != 0
                              ? opts_.max_queued_records
                              : 4 * std::max<std::size_t>(cfg_.max_batch_records, 1)),
      max_queued_bytes_(std::max<std::size_t>(opts_.max_queued_bytes, 1)) {
  fs::create_directories(dir_);
  writer_ = std::thread([this] {
    name_this_thread("c4a-log-writer");
    run_writer();
  });
}

log_core::~log_core() {
  stop();
}

std::shared_ptr<topic> log_core::get_topic(const std::string& name) {
  std::lock_guard lk(topics_mu_);
  auto& t = topics_[name];
  if (!t) t = std::make_shared<topic>(dir_ / encode_name(name), cfg_.fsync);
  return t;
}

bool log_core::fits_locked(const append_request& r) const {
  // An oversized append is admitted alone, into an empty queue; it would never fit otherwise.
  return queue_.empty() || (queued_records_ + r.records.size() <= max_queued_records_ &&
                            queued_bytes_ + r.bytes <= max_queued_bytes_);
}

bool log_core::submit(append_request r) {
  std::unique_lock lk(mu_);
  if (stopping_) {
    lk.unlock();
    r.done->complete({errc::unavailable, "log stopped"});
    return false;
  }
  // FIFO: once anything is parked, newcomers park behind it.
  if (!parked_.empty() || !fits_locked(r)) {
    parked_.push_back(std::move(r));
    return false;  // the writer admits it when it takes the queue ahead of it
  }
  queued_records_ += r.records.size();
  queued_bytes_ += r.bytes;
  queue_.push_back(std::move(r));
  if (writer_asleep_) {  // idle for long: no poll would find this append, wake it now
    lk.unlock();
    cv_.notify_one();
    return false;
  }
  if (wake_promised_) return false;
  wake_promised_ = true;
  return true;
}

void log_core::wake() {
  {
    std::lock_guard lk(mu_);
    wake_promised_ = false;
  }
  cv_.notify_one();
}

void log_core::admit_parked_locked() {
  while (!parked_.empty() && fits_locked(parked_.front())) {
    queued_records_ += parked_.front().records.size();
    queued_bytes_ += parked_.front().bytes;
    queue_.push_back(std::move(parked_.front()));
    parked_.pop_front();
  }
}

void log_core::stop() {
  std::deque<append_request> queued, parked;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    stopped_.store(true, std::memory_order_release);
    queued.swap(queue_);
    parked.swap(parked_);
    queued_records_ = queued_bytes_ = 0;
  }
  cv_.notify_all();
  for (auto& r : queued) r.done->complete({errc::unavailable, "log stopped"});
  for (auto& r : parked) r.done->complete({errc::unavailable, "log stopped"});
  std::vector<std::shared_ptr<topic>> topics;
  {
    std::lock_guard lk(topics_mu_);
    for (auto& [name, t] : topics_) topics.push_back(t);
  }
  for (auto& t : topics) t->wake_all();
  std::call_once(join_once_, [this] {
    if (writer_.joinable()) writer_.join();
  });
}

embedded_log_stats log_core::stats() const {
  embedded_log_stats s;
  s.appends = appends_.load(std::memory_order_relaxed);
  s.records = records_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.fsyncs = fsyncs_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  return s;
}

void log_core::run_writer() {
  std::vector<append_request> batch;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      const auto idle_since = std::chrono::steady_clock::now();
      while (!ready()) {
        if (std::chrono::steady_clock::now() - idle_since < deep_sleep_after) {
          cv_.wait_for(lk, idle_poll);
        } else {
          writer_asleep_ = true;
          cv_.wait(lk);
          writer_asleep_ = false;
        }
      }
      if (stopping_) return;
      // What is queued now goes into this batch: a wake() still to come has nothing left to
      // announce, and the next submit() must promise a new one.
      wake_promised_ = false;
      std::size_t records = 0, bytes = 0;
      while (!queue_.empty()) {
        append_request& r = queue_.front();
        if (!batch.empty() && (records + r.records.size() > cfg_.max_batch_records ||
                               bytes + r.bytes > max_batch_bytes)) {
          break;
        }
        records += r.records.size();
        bytes += r.bytes;
        queued_records_ -= r.records.size();
        queued_bytes_ -= r.bytes;
        batch.push_back(std::move(r));
        queue_.pop_front();
      }
      admit_parked_locked();
    }
    write_batch(batch);
    batch.clear();
    // Keep the buffer for the next batch unless a huge one inflated it.
    if (buf_.capacity() > 2 * max_batch_bytes) std::string().swap(buf_);
  }
}

void log_core::write_batch(std::vector<append_request>& batch) {
  std::vector<topic_work> work;
  for (auto& r : batch) {
    auto it = std::find_if(work.begin(), work.end(),
                           [&](const topic_work& w) { return w.t == r.t.get(); });
    if (it == work.end()) {
      work.push_back(topic_work{r.t.get(), {}, {}, false, {}});
      it = std::prev(work.end());
    }
    it->reqs.push_back(&r);
  }
  for (auto& w : work) write_topic(w);
  if (opts_.before_sync) opts_.before_sync();
  for (auto& w : work) {
    if (w.err.empty()) sync_topic(w);
  }
  batches_.fetch_add(1, std::memory_order_relaxed);
  for (auto& w : work) {
    if (!w.err.empty()) {
      for (auto* r : w.reqs) r->done->complete({errc::unavailable, w.err});
      continue;
    }
    w.t->publish_durable(w.t->next_offset);
    std::uint64_t records = 0;
    for (auto* r : w.reqs) records += r->records.size();
    appends_.fetch_add(w.reqs.size(), std::memory_order_relaxed);
    records_.fetch_add(records, std::memory_order_relaxed);
    for (auto* r : w.reqs) r->done->complete({});
  }
}

void log_core::poison(topic_work& w, std::string why) {
  w.t->poisoned = why;
  w.err = std::move(why);
}

void log_core::write_topic(topic_work& w) {
  topic& t = *w.t;
  try {
    t.open();
  } catch (const std::exception& e) {
    w.err = e.what();  // not poisoned: opening is retried by the next append
    return;
  }
  if (!t.poisoned.empty()) {
    w.err = t.poisoned;
    return;
  }
  buf_.clear();
  for (auto* r : w.reqs) {
    for (const auto& rec : r->records) {
      const std::size_t size = frame_size(rec.key.size(), rec.value.size());
      const std::uint64_t filled = t.active_size + buf_.size();
      if (filled > 0 && filled + size > cfg_.segment_bytes) {
        if (!flush(w) || !roll(w)) return;
      }
      append_frame(buf_, t.next_offset++, rec.key, rec.value);
    }
  }
  flush(w);
}

bool log_core::flush(topic_work& w) {
  topic& t = *w.t;
  const char* p = buf_.data();
  std::size_t n = buf_.size();
  while (n > 0) {
    const ssize_t r = ::pwrite(t.active_fd.get(), p, n, static_cast<off_t>(t.active_size));
    if (r < 0) {
      if (errno == EINTR) continue;
      poison(w, errno_text("write " + t.segment_path(t.active_base).string()));
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
    t.active_size += static_cast<std::uint64_t>(r);
  }
  bytes_.fetch_add(buf_.size(), std::memory_order_relaxed);
  w.wrote = w.wrote || !buf_.empty();
  buf_.clear();
  return true;
}

bool log_core::roll(topic_work& w) {
  topic& t = *w.t;
  const fs::path path = t.segment_path(t.next_offset);
  // Any file at this name would have been the last segment when the topic was opened (and
  // is therefore behind us): truncating it is safe.
  unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    poison(w, errno_text("create " + path.string()));
    return false;
  }
  if (cfg_.fsync) {
    try {
      sync_dir(t.dir());
    } catch (const std::system_error& e) {
      poison(w, e.what());
      return false;
    }
  }
  w.rolled.push_back(std::move(t.active_fd));
  t.active_fd = std::move(fd);
  t.active_base = t.next_offset;
  t.active_size = 0;
  t.add_segment(t.active_base);
  return true;
}

void log_core::sync_topic(topic_work& w) {
  topic& t = *w.t;
  if (cfg_.fsync) {
    for (auto& fd : w.rolled) {
      fsyncs_.fetch_add(1, std::memory_order_relaxed);
      if (::fdatasync(fd.get()) != 0) {
        poison(w, errno_text("fdatasync " + t.dir().string()));
        return;
      }
    }
    if (w.wrote) {
      fsyncs_.fetch_add(1, std::memory_order_relaxed);
      if (::fdatasync(t.active_fd.get()) != 0) {
        poison(w, errno_text("fdatasync " + t.segment_path(t.active_base).string()));
        return;
      }
    }
  }
  w.rolled.clear();
}

}  // namespace chat4all::log_embedded
