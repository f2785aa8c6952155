// `upload` mode (SPEC §5): N concurrent chunked uploads of S bytes (initiate, PUT every
// chunk, complete, then wait for COMPLETED); chunk latency and aggregate MB/s.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <iostream>
#include <random>

#include "modes.hpp"
#include "schedule.hpp"

namespace chat4all::bench {
namespace asio = boost::asio;
namespace json = boost::json;
using boost::beast::http::verb;
using namespace std::chrono;

namespace {

enum { s_chunk = 0, s_merge = 1 };

struct upload_run {
  const common_options& c;
  const upload_options& o;
  const fixture& fx;
  std::string chunk_bytes;  // one buffer shared by every chunk of every upload
  live_counters live;
  std::vector<std::unique_ptr<recorder>> recs;
  steady::time_point start;
  std::atomic<int> completed{0};
  std::size_t second_of(steady::time_point t) const {
    return t < start ? 0 : static_cast<std::size_t>(duration_cast<seconds>(t - start).count());
  }
};

std::optional<json::object> object_of(const http_reply& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.as_object();
}

asio::awaitable<void> one_upload(upload_run& run, std::size_t k, std::size_t thread) {
  auto ex = co_await asio::this_coro::executor;
  auto& rec = *run.recs[thread];
  http_connection conn(ex, run.c.addr);
  // Uploads are spread over the users (round robin), each in one of its conversations: the
  // server limits unfinished uploads per user (uploads.max_active_per_user, 10 by default).
  const std::size_t user = k % run.fx.users.size();
  const auto& mine = run.fx.conversations_of[user];
  const auto& conv = run.fx.conversations[mine.empty() ? 0 : mine.front()];
  const auto& token = run.fx.users[mine.empty() ? conv.members.front() : user].token;
  auto fail = [&](const std::string& kind) {
    rec.error(run.second_of(steady::now()), kind);
    ++run.live.errors;
  };
  const auto init =
      json::serialize(json::object{{"conversation_id", conv.id},
                                   {"filename", "bench-" + std::to_string(k) + ".bin"},
                                   {"file_size", run.o.size},
                                   {"mime_type", "application/octet-stream"},
                                   {"chunk_size", run.o.chunk}});
  auto r = co_await conn.request(verb::post, "/v1/files/initiate", init, token);
  ++run.live.requests;
  if (r.status != 201) {
    fail("initiate_" + r.kind());
    co_return;
  }
  auto io = object_of(r);
  if (!io || !io->contains("upload_id")) {
    fail("initiate_bad_answer");
    co_return;
  }
  const std::string upload_id(io->at("upload_id").as_string());
  const std::uint64_t chunk =
      io->contains("chunk_size") ? io->at("chunk_size").to_number<std::uint64_t>() : run.o.chunk;
  const std::uint64_t total = (run.o.size + chunk - 1) / chunk;
  for (std::uint64_t n = 1; n <= total; ++n) {
    const auto len = std::min<std::uint64_t>(chunk, run.o.size - (n - 1) * chunk);
    const std::string_view body(run.chunk_bytes.data(), static_cast<std::size_t>(len));
    const auto target = "/v1/files/" + upload_id + "/chunks/" + std::to_string(n);
    const auto t0 = steady::now();
    ++run.live.inflight;
    auto cr = co_await conn.request(verb::put, target, body, token, "application/octet-stream",
                                    std::max(run.c.request_timeout, milliseconds(120000)));
    --run.live.inflight;
    ++run.live.requests;
    const auto t1 = steady::now();
    if (cr.status != 200 && cr.status != 201 && cr.status != 204) {
      fail("chunk_" + cr.kind());
      co_return;
    }
    rec.record(s_chunk, run.second_of(t1),
               static_cast<std::uint64_t>(duration_cast<nanoseconds>(t1 - t0).count()));
    rec.add_throughput(run.second_of(t1), len);
    run.live.units += len;
  }
  const auto t_complete = steady::now();
  auto done =
      co_await conn.request(verb::post, "/v1/files/" + upload_id + "/complete", "{}", token);
  ++run.live.requests;
  if (done.status != 202 && done.status != 200) {
    fail("complete_" + done.kind());
    co_return;
  }
  asio::steady_timer timer(ex);
  const auto deadline = steady::now() + run.o.complete_timeout;
  for (;;) {
    auto st = co_await conn.request(verb::get, "/v1/files/" + upload_id + "/status", {}, token);
    auto so = st.status == 200 ? object_of(st) : std::nullopt;
    const std::string status = so && so->contains("status") && so->at("status").is_string()
                                   ? std::string(so->at("status").as_string())
                                   : "";
    if (status == "COMPLETED") {
      const auto t = steady::now();
      rec.record(s_merge, run.second_of(t),
                 static_cast<std::uint64_t>(duration_cast<nanoseconds>(t - t_complete).count()));
      ++run.completed;
      break;
    }
    if (status == "FAILED" || status == "EXPIRED") {
      fail("upload_" + status);
      break;
    }
    if (steady::now() > deadline) {
      fail("merge_timeout");
      break;
    }
    timer.expires_after(milliseconds(100));
    co_await timer.async_wait(asio::use_awaitable);
  }
  conn.close();
}

}  // namespace

phase_result run_upload(const common_options& c, const upload_options& o, const targets& t) {
  phase_result p;
  p.name = "upload";
  p.throughput_unit = "MB/s";
  p.throughput_scale = 1e-6;
  p.parameters = {{"uploads", o.uploads},
                  {"file_bytes", o.size},
                  {"chunk_bytes", o.chunk},
                  {"client_threads", c.threads}};
  fixture_options pop;
  // At most ~5 uploads per user (see one_upload), each user in a conversation or two.
  pop.users = std::max(2, static_cast<int>((o.uploads + 4) / 5));
  pop.conversations = pop.users == 2 ? 1 : pop.users * 2;
  pop.group_ratio = 0;
  pop.tag = c.tag + "u";
  const auto fx = create_fixture(c.addr, pop);

  // Is the upload API there? An unknown route answers 404 "no such endpoint"; the
  // conversation exists, so any other answer means it is.
  {
    http_reply probe;
    run_workers(c.addr, 1, [&](http_connection& conn, int) -> asio::awaitable<void> {
      probe = co_await conn.request(verb::post, "/v1/files/initiate", "{}",
                                    fx.users[fx.conversations.front().members.front()].token);
    });
    if (probe.status == 404 || probe.status == 405) {
      p.status = "skipped";
      p.note = "POST /v1/files/initiate is absent on this server (HTTP " +
               std::to_string(probe.status) + ")";
      return p;
    }
  }

  upload_run run{c, o, fx, {}, {}, {}, {}, {0}};
  run.chunk_bytes.resize(static_cast<std::size_t>(std::min(o.chunk, o.size)));
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i + 8 <= run.chunk_bytes.size(); i += 8) {
    const auto v = rng();
    std::memcpy(run.chunk_bytes.data() + i, &v, 8);
  }
  io_pool pool(c.threads);
  for (int i = 0; i < pool.size(); ++i)
    run.recs.push_back(
        std::make_unique<recorder>(std::vector<std::string>{"chunk", "complete to COMPLETED"}));
  run.start = steady::now();
  p.started_unix_s = unix_now();
  for (int k = 0; k < o.uploads; ++k) {
    const auto ti = static_cast<std::size_t>(k % pool.size());
    asio::co_spawn(pool.context(ti), one_upload(run, static_cast<std::size_t>(k), ti),
                   asio::detached);
  }
  pool.start();
  std::thread waiter([&] {
    pool.join();
    run.live.done = true;
  });
  watch_progress("upload", c, run.live, "MB/s", 1e-6);
  waiter.join();
  p.duration_s = duration<double>(steady::now() - run.start).count();
  for (auto& r : run.recs) p.data.merge(*r);

  const auto& ch = p.data.series[s_chunk].total;
  const double bytes = static_cast<double>(run.live.units.load());
  const double max_chunk_s = static_cast<double>(ch.max()) / 1e9;
  // SPEC §9: each 10 MB chunk < 5 s; other chunk sizes scale the bound.
  const double chunk_target = t.chunk_max_s * static_cast<double>(o.chunk) / (10.0 * 1000 * 1000);
  p.summary = {{"uploads_completed", run.completed.load()},
               {"bytes_uploaded", bytes},
               {"mb_per_s", bytes / 1e6 / p.duration_s},
               {"chunk_p50_ms", static_cast<double>(ch.percentile(0.5)) / 1e6},
               {"chunk_p99_ms", static_cast<double>(ch.percentile(0.99)) / 1e6},
               {"chunk_max_ms", static_cast<double>(ch.max()) / 1e6}};
  p.check("uploads completed", ">=", o.uploads, run.completed.load(), "uploads");
  p.check("slowest chunk", "<=", chunk_target, max_chunk_s, "s");
  p.finish();
  return p;
}

}  // namespace chat4all::bench
