#pragma once
// Runs blocking work (SQLite, argon2, file I/O) on a bounded worker pool and resumes the
// awaiting coroutine on its own executor. Nothing blocking ever runs on an I/O thread.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace chat4all {

namespace asio = boost::asio;

// auto work = [...]{ return blocking(); };
// auto r = co_await offload(pool_executor, std::move(work));
// Exceptions thrown by `fn` are rethrown in the awaiting coroutine.
// The executor and the function travel as initiation arguments, not lambda captures: g++ 12
// mishandles captures of the initiation (a strand executor lost a reference per call).
// Pass a named lambda: g++ 12 mis-relocates a capturing lambda that is a temporary inside a
// co_await expression (its captured std::string then points into the coroutine frame).
template <class Executor, class F>
asio::awaitable<std::invoke_result_t<F>> offload(Executor pool, F fn) {
  using R = std::invoke_result_t<F>;
  if constexpr (std::is_void_v<R>) {
    co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr)>(
        [](auto handler, Executor pool, F f) {
          asio::post(pool, [h = std::move(handler), f = std::move(f)]() mutable {
            std::exception_ptr ep;
            try {
              f();
            } catch (...) {
              ep = std::current_exception();
            }
            auto ex = asio::get_associated_executor(h);
            asio::post(ex, [h = std::move(h), ep]() mutable { std::move(h)(ep); });
          });
        },
        asio::use_awaitable, std::move(pool), std::move(fn));
  } else {
    auto out = co_await asio::async_initiate<decltype(asio::use_awaitable),
                                             void(std::exception_ptr, std::optional<R>)>(
        [](auto handler, Executor pool, F f) {
          asio::post(pool, [h = std::move(handler), f = std::move(f)]() mutable {
            std::exception_ptr ep;
            std::optional<R> r;
            try {
              r.emplace(f());
            } catch (...) {
              ep = std::current_exception();
            }
            auto ex = asio::get_associated_executor(h);
            asio::post(ex, [h = std::move(h), ep, r = std::move(r)]() mutable {
              std::move(h)(ep, std::move(r));
            });
          });
        },
        asio::use_awaitable, std::move(pool), std::move(fn));
    co_return std::move(*out);
  }
}

}  // namespace chat4all
