// `api` mode: message ingestion over REST, single POSTs or batches, open- or closed-loop,
// followed by the zero-loss verification through the history endpoint.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <iostream>
#include <mutex>
#include <optional>
#include <random>

#include "modes.hpp"
#include "schedule.hpp"

namespace chat4all::bench {
namespace asio = boost::asio;
namespace json = boost::json;
using boost::beast::http::verb;
using namespace std::chrono;

std::string message_json(const id128& id, std::int64_t conversation, std::string_view content) {
  std::string s;
  s.reserve(content.size() + 128);
  s += R"({"message_id":")";
  s += id.str();
  s += R"(","conversation_id":)";
  s += std::to_string(conversation);
  s += R"(,"payload":{"type":"text","content":")";
  s += content;  // bench content is plain ASCII with no characters to escape
  s += R"("}})";
  return s;
}

std::string message_content(std::int64_t wall_ns, int bytes) {
  std::string s = "bench " + std::to_string(wall_ns) + ":";
  if (static_cast<int>(s.size()) < bytes) s.append(static_cast<std::size_t>(bytes) - s.size(), 'x');
  return s;
}

std::int64_t content_timestamp(std::string_view c) {
  if (!c.starts_with("bench ")) return -1;
  c.remove_prefix(6);
  auto colon = c.find(':');
  if (colon == std::string_view::npos || colon == 0) return -1;
  std::int64_t v = 0;
  for (char ch : c.substr(0, colon)) {
    if (ch < '0' || ch > '9') return -1;
    v = v * 10 + (ch - '0');
  }
  return v;
}

namespace {

struct thread_state {
  explicit thread_state(id_kind k) : ids(k) {}
  recorder rec{{"request"}};
  id_generator ids;
  std::mt19937_64 rng{std::random_device{}()};
  std::vector<std::pair<std::int64_t, id128>> accepted;
};

struct api_run {
  const common_options& c;
  const api_options& o;
  const fixture& fx;
  live_counters live;
  std::vector<std::unique_ptr<thread_state>> threads;
  std::optional<open_loop_schedule> schedule;
  steady::time_point start;
  steady::time_point end;
  std::vector<std::pair<std::size_t, std::size_t>> pairs;  // (conversation, member) to send as
  std::vector<std::size_t> batch_users;                    // users with a conversation
  std::string content;                                     // the same text in every message

  std::size_t second_of(steady::time_point t) const {
    return t < start ? 0 : static_cast<std::size_t>(duration_cast<seconds>(t - start).count());
  }
};

// Builds the next request body; fills `ids` with (conversation, id) of each message and
// returns the token to send it with.
const std::string& next_body(api_run& run, thread_state& ts, std::string& body,
                             std::vector<std::pair<std::int64_t, id128>>& ids) {
  ids.clear();
  const auto& content = run.content;
  if (!run.o.batch) {
    const auto& [ci, mi] = run.pairs[ts.rng() % run.pairs.size()];
    const auto& conv = run.fx.conversations[ci];
    auto id = ts.ids.next();
    ids.emplace_back(conv.id, id);
    body = message_json(id, conv.id, content);
    return run.fx.users[conv.members[mi]].token;
  }
  const auto u = run.batch_users[ts.rng() % run.batch_users.size()];
  const auto& mine = run.fx.conversations_of[u];
  body = R"({"messages":[)";
  for (int k = 0; k < run.o.batch_size; ++k) {
    const auto& conv = run.fx.conversations[mine[ts.rng() % mine.size()]];
    auto id = ts.ids.next();
    ids.emplace_back(conv.id, id);
    if (k) body += ',';
    body += message_json(id, conv.id, content);
  }
  body += "]}";
  return run.fx.users[u].token;
}

asio::awaitable<void> connection_loop(api_run& run, std::size_t thread_index) {
  auto ex = co_await asio::this_coro::executor;
  http_connection conn(ex, run.c.addr);
  auto& ts = *run.threads[thread_index];
  asio::steady_timer timer(ex);
  std::string body;
  std::vector<std::pair<std::int64_t, id128>> ids;
  const char* target = run.o.batch ? "/v1/messages:batch" : "/v1/messages";
  for (;;) {
    steady::time_point due;
    if (run.schedule) {
      auto slot = run.schedule->claim();
      if (!slot) break;
      due = slot->due;
      if (due > steady::now()) {
        timer.expires_at(due);
        co_await timer.async_wait(asio::use_awaitable);
      }
    } else {
      due = steady::now();
      if (due >= run.end) break;
    }
    const auto& token = next_body(run, ts, body, ids);
    ++run.live.inflight;
    auto r = co_await conn.request(verb::post, target, body, token, "application/json",
                                   run.c.request_timeout);
    --run.live.inflight;
    const auto done = steady::now();
    const auto sec = run.second_of(done);
    ++run.live.requests;
    if (r.status != 202) {
      ts.rec.error(sec, r.kind());
      ++run.live.errors;
      if (r.status == 0) {
        // Back off briefly so a refused connection does not spin.
        timer.expires_after(milliseconds(10));
        co_await timer.async_wait(asio::use_awaitable);
      }
      continue;
    }
    ts.rec.record(0, sec,
                  static_cast<std::uint64_t>(duration_cast<nanoseconds>(done - due).count()));
    std::uint64_t ok = 0;
    if (run.o.baseline) {
      ok = ids.size();  // a do-nothing server: any 202 counts, nothing is stored
    } else if (!run.o.batch) {
      ts.accepted.push_back(ids.front());
      ok = 1;
    } else {
      boost::system::error_code ec;
      auto v = json::parse(r.body, ec);
      const json::array* results = nullptr;
      if (!ec && v.is_object())
        if (auto* p = v.as_object().if_contains("results"); p && p->is_array())
          results = &p->as_array();
      if (!results || results->size() != ids.size()) {
        ts.rec.error(sec, "bad_batch_answer");
        ++run.live.errors;
        continue;
      }
      for (std::size_t k = 0; k < ids.size(); ++k) {
        const auto& item = (*results)[k].as_object();
        if (item.at("status").as_string() == "accepted") {
          ts.accepted.push_back(ids[k]);
          ++ok;
        } else {
          std::string code = "rejected";
          if (auto* e = item.if_contains("error"); e && e->is_object())
            if (auto* cd = e->as_object().if_contains("code"); cd && cd->is_string())
              code += ":" + std::string(cd->as_string());
          ts.rec.error(sec, code);
          ++run.live.errors;
        }
      }
    }
    ts.rec.add_throughput(sec, ok);
    run.live.units += ok;
  }
  conn.close();
}

// A do-nothing server has no users or conversations: made-up ids and tokens.
fixture baseline_fixture(const fixture_options& pop) {
  fixture fx;
  fx.users = {{1, "baseline_a", "baseline"}, {2, "baseline_b", "baseline"}};
  fx.conversations_of.resize(2);
  for (int i = 0; i < std::max(1, pop.conversations); ++i) {
    fx.conversations.push_back({i + 1, false, {0, 1}});
    fx.conversations_of[0].push_back(static_cast<std::size_t>(i));
    fx.conversations_of[1].push_back(static_cast<std::size_t>(i));
  }
  return fx;
}

}  // namespace

phase_result run_api(const common_options& c, const api_options& o, const targets& t) {
  phase_result p;
  p.name = o.batch ? "api-batch" : "api-single";
  p.parameters = {{"endpoint", o.batch ? "POST /v1/messages:batch" : "POST /v1/messages"},
                  {"batch_size", o.batch ? o.batch_size : 1},
                  {"loop", o.rate > 0 ? "open" : "closed"},
                  {"rate_msgs_per_s", o.rate},
                  {"connections", o.connections},
                  {"duration_s", duration<double>(o.duration).count()},
                  {"message_bytes", o.message_bytes},
                  {"message_ids", id_kind_name(o.message_ids)},
                  {"users", o.population.users},
                  {"conversations", o.population.conversations},
                  {"client_threads", c.threads},
                  {"baseline", o.baseline}};

  if (!o.baseline)
    std::cout << "[" << p.name << "] creating " << o.population.users << " users and "
              << o.population.conversations << " conversations..." << std::endl;
  auto pop = o.population;
  pop.tag += o.batch ? "b" : "s";  // usernames differ per phase
  const auto fx = o.baseline ? baseline_fixture(pop) : create_fixture(c.addr, pop);

  api_run run{c, o, fx, {}, {}, {}, {}, {}, {}, {}, {}};
  for (std::size_t ci = 0; ci < fx.conversations.size(); ++ci)
    for (std::size_t mi = 0; mi < fx.conversations[ci].members.size(); ++mi)
      run.pairs.emplace_back(ci, mi);
  for (std::size_t u = 0; u < fx.users.size(); ++u)
    if (!fx.conversations_of[u].empty()) run.batch_users.push_back(u);
  run.content = message_content(0, o.message_bytes);
  if (run.pairs.empty()) throw std::runtime_error("no conversations to send to");

  io_pool pool(c.threads);
  for (int i = 0; i < pool.size(); ++i)
    run.threads.push_back(std::make_unique<thread_state>(o.message_ids));
  run.start = steady::now() + milliseconds(50);
  run.end = run.start + o.duration;
  const int per_request = o.batch ? o.batch_size : 1;
  if (o.rate > 0) run.schedule.emplace(run.start, o.rate / per_request, o.duration);
  p.started_unix_s = unix_now();
  for (int k = 0; k < o.connections; ++k) {
    const auto ti = static_cast<std::size_t>(k % pool.size());
    asio::co_spawn(pool.context(ti), connection_loop(run, ti), [&run](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::cerr << "connection failed: " << ex.what() << std::endl;
      }
    });
  }
  pool.start();
  std::thread waiter([&] {
    pool.join();
    run.live.done = true;
  });
  watch_progress(p.name, c, run.live, "msg/s", 1);
  waiter.join();
  const auto elapsed = steady::now() - run.start;
  p.duration_s = duration<double>(elapsed).count();

  verifier v;
  for (auto& ts : run.threads) {
    p.data.merge(ts->rec);
    for (const auto& [conv, id] : ts->accepted) v.expect(conv, id);
  }
  verify_report vr;
  if (!o.baseline) {
    std::cout << "[" << p.name << "] verifying "
              << thousands(static_cast<double>(v.report().expected))
              << " accepted messages through the history endpoint..." << std::endl;
    vr = verify_history(c.addr, fx, v, o.verify);
  }

  const auto requests = run.live.requests.load();
  const auto accepted = run.live.units.load();
  const double run_s = duration<double>(o.duration).count();
  const double msgs_per_s = static_cast<double>(accepted) / run_s;
  const auto& lat = p.data.series[0].total;
  const double p99 = static_cast<double>(lat.percentile(0.99)) / 1e6;
  std::uint64_t failed_requests = 0;
  for (const auto& [k, n] : p.data.errors)
    if (k.rfind("rejected", 0) != 0 && k != "bad_batch_answer") failed_requests += n;
  const double ok_share =
      requests ? static_cast<double>(requests - failed_requests) / static_cast<double>(requests)
               : 0;
  p.summary = {{"requests", requests},
               {"requests_per_s", static_cast<double>(requests) / run_s},
               {"messages_accepted", accepted},
               {"messages_per_s", msgs_per_s},
               {"p50_ms", static_cast<double>(lat.percentile(0.5)) / 1e6},
               {"p99_ms", p99},
               {"p999_ms", static_cast<double>(lat.percentile(0.999)) / 1e6},
               {"max_ms", static_cast<double>(lat.max()) / 1e6},
               {"success_ratio", ok_share},
               {"verify",
                {{"conversations", vr.conversations},
                 {"expected", vr.expected},
                 {"found", vr.found},
                 {"lost", vr.lost},
                 {"duplicates", vr.duplicates},
                 {"order_violations", vr.order_violations},
                 {"gaps", vr.gaps},
                 {"unacknowledged_stored", vr.unacknowledged}}}};
  if (o.rate > 0) {
    p.check("kept up with the offered rate", ">=", 0.99 * o.rate, msgs_per_s, "msg/s");
  } else if (t.msgs_per_s > 0 && !o.baseline) {
    p.check("ingestion throughput", ">=", t.msgs_per_s, msgs_per_s, "msg/s");
  }
  p.check("p99 latency (from intended send time)", "<=", t.api_p99_ms, p99, "ms");
  p.check("requests answered 2xx", ">=", t.min_success, ok_share, "ratio");
  p.check("messages accepted", ">=", 1, static_cast<double>(accepted), "messages");
  if (o.baseline) {
    p.note = "baseline server: nothing stored, nothing verified";
    p.finish();
    return p;
  }
  p.check_stored_exactly_once(vr);
  p.finish();
  return p;
}

}  // namespace chat4all::bench
