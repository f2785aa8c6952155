#pragma once
// A type-erased, move-only Asio completion handler completed from any thread (a librdkafka
// delivery-report thread, a consumer thread): the handler runs on its own associated
// executor (the awaiting coroutine's), which is kept busy (outstanding work) until then.
// The same idea as adapters/log/embedded/completion.hpp, kept separate so the two adapters
// do not depend on each other.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <memory>
#include <type_traits>
#include <utility>

namespace chat4all::log_kafka {

template <class Arg>
class completion {
 public:
  virtual ~completion() = default;
  // Posts the handler with `arg` to its executor. Call at most once.
  virtual void complete(Arg arg) = 0;
};

template <class Handler, class Arg>
class completion_for final : public completion<Arg> {
 public:
  explicit completion_for(Handler h)
      : work_(boost::asio::prefer(boost::asio::get_associated_executor(h),
                                  boost::asio::execution::outstanding_work.tracked)),
        handler_(std::move(h)) {}

  void complete(Arg arg) override {
    auto work = std::move(work_);
    boost::asio::post(work, [h = std::move(handler_), a = std::move(arg)]() mutable {
      std::move(h)(std::move(a));
    });
  }

 private:
  using work_executor = std::decay_t<decltype(boost::asio::prefer(
      boost::asio::get_associated_executor(std::declval<Handler&>()),
      boost::asio::execution::outstanding_work.tracked))>;
  work_executor work_;
  Handler handler_;
};

template <class Arg, class Handler>
std::unique_ptr<completion<Arg>> make_completion(Handler h) {
  return std::make_unique<completion_for<std::decay_t<Handler>, Arg>>(std::move(h));
}

}  // namespace chat4all::log_kafka
