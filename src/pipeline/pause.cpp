#include "pipeline/pause.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace chat4all {

task<bool> pause_unless_stopping(const std::atomic<bool>& stopping, std::chrono::milliseconds d) {
  using clk = std::chrono::steady_clock;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  const auto until = clk::now() + d;
  while (!stopping) {
    const auto left = until - clk::now();
    if (left <= clk::duration::zero()) co_return true;
    timer.expires_after(std::min<clk::duration>(left, std::chrono::milliseconds(100)));
    co_await timer.async_wait(boost::asio::use_awaitable);
  }
  co_return false;
}

}  // namespace chat4all
