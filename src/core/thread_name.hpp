// Names for the server's threads, so `top -H`, `perf` and `/proc/PID/task/*/comm` tell the
// I/O threads, the log writer and the SQLite writer apart (Linux keeps 15 characters).
#pragma once

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstddef>
#include <latch>
#include <memory>
#include <string>
#include <string_view>

namespace chat4all {

// Names the calling thread (cut to 15 characters). Never call it on the main thread: its
// name is the process name that `pgrep chat4all` and the scripts look for.
void name_this_thread(std::string_view name) noexcept;

// Names the n threads of pool: "<prefix>" when n is 1, else "<prefix>-0" .. "<prefix>-<n-1>".
// Each naming job waits until all n have started, so no thread takes two; call it right after
// creating the pool, before it has other work.
inline void name_pool_threads(boost::asio::thread_pool& pool, std::size_t n,
                              std::string_view prefix) {
  if (n == 0) return;
  // Shared: a job may still be inside arrive_and_wait when the caller's wait returns.
  auto all = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    std::string name(prefix);
    if (n > 1) name += "-" + std::to_string(i);
    boost::asio::post(pool, [all, name = std::move(name)] {
      name_this_thread(name);
      all->arrive_and_wait();
    });
  }
  all->wait();
}

}  // namespace chat4all
