#pragma once
// Drives one awaitable to completion on a private io_context (tests only). co_spawn with
// use_future needs a default-constructible result, which result<T> is not: hence the optional.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <optional>

namespace chat4all::testing {

template <class T>
boost::asio::awaitable<std::optional<T>> optional_of(boost::asio::awaitable<T> aw) {
  co_return co_await std::move(aw);
}

template <class T>
T run_sync(boost::asio::awaitable<T> aw) {
  boost::asio::io_context ioc;
  auto f = boost::asio::co_spawn(ioc, optional_of(std::move(aw)), boost::asio::use_future);
  ioc.run();
  return std::move(*f.get());
}

}  // namespace chat4all::testing
