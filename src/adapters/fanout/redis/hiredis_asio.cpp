#include "adapters/fanout/redis/hiredis_asio.hpp"

#include <fcntl.h>
#include <hiredis/async.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <utility>

namespace chat4all::fanout_redis {
namespace {

namespace asio = boost::asio;
using wait_type = asio::posix::descriptor_base::wait_type;

class asio_watcher {
 public:
  asio_watcher(asio::io_context& io, redisAsyncContext* ac, int fd) : ac_(ac), sd_(io, fd) {}

  static bool attach(redisAsyncContext* ac, asio::io_context& io) {
    // F_DUPFD_CLOEXEC: a child process must not keep the Redis connection open.
    const int fd = ::fcntl(ac->c.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return false;
    std::shared_ptr<asio_watcher> w;
    try {
      w = std::make_shared<asio_watcher>(io, ac, fd);
    } catch (const boost::system::system_error&) {
      ::close(fd);
      return false;
    }
    w->self_ = w;  // released by cleanup()
    ac->ev.data = w.get();
    ac->ev.addRead = &add_read;
    ac->ev.delRead = &del_read;
    ac->ev.addWrite = &add_write;
    ac->ev.delWrite = &del_write;
    ac->ev.cleanup = &cleanup;
    return true;
  }

 private:
  struct direction {
    bool wanted = false;   // hiredis asked for this readiness
    bool waiting = false;  // an async_wait is pending
  };

  static asio_watcher* self(void* p) { return static_cast<asio_watcher*>(p); }
  static void add_read(void* p) { self(p)->want(true); }
  static void del_read(void* p) { self(p)->read_.wanted = false; }
  static void add_write(void* p) { self(p)->want(false); }
  static void del_write(void* p) { self(p)->write_.wanted = false; }

  static void cleanup(void* p) {
    // The context is being freed: forget it and cancel the pending waits. `keep` holds this
    // object until the end of this function; pending handlers hold it until they have run.
    std::shared_ptr<asio_watcher> keep = std::move(self(p)->self_);
    keep->ac_ = nullptr;
    keep->read_.wanted = keep->write_.wanted = false;
    boost::system::error_code ec;
    keep->sd_.close(ec);
  }

  // A pending wait that hiredis no longer wants (delRead/delWrite) is left to complete: its
  // handler sees `wanted` false and stops, unless hiredis asked again meanwhile.
  void want(bool read) {
    (read ? read_ : write_).wanted = true;
    arm(read);
  }

  void arm(bool read) {
    direction& dir = read ? read_ : write_;
    if (dir.waiting || !dir.wanted || ac_ == nullptr) return;
    dir.waiting = true;
    sd_.async_wait(
        read ? wait_type::wait_read : wait_type::wait_write,
        [self = self_, read](const boost::system::error_code& ec) { self->on_ready(read, ec); });
  }

  void on_ready(bool read, const boost::system::error_code& ec) {
    direction& dir = read ? read_ : write_;
    dir.waiting = false;
    if (ec || ac_ == nullptr || !dir.wanted) return;
    // May free the context (a disconnect): cleanup() then clears ac_ and arm() stops.
    if (read) {
      redisAsyncHandleRead(ac_);
    } else {
      redisAsyncHandleWrite(ac_);
    }
    arm(read);
  }

  redisAsyncContext* ac_;
  asio::posix::stream_descriptor sd_;
  direction read_, write_;
  std::shared_ptr<asio_watcher> self_;
};

}  // namespace

bool attach_to_asio(redisAsyncContext* ac, asio::io_context& io) {
  return asio_watcher::attach(ac, io);
}

}  // namespace chat4all::fanout_redis
