#include "fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace chat4all::bench {
namespace asio = boost::asio;
namespace json = boost::json;
using boost::beast::http::verb;

namespace {

json::object parse_object(const http_reply& r, const std::string& what) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object()) throw std::runtime_error(what + ": answer is not a JSON object");
  return v.as_object();
}

[[noreturn]] void fail(const std::string& what, const http_reply& r) {
  throw std::runtime_error(what + " failed: " + r.kind() + " " + r.body.substr(0, 300));
}

}  // namespace

void run_workers(const server_address& addr, int workers,
                 std::function<asio::awaitable<void>(http_connection&, int)> fn) {
  asio::io_context io;
  std::exception_ptr first;
  for (int w = 0; w < workers; ++w) {
    auto conn = std::make_shared<http_connection>(io.get_executor(), addr);
    auto task = [conn, w, &fn]() -> asio::awaitable<void> { co_await fn(*conn, w); };
    asio::co_spawn(io, task, [&first](std::exception_ptr e) {
      if (e && !first) first = e;
    });
  }
  io.run();
  if (first) std::rethrow_exception(first);
}

fixture create_fixture(const server_address& addr, const fixture_options& opt) {
  if (opt.users < 2) throw std::invalid_argument("--users must be at least 2");
  if (opt.group_size < 3 || opt.group_size > 100)
    throw std::invalid_argument("--group-size must be in [3, 100]");
  fixture fx;
  fx.users.resize(static_cast<std::size_t>(opt.users));
  for (int i = 0; i < opt.users; ++i)
    fx.users[static_cast<std::size_t>(i)].name = "bench_" + opt.tag + "_" + std::to_string(i);

  std::atomic<std::size_t> next{0};
  auto user_task = [&](http_connection& c, int) -> asio::awaitable<void> {
    for (;;) {
      auto i = next.fetch_add(1);
      if (i >= fx.users.size()) co_return;
      auto& u = fx.users[i];
      const auto cred =
          json::serialize(json::object{{"username", u.name}, {"password", opt.password}});
      auto r = co_await c.request(verb::post, "/auth/register", cred, {});
      if (r.status != 201) fail("POST /auth/register " + u.name, r);
      u.id = parse_object(r, "register").at("user_id").to_number<std::int64_t>();
      auto t = co_await c.request(verb::post, "/auth/token", cred, {});
      if (t.status != 200) fail("POST /auth/token " + u.name, t);
      u.token = std::string(parse_object(t, "token").at("access_token").as_string());
    }
  };
  run_workers(addr, opt.concurrency, user_task);

  // Conversations: groups of group_size distinct users, and private pairs. Pairs walk
  // through distinct (a, b) combinations so that "already exists" answers are rare.
  std::mt19937_64 rng(12345);
  const auto n = fx.users.size();
  const int groups =
      std::min(opt.conversations, static_cast<int>(opt.conversations * opt.group_ratio + 0.5));
  const int group_size = std::min<int>(opt.group_size, static_cast<int>(n));
  std::vector<bench_conversation> wanted;
  std::set<std::pair<std::size_t, std::size_t>> pairs;
  for (int i = 0; i < opt.conversations; ++i) {
    bench_conversation c;
    if (i < groups && group_size >= 3) {
      c.group = true;
      std::vector<std::size_t> all(n);
      for (std::size_t k = 0; k < n; ++k) all[k] = k;
      std::shuffle(all.begin(), all.end(), rng);
      c.members.assign(all.begin(), all.begin() + group_size);
    } else {
      std::size_t a = 0, b = 0;
      for (int tries = 0; tries < 64; ++tries) {
        a = rng() % n;
        b = rng() % n;
        if (a == b) continue;
        if (pairs.insert({std::min(a, b), std::max(a, b)}).second) break;
      }
      if (a == b) b = (a + 1) % n;
      c.members = {a, b};
    }
    wanted.push_back(std::move(c));
  }
  next = 0;
  auto conv_task = [&](http_connection& c, int) -> asio::awaitable<void> {
    for (;;) {
      auto i = next.fetch_add(1);
      if (i >= wanted.size()) co_return;
      auto& w = wanted[i];
      json::array others;
      for (std::size_t k = 1; k < w.members.size(); ++k)
        others.push_back(fx.users[w.members[k]].id);
      json::object body{{"type", w.group ? "group" : "private"}, {"member_ids", std::move(others)}};
      if (w.group) body["name"] = "bench group " + std::to_string(i);
      const auto text = json::serialize(body);
      auto r =
          co_await c.request(verb::post, "/v1/conversations", text, fx.users[w.members[0]].token);
      if (r.status != 201 && r.status != 200) fail("POST /v1/conversations", r);
      w.id = parse_object(r, "conversation").at("id").to_number<std::int64_t>();
    }
  };
  run_workers(addr, opt.concurrency, conv_task);
  std::set<std::int64_t> seen;
  for (auto& w : wanted)
    if (seen.insert(w.id).second) fx.conversations.push_back(std::move(w));
  fx.conversations_of.resize(n);
  for (std::size_t i = 0; i < fx.conversations.size(); ++i)
    for (auto m : fx.conversations[i].members) fx.conversations_of[m].push_back(i);
  return fx;
}

verify_report verify_history(const server_address& addr, const fixture& fx, verifier& v,
                             const verify_options& opt) {
  std::unordered_map<std::int64_t, const bench_conversation*> by_id;
  for (const auto& c : fx.conversations) by_id[c.id] = &c;
  const auto deadline = std::chrono::steady_clock::now() + opt.timeout;
  for (;;) {
    std::vector<std::int64_t> pending;
    for (auto id : v.conversations())
      if (!v.complete(id)) pending.push_back(id);
    if (pending.empty()) break;
    std::atomic<std::size_t> next{0};
    std::mutex mu;  // guards the verifier: workers share one thread, but keep it explicit
    auto task = [&](http_connection& c, int) -> asio::awaitable<void> {
      for (;;) {
        auto i = next.fetch_add(1);
        if (i >= pending.size()) co_return;
        const auto conv = pending[i];
        auto it = by_id.find(conv);
        if (it == by_id.end()) continue;
        const auto& token = fx.users[it->second->members.front()].token;
        for (;;) {
          const auto target = history_target(conv, v.cursor(conv), opt.page);
          auto r = co_await c.request(verb::get, target, {}, token);
          if (r.status != 200) fail("GET " + target, r);
          auto o = parse_object(r, "history");
          const auto& msgs = o.at("messages").as_array();
          {
            std::lock_guard lock(mu);
            for (const auto& m : msgs) {
              const auto& mo = m.as_object();
              auto id = id128::parse(mo.at("message_id").as_string());
              if (!id) throw std::runtime_error("history: message_id is not a UUID");
              v.observe(conv, mo.at("seq").to_number<std::int64_t>(), *id);
            }
          }
          if (msgs.empty() || !o.at("has_more").as_bool()) break;
        }
      }
    };
    run_workers(addr, opt.concurrency, task);
    bool done = true;
    for (auto id : pending) done = done && v.complete(id);
    if (done || std::chrono::steady_clock::now() >= deadline) break;
    // The router stores asynchronously: wait a little before the next pass.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return v.report();
}

}  // namespace chat4all::bench
