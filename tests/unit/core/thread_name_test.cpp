#include "core/thread_name.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace chat4all {
namespace {

std::string current_name() {
  char buf[32] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

TEST(thread_name, every_thread_of_a_pool_gets_its_own_name) {
  boost::asio::thread_pool pool(3);
  name_pool_threads(pool, 3, "c4a-test");
  std::mutex mu;
  std::set<std::string> seen;
  // Three jobs that wait for each other run on three different threads.
  std::latch together(3);
  for (int i = 0; i < 3; ++i)
    boost::asio::post(pool, [&] {
      together.arrive_and_wait();
      std::lock_guard lk(mu);
      seen.insert(current_name());
    });
  pool.join();
  EXPECT_EQ(seen, (std::set<std::string>{"c4a-test-0", "c4a-test-1", "c4a-test-2"}));
}

TEST(thread_name, a_single_thread_pool_has_no_suffix_and_long_names_are_cut_to_15) {
  boost::asio::thread_pool one(1);
  name_pool_threads(one, 1, "c4a-sql-writer");
  std::string got;
  boost::asio::post(one, [&] { got = current_name(); });
  one.join();
  EXPECT_EQ(got, "c4a-sql-writer");

  std::string cut;
  std::thread t([&] {
    name_this_thread("a-name-longer-than-fifteen");
    cut = current_name();
  });
  t.join();
  EXPECT_EQ(cut, "a-name-longer-t");
}

}  // namespace
}  // namespace chat4all
