#pragma once
// The layer between a connection's WebSocket stream and its TCP stream that lets the writer
// send many events in one socket write: while held (hold() .. release()), the bytes Beast
// writes (event frames, and any ping, pong or close frame that comes meanwhile) are
// appended to a buffer and their writes complete at once; release() writes the buffer, and
// what gets buffered while it does, to the socket. Otherwise writes go straight through.
//
// Beast lets one write of the WebSocket stream run at a time (pings and closes wait for the
// writer's frame and the reverse), so a straight write is never in flight while the buffer
// is written: a write that starts while release() runs is buffered too. Executor only.

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <string>
#include <utility>

namespace chat4all::ws {

class held_stream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  explicit held_stream(boost::beast::tcp_stream& s) : s_(s) {}

  executor_type get_executor() noexcept { return s_.get_executor(); }
  boost::beast::tcp_stream& next_layer() noexcept { return s_; }
  const boost::beast::tcp_stream& next_layer() const noexcept { return s_; }

  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return s_.async_read_some(buffers, std::forward<ReadToken>(token));
  }

  template <class ConstBufferSequence, class WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return boost::asio::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& b) {
          if (!holding_ && !releasing_) {
            s_.async_write_some(b, std::move(handler));
            return;
          }
          const auto n = boost::asio::buffer_size(b);
          const auto at = held_.size();
          held_.resize(at + n);
          boost::asio::buffer_copy(boost::asio::buffer(held_.data() + at, n), b);
          boost::asio::post(s_.get_executor(), boost::asio::append(std::move(handler),
                                                                   boost::system::error_code{}, n));
        },
        token, buffers);
  }

  // From now on, writes are buffered.
  void hold() noexcept { holding_ = true; }
  bool holding() const noexcept { return holding_; }
  // Writes everything buffered (and what is buffered meanwhile), then lets writes through.
  boost::asio::awaitable<boost::system::error_code> release() {
    holding_ = false;
    releasing_ = true;
    boost::system::error_code ec;
    while (!held_.empty()) {
      sending_.clear();
      std::swap(sending_, held_);
      auto [wec, n] = co_await boost::asio::async_write(
          s_, boost::asio::buffer(sending_), boost::asio::as_tuple(boost::asio::use_awaitable));
      if (wec) {
        ec = wec;
        held_.clear();
        break;
      }
    }
    releasing_ = false;
    // An idle connection keeps no large buffers.
    if (sending_.capacity() > 64 * 1024) std::string().swap(sending_);
    if (held_.capacity() > 64 * 1024) std::string().swap(held_);
    co_return ec;
  }

 private:
  boost::beast::tcp_stream& s_;
  bool holding_ = false;
  bool releasing_ = false;
  std::string held_;     // written while held or releasing, not yet sent
  std::string sending_;  // being written by release()
};

// WebSocket teardown (closing handshake done): the TCP stream's.
inline void teardown(boost::beast::role_type role, held_stream& s, boost::system::error_code& ec) {
  using boost::beast::teardown;
  teardown(role, s.next_layer(), ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, held_stream& s, TeardownHandler&& handler) {
  using boost::beast::async_teardown;
  async_teardown(role, s.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace chat4all::ws
