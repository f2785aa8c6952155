#pragma once
// A type-erased, move-only completion handler taken from asio::async_initiate, completed
// from any thread (the embedded log writer, librdkafka threads): the handler runs on its own
// associated executor (the awaiting coroutine's), which is kept busy (outstanding work) until
// then, so an io_context::run() does not return while a coroutine waits.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <memory>
#include <utility>

namespace chat4all {

template <class... Args>
class completion {
 public:
  virtual ~completion() = default;
  // Posts the handler with `args` to its executor. Call at most once.
  virtual void complete(Args... args) = 0;
};

template <class Handler, class... Args>
class completion_for final : public completion<Args...> {
 public:
  explicit completion_for(Handler h)
      : work_(boost::asio::prefer(boost::asio::get_associated_executor(h),
                                  boost::asio::execution::outstanding_work.tracked)),
        handler_(std::move(h)) {}

  void complete(Args... args) override {
    auto work = std::move(work_);
    boost::asio::post(work, [h = std::move(handler_), ... a = std::move(args)]() mutable {
      std::move(h)(std::move(a)...);
    });
  }

 private:
  using work_executor = std::decay_t<decltype(boost::asio::prefer(
      boost::asio::get_associated_executor(std::declval<Handler&>()),
      boost::asio::execution::outstanding_work.tracked))>;
  work_executor work_;
  Handler handler_;
};

template <class... Args, class Handler>
std::unique_ptr<completion<Args...>> make_completion(Handler h) {
  return std::make_unique<completion_for<std::decay_t<Handler>, Args...>>(std::move(h));
}

}  // namespace chat4all
