#pragma once
// The realistic population a run talks as: users registered through the API (each with an
// access token) and 1:1 and group conversations between them, created up front. Also the
// zero-loss check that reads every conversation's history back through the API.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "verifier.hpp"

namespace chat4all::bench {

struct bench_user {
  std::int64_t id = 0;
  std::string name;
  std::string token;
};

struct bench_conversation {
  std::int64_t id = 0;
  bool group = false;
  std::vector<std::size_t> members;  // indices into fixture::users
};

struct fixture_options {
  int users = 8;
  int conversations = 8;
  double group_ratio = 0.25;  // share of conversations that are groups
  int group_size = 4;         // members per group (3..100)
  int concurrency = 8;        // parallel setup requests
  std::string tag;            // makes usernames unique per run
  std::string password = "bench-password-0123";
};

struct fixture {
  std::vector<bench_user> users;
  std::vector<bench_conversation> conversations;
  std::vector<std::vector<std::size_t>> conversations_of;  // per user index
};

// Registers the users, logs them in, creates the conversations. Throws std::runtime_error
// naming the request that failed.
fixture create_fixture(const server_address& addr, const fixture_options& opt);

// Runs `fn(connection, worker)` for worker = 0..workers-1 concurrently on a private io_context
// in the calling thread; rethrows the first exception.
void run_workers(const server_address& addr, int workers,
                 std::function<boost::asio::awaitable<void>(http_connection&, int)> fn);

struct verify_options {
  std::chrono::milliseconds timeout{60000};  // bounded wait for the asynchronous router
  int concurrency = 8;
  int page = 100;
};

// Pages through the history of every conversation the verifier knows (as a member) until
// every expected message is seen or the timeout passes, feeding `v`. Returns v.report().
verify_report verify_history(const server_address& addr, const fixture& fx, verifier& v,
                             const verify_options& opt);

}  // namespace chat4all::bench
