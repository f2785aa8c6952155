#pragma once
// byte_pipe: a bounded single-producer/single-consumer byte buffer between a coroutine (that
// must never block its I/O thread) and a worker thread running a blocking libcurl call (that
// may block). The coroutine side uses try_* and awaits wait_*; the worker side blocks in
// read_blocking/write_blocking on a condition variable. Either side can abandon the transfer;
// the worker calls finish() when its call returned. Memory: `capacity` bytes, fixed.
//
// Thread-safety: one coroutine side and one worker side at a time; every member is safe to
// call concurrently from those two. At most one coroutine waits at a time.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace chat4all::s3 {

class byte_pipe {
 public:
  explicit byte_pipe(std::size_t capacity) : ring_(capacity) {}

  // ---- coroutine side: never blocks ----
  // Bytes accepted (0 when full, abandoned or finished).
  std::size_t try_write(const char* data, std::size_t n) {
    std::lock_guard lk(m_);
    if (abandoned_ || finished_) return 0;
    const std::size_t k = put_locked(data, n);
    if (k > 0) cv_.notify_all();
    return k;
  }
  std::size_t try_read(char* data, std::size_t n) {
    std::lock_guard lk(m_);
    const std::size_t k = take_locked(data, n);
    if (k > 0) cv_.notify_all();
    return k;
  }
  // The writer (coroutine) is done: the worker reads the end after the buffered bytes.
  void close_write() {
    std::lock_guard lk(m_);
    write_closed_ = true;
    cv_.notify_all();
  }
  // The transfer is given up: blocking calls return at once (abort).
  void abandon() {
    std::function<void()> w;
    {
      std::lock_guard lk(m_);
      abandoned_ = true;
      w = std::move(waker_);
      waker_ = nullptr;
      cv_.notify_all();
    }
    if (w) w();
  }
  bool finished() const {
    std::lock_guard lk(m_);
    return finished_;
  }
  bool abandoned() const {
    std::lock_guard lk(m_);
    return abandoned_;
  }
  enum class until { room, data, finished };
  // Resumes (on the awaiting coroutine's executor) once the condition holds, or the transfer
  // ended (abandoned or finished).
  boost::asio::awaitable<void> wait(until what) {
    namespace asio = boost::asio;
    // A wake-up means "something changed" (the worker wakes whoever waits on any progress):
    // check again until the condition holds.
    while (!ready(what)) co_await wait_once(what);
  }

 private:
  bool ready(until what) const {
    std::lock_guard lk(m_);
    return ready_locked(what);
  }
  boost::asio::awaitable<void> wait_once(until what) {
    namespace asio = boost::asio;
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [](auto handler, byte_pipe* p, until w) {
          using handler_t = std::decay_t<decltype(handler)>;
          std::unique_lock lk(p->m_);
          if (p->ready_locked(w)) {
            lk.unlock();
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, std::move(handler));
            return;
          }
          auto h = std::make_shared<handler_t>(std::move(handler));
          p->waker_ = [h] {
            auto ex = asio::get_associated_executor(*h);
            asio::post(ex, [h]() mutable { std::move (*h)(); });
          };
        },
        asio::use_awaitable, this, what);
  }

 public:
  // ---- worker side: blocks ----
  // Up to n bytes; 0 at the end of the data; -1 when abandoned.
  std::ptrdiff_t read_blocking(char* data, std::size_t n) {
    std::function<void()> w;
    std::size_t k = 0;
    {
      std::unique_lock lk(m_);
      cv_.wait(lk, [&] { return size_ > 0 || write_closed_ || abandoned_; });
      if (abandoned_) return -1;
      k = take_locked(data, n);
      if (k > 0) w = take_waker_locked();
    }
    if (w) w();
    return static_cast<std::ptrdiff_t>(k);
  }
  // Writes all n bytes, waiting for room; false when abandoned.
  bool write_blocking(const char* data, std::size_t n) {
    while (n > 0) {
      std::function<void()> w;
      {
        std::unique_lock lk(m_);
        cv_.wait(lk, [&] { return size_ < ring_.size() || abandoned_; });
        if (abandoned_) return false;
        const std::size_t k = put_locked(data, n);
        data += k;
        n -= k;
        w = take_waker_locked();
      }
      if (w) w();
    }
    return true;
  }
  void finish() {
    std::function<void()> w;
    {
      std::lock_guard lk(m_);
      finished_ = true;
      w = take_waker_locked();
      cv_.notify_all();
    }
    if (w) w();
  }

 private:
  bool ready_locked(until w) const {
    if (finished_ || abandoned_) return true;
    switch (w) {
      case until::room:
        return size_ < ring_.size();
      case until::data:
        return size_ > 0;
      case until::finished:
        return false;
    }
    return true;
  }
  std::function<void()> take_waker_locked() {
    std::function<void()> w = std::move(waker_);
    waker_ = nullptr;
    return w;
  }
  std::size_t put_locked(const char* data, std::size_t n) {
    std::size_t done = 0;
    while (done < n && size_ < ring_.size()) {
      const std::size_t tail = (head_ + size_) % ring_.size();
      const std::size_t span =
          std::min(n - done, std::min(ring_.size() - size_, ring_.size() - tail));
      std::copy(data + done, data + done + span, ring_.data() + tail);
      size_ += span;
      done += span;
    }
    return done;
  }
  std::size_t take_locked(char* data, std::size_t n) {
    std::size_t done = 0;
    while (done < n && size_ > 0) {
      const std::size_t span = std::min(n - done, std::min(size_, ring_.size() - head_));
      std::copy(ring_.data() + head_, ring_.data() + head_ + span, data + done);
      head_ = (head_ + span) % ring_.size();
      size_ -= span;
      done += span;
    }
    return done;
  }

  mutable std::mutex m_;
  std::condition_variable cv_;
  std::vector<char> ring_;
  std::size_t head_ = 0, size_ = 0;
  bool write_closed_ = false, abandoned_ = false, finished_ = false;
  std::function<void()> waker_;  // the waiting coroutine's resumption, if any
};

}  // namespace chat4all::s3
