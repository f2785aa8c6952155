// `ws` mode (SPEC §4): N authenticated WebSocket connections opened at a set rate, M of them
// sending (action `send`, `send_batch` of --ws-batch messages, or POST /v1/messages) either
// open loop at a set total rate or closed loop (--ws-rate 0: at most --ws-window frames
// unacknowledged per sender, the most the server accepts); notification latency from the
// sender's wall-clock timestamp in the message content to receipt at every listening
// connection (--ws-listeners). Sender and receivers run in this process, on one machine and
// one clock; a receiver in another process on another machine would need synchronised clocks.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>

#include <deque>
#include <iostream>
#include <mutex>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "modes.hpp"
#include "schedule.hpp"

namespace chat4all::bench {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using namespace std::chrono;

namespace {

std::int64_t wall_ns() {
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

enum series_index { s_connect = 0, s_notify = 1, s_ack = 2 };

struct ws_thread_state {
  explicit ws_thread_state(id_kind k) : ids(k) {}
  recorder rec{{"connect", "notification", "send ack"}};
  id_generator ids;
  std::mt19937_64 rng{std::random_device{}()};
  std::vector<std::pair<std::int64_t, id128>> accepted;
  steady::time_point last_ack{};  // of an accepted message
  std::uint64_t notifications = 0;
  std::uint64_t duplicate_notifications = 0;
  std::uint64_t clock_anomalies = 0;
};

// A send_batch frame waiting for its batch.accepted (a connection's frames are answered in
// the order they were sent).
struct pending_batch {
  steady::time_point sent;  // intended time (open loop) or when it was queued (closed loop)
  std::vector<std::pair<std::int64_t, id128>> items;  // conversation, message id
};

struct ws_client {
  websocket::stream<beast::tcp_stream> ws;
  std::size_t user = 0;
  std::size_t thread = 0;
  bool open = false;
  bool established = false;  // got the greeting (kept after the connection closes)
  bool listening = true;     // false: unsubscribes from its conversations after the greeting
  int unsubscribing = 0;     // unsubscribe acknowledgements still awaited
  std::deque<std::string> outbox;
  bool writing = false;
  std::unordered_map<id128, steady::time_point, id128_hash> pending_acks;  // action send
  std::deque<pending_batch> pending_batches;                               // action send_batch
  std::unordered_set<id128, id128_hash> seen;
  asio::steady_timer wake;  // the sender waits here for an acknowledgement
  explicit ws_client(asio::any_io_executor ex) : ws(ex), wake(ex) {}
  std::size_t unacked_frames() const { return pending_acks.size() + pending_batches.size(); }
};

struct ws_run {
  const common_options& c;
  const ws_options& o;
  const fixture& fx;
  live_counters live;
  std::vector<std::unique_ptr<ws_thread_state>> threads;
  std::vector<std::unique_ptr<ws_client>> clients;
  steady::time_point start;  // of the connection ramp
  steady::time_point traffic_start;
  std::atomic<std::uint64_t> connected{0}, connect_failed{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> is_absent{false};
  std::string absent;  // why, when the server has no /ws (written once under absent_mu)
  std::mutex absent_mu;
  bool notifications = true;  // some connection listens (else throughput = accepted messages)

  std::size_t second_of(steady::time_point t, steady::time_point from) const {
    return t < from ? 0 : static_cast<std::size_t>(duration_cast<seconds>(t - from).count());
  }
};

// One writer at a time per stream: frames queue here and a single drain loop writes them.
asio::awaitable<void> drain(ws_client& cl) {
  if (cl.writing) co_return;
  cl.writing = true;
  while (!cl.outbox.empty() && cl.open) {
    auto frame = std::move(cl.outbox.front());
    cl.outbox.pop_front();
    cl.ws.text(true);
    auto [ec, n] =
        co_await cl.ws.async_write(asio::buffer(frame), asio::as_tuple(asio::use_awaitable));
    if (ec) break;
  }
  cl.writing = false;
}

void send_frame(ws_client& cl, std::string frame) {
  cl.outbox.push_back(std::move(frame));
  if (!cl.writing) asio::co_spawn(cl.ws.get_executor(), drain(cl), asio::detached);
}

void on_frame(ws_run& run, ws_client& cl, std::string_view text) {
  auto& ts = *run.threads[cl.thread];
  const auto recv_wall = wall_ns();
  const auto now = steady::now();
  boost::system::error_code ec;
  // The frame's values live in a stack block (spilling to the heap for large frames).
  unsigned char parse_buf[8192];
  json::monotonic_resource mr(parse_buf, sizeof parse_buf);
  auto v = json::parse(text, ec, &mr);
  if (ec || !v.is_object()) {
    ts.rec.error(run.second_of(now, run.traffic_start), "ws_bad_frame");
    return;
  }
  const auto& o = v.as_object();
  const auto* type = o.if_contains("type");
  if (!type || !type->is_string()) return;
  const auto t = std::string_view(type->as_string());
  if (t == "message.created") {
    const auto* m = o.if_contains("message");
    const auto& mo = m && m->is_object() ? m->as_object() : o;
    const auto* payload = mo.if_contains("payload");
    const auto* idv = mo.if_contains("message_id");
    if (!payload || !payload->is_object() || !idv || !idv->is_string()) return;
    const auto* content = payload->as_object().if_contains("content");
    if (!content || !content->is_string()) return;
    const auto sent = content_timestamp(content->as_string());
    auto id = id128::parse(idv->as_string());
    if (sent < 0 || !id) return;  // not a message of this run
    if (!cl.seen.insert(*id).second) {
      ++ts.duplicate_notifications;
      return;
    }
    ++ts.notifications;
    if (run.notifications) ++run.live.units;
    const auto sec = run.second_of(now, run.traffic_start);
    if (recv_wall < sent) {
      ++ts.clock_anomalies;  // the wall clock stepped back: count, record as 0
      ts.rec.record(s_notify, sec, 0);
    } else {
      ts.rec.record(s_notify, sec, static_cast<std::uint64_t>(recv_wall - sent));
    }
    if (run.notifications) ts.rec.add_throughput(sec, 1);
  } else if (t == "batch.accepted" ||
             (t == "error" && o.if_contains("action") && o.at("action") == "send_batch")) {
    if (cl.pending_batches.empty()) return;
    auto pb = std::move(cl.pending_batches.front());
    cl.pending_batches.pop_front();
    cl.wake.cancel();
    const auto sec = run.second_of(now, run.traffic_start);
    run.live.inflight -= static_cast<std::int64_t>(pb.items.size());
    const json::array* results = nullptr;
    if (const auto* r = o.if_contains("results"); r && r->is_array()) results = &r->as_array();
    if (!results) {
      std::string code = "ws_send_batch_error";
      if (auto* cd = o.if_contains("code"); cd && cd->is_string())
        code += ":" + std::string(cd->as_string());
      ts.rec.error(sec, code, pb.items.size());
      run.live.errors += pb.items.size();
      return;
    }
    ts.rec.record(s_ack, sec,
                  static_cast<std::uint64_t>(duration_cast<nanoseconds>(now - pb.sent).count()));
    std::uint64_t ok = 0;
    for (std::size_t k = 0; k < pb.items.size(); ++k) {
      const json::object* item = nullptr;
      if (k < results->size() && (*results)[k].is_object()) item = &(*results)[k].as_object();
      const auto* st = item ? item->if_contains("status") : nullptr;
      if (st && *st == "accepted") {
        ts.accepted.push_back(pb.items[k]);
        ++ok;
        continue;
      }
      std::string code = "ws_send_error";
      if (const auto* e = item ? item->if_contains("error") : nullptr; e && e->is_object())
        if (const auto* cd = e->as_object().if_contains("code"); cd && cd->is_string())
          code += ":" + std::string(cd->as_string());
      ts.rec.error(sec, code);
      ++run.live.errors;
    }
    if (ok) ts.last_ack = now;
    if (!run.notifications) {
      run.live.units += ok;
      ts.rec.add_throughput(sec, ok);
    }
  } else if (t == "message.accepted" || t == "error") {
    const auto* idv = o.if_contains("message_id");
    if (!idv || !idv->is_string()) {
      if (t == "error") ts.rec.error(run.second_of(now, run.traffic_start), "ws_error");
      return;
    }
    auto id = id128::parse(idv->as_string());
    if (!id) return;
    auto it = cl.pending_acks.find(*id);
    if (it == cl.pending_acks.end()) return;
    const auto sec = run.second_of(now, run.traffic_start);
    --run.live.inflight;
    cl.wake.cancel();
    if (t == "message.accepted") {
      ts.rec.record(
          s_ack, sec,
          static_cast<std::uint64_t>(duration_cast<nanoseconds>(now - it->second).count()));
      const auto* conv = o.if_contains("conversation_id");
      if (conv && conv->is_number()) ts.accepted.emplace_back(conv->to_number<std::int64_t>(), *id);
      ts.last_ack = now;
      if (!run.notifications) {
        ++run.live.units;
        ts.rec.add_throughput(sec, 1);
      }
    } else {
      std::string code = "ws_send_error";
      if (auto* cd = o.if_contains("code"); cd && cd->is_string())
        code += ":" + std::string(cd->as_string());
      ts.rec.error(sec, code);
      ++run.live.errors;
    }
    cl.pending_acks.erase(it);
  } else if (t == "unsubscribed") {
    if (cl.unsubscribing > 0 && --cl.unsubscribing == 0) cl.wake.cancel();
  } else if (t == "ping") {
    send_frame(cl, R"({"action":"pong"})");
  }
}

// Connects at the ramp time of connection i, reads the greeting, then reads until closed.
asio::awaitable<void> client_loop(ws_run& run, std::size_t i) {
  auto& cl = *run.clients[i];
  auto& ts = *run.threads[cl.thread];
  auto tok = asio::as_tuple(asio::use_awaitable);
  asio::steady_timer timer(cl.ws.get_executor());
  const auto due =
      run.start +
      nanoseconds(static_cast<std::int64_t>(1e9 * static_cast<double>(i) / run.o.connect_rate));
  timer.expires_at(due);
  co_await timer.async_wait(tok);
  if (run.is_absent || run.stopping) co_return;
  const auto t0 = steady::now();
  auto& tcp = beast::get_lowest_layer(cl.ws);
  tcp.expires_after(run.c.request_timeout);
  auto fail = [&](const std::string& kind) {
    ts.rec.error(run.second_of(steady::now(), run.start), kind);
    ++run.connect_failed;
    ++run.live.errors;
  };
  auto [cec] = co_await tcp.async_connect(run.c.addr.endpoint, tok);
  if (cec) {
    fail("ws_connect");
    co_return;
  }
  websocket::response_type res;
  const std::string target = "/ws?token=" + run.fx.users[cl.user].token;
  auto [hec] =
      co_await cl.ws.async_handshake(res, run.c.addr.host + ":" + run.c.addr.port, target, tok);
  if (hec) {
    const int status = static_cast<int>(res.result_int());
    if (status == 404 || status == 405) {
      std::lock_guard lock(run.absent_mu);
      if (!run.is_absent)
        run.absent = "GET /ws is absent on this server (HTTP " + std::to_string(status) + ")";
      run.is_absent = true;
      co_return;
    }
    fail(status ? "ws_upgrade_http_" + std::to_string(status) : "ws_handshake");
    co_return;
  }
  tcp.expires_never();
  beast::flat_buffer buf;
  auto [rec, rn] = co_await cl.ws.async_read(buf, tok);
  if (rec) {
    fail("ws_no_greeting");
    co_return;
  }
  const auto greeting = beast::buffers_to_string(buf.data());
  buf.consume(buf.size());
  boost::system::error_code jec;
  auto gv = json::parse(greeting, jec);
  if (jec || !gv.is_object() || !gv.as_object().contains("type") ||
      gv.as_object().at("type") != "connected") {
    fail("ws_bad_greeting");
    co_return;
  }
  ts.rec.record(s_connect, run.second_of(t0, run.start),
                static_cast<std::uint64_t>(duration_cast<nanoseconds>(steady::now() - t0).count()));
  cl.open = true;
  cl.established = true;
  ++run.connected;
  if (!cl.listening) {
    // An ingest-only connection: it hears none of its conversations (its user channel stays).
    for (auto ci : run.fx.conversations_of[cl.user]) {
      ++cl.unsubscribing;
      send_frame(cl, R"({"action":"unsubscribe","conversation_id":)" +
                         std::to_string(run.fx.conversations[ci].id) + "}");
    }
  }
  std::string why = "ws_connection_lost";
  for (;;) {
    auto [ec, n] = co_await cl.ws.async_read(buf, tok);
    if (ec == websocket::error::closed) {
      why = "ws_closed_by_server_" + std::to_string(cl.ws.reason().code);
      break;
    }
    if (ec) break;
    on_frame(run, cl, std::string_view(static_cast<const char*>(buf.data().data()), buf.size()));
    buf.consume(buf.size());
  }
  if (!run.stopping) {
    ts.rec.error(run.second_of(steady::now(), run.traffic_start), why);
    ++run.live.errors;
  }
  cl.open = false;
  cl.wake.cancel();
}

// Queues one frame of the sender's: `send` of one message or `send_batch` of --ws-batch,
// each to one of the user's conversations at random. `sent`: where its latency counts from.
void send_messages(ws_run& run, ws_client& cl, ws_thread_state& ts, steady::time_point sent) {
  const auto& mine = run.fx.conversations_of[cl.user];
  const int n = std::max(1, run.o.batch);
  run.live.requests += static_cast<std::uint64_t>(n);
  run.live.inflight += n;
  if (n == 1) {
    const auto& conv = run.fx.conversations[mine[ts.rng() % mine.size()]];
    const auto id = ts.ids.next();
    const auto body = message_json(id, conv.id, message_content(wall_ns(), run.o.message_bytes));
    cl.pending_acks.emplace(id, sent);
    send_frame(cl, R"({"action":"send",)" + body.substr(1));
    return;
  }
  pending_batch pb{sent, {}};
  pb.items.reserve(static_cast<std::size_t>(n));
  std::string frame;
  frame.reserve(static_cast<std::size_t>(n) *
                (static_cast<std::size_t>(run.o.message_bytes) + 128));
  frame += R"({"action":"send_batch","messages":[)";
  const auto content = message_content(wall_ns(), run.o.message_bytes);
  for (int k = 0; k < n; ++k) {
    const auto& conv = run.fx.conversations[mine[ts.rng() % mine.size()]];
    const auto id = ts.ids.next();
    if (k) frame += ',';
    frame += message_json(id, conv.id, content);
    pb.items.emplace_back(conv.id, id);
  }
  frame += "]}";
  cl.pending_batches.push_back(std::move(pb));
  send_frame(cl, std::move(frame));
}

// Waits on the client's wake timer until `until` at the latest (an acknowledgement, the
// connection's end or an unsubscribe confirmation cancels it).
asio::awaitable<void> wait_wake(ws_client& cl, steady::time_point until) {
  cl.wake.expires_at(until);
  co_await cl.wake.async_wait(asio::as_tuple(asio::use_awaitable));
}

// One sender: open-loop at rate/senders, or closed loop (rate 0) with at most --ws-window
// frames unacknowledged; through its WebSocket or REST.
asio::awaitable<void> sender_loop(ws_run& run, std::size_t i, double rate) {
  auto& cl = *run.clients[i];
  auto& ts = *run.threads[cl.thread];
  asio::steady_timer timer(cl.ws.get_executor());
  const auto& mine = run.fx.conversations_of[cl.user];
  if (mine.empty()) co_return;
  const auto traffic_end = run.traffic_start + run.o.duration;
  timer.expires_at(run.traffic_start);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  // An ingest-only sender starts once it no longer listens (bounded by the traffic phase).
  while (cl.unsubscribing > 0 && cl.open && steady::now() < traffic_end)
    co_await wait_wake(cl, traffic_end);

  if (run.o.rate <= 0) {
    const auto window = static_cast<std::size_t>(std::max(1, run.o.window));
    while (cl.open && steady::now() < traffic_end) {
      if (cl.unacked_frames() >= window) {
        co_await wait_wake(cl, traffic_end);
        continue;
      }
      send_messages(run, cl, ts, steady::now());
    }
    co_return;
  }

  const int per_frame = std::max(1, run.o.batch);
  http_connection http(cl.ws.get_executor(), run.c.addr);
  open_loop_schedule sched(run.traffic_start, rate / per_frame, run.o.duration);
  while (auto slot = sched.claim()) {
    if (slot->due > steady::now()) {
      timer.expires_at(slot->due);
      co_await timer.async_wait(asio::use_awaitable);
    }
    if (!cl.open) break;
    if (!run.o.via_rest) {
      send_messages(run, cl, ts, slot->due);
      continue;
    }
    const auto& conv = run.fx.conversations[mine[ts.rng() % mine.size()]];
    const auto id = ts.ids.next();
    const auto body = message_json(id, conv.id, message_content(wall_ns(), run.o.message_bytes));
    ++run.live.requests;
    ++run.live.inflight;
    auto r = co_await http.request(boost::beast::http::verb::post, "/v1/messages", body,
                                   run.fx.users[cl.user].token, "application/json",
                                   run.c.request_timeout);
    --run.live.inflight;
    const auto now = steady::now();
    const auto sec = run.second_of(now, run.traffic_start);
    if (r.status == 202) {
      ts.rec.record(
          s_ack, sec,
          static_cast<std::uint64_t>(duration_cast<nanoseconds>(now - slot->due).count()));
      ts.accepted.emplace_back(conv.id, id);
      ts.last_ack = now;
      if (!run.notifications) {
        ++run.live.units;
        ts.rec.add_throughput(sec, 1);
      }
    } else {
      ts.rec.error(sec, r.kind());
      ++run.live.errors;
    }
  }
  http.close();
}

// One handshake before the run: 101 when /ws upgrades, the HTTP status otherwise, 0 when no
// HTTP answer came.
int probe_ws(const server_address& addr, const std::string& token) {
  asio::io_context io;
  int status = 0;
  auto probe = [&]() -> asio::awaitable<void> {
    websocket::stream<beast::tcp_stream> ws(io);
    auto tok = asio::as_tuple(asio::use_awaitable);
    beast::get_lowest_layer(ws).expires_after(seconds(10));
    auto [cec] = co_await beast::get_lowest_layer(ws).async_connect(addr.endpoint, tok);
    if (cec) co_return;
    websocket::response_type res;
    auto [hec] =
        co_await ws.async_handshake(res, addr.host + ":" + addr.port, "/ws?token=" + token, tok);
    status = hec ? static_cast<int>(res.result_int()) : 101;
    beast::get_lowest_layer(ws).close();
  };
  asio::co_spawn(io, probe, asio::detached);
  io.run();
  return status;
}

}  // namespace

phase_result run_ws(const common_options& c, const ws_options& o, const targets& t) {
  phase_result p;
  p.name = "ws";
  p.throughput_unit = "notifications/s";
  const int per_user = std::clamp(o.per_user, 1, 10);
  const int users = std::max(2, (o.connections + per_user - 1) / per_user);
  const bool closed_loop = o.rate <= 0;
  const char* listeners = o.listeners == ws_listeners::all      ? "all"
                          : o.listeners == ws_listeners::others ? "others"
                                                                : "none";
  p.parameters = {{"connections", o.connections},
                  {"connections_per_user", per_user},
                  {"users", users},
                  {"connect_rate_per_s", o.connect_rate},
                  {"senders", o.senders},
                  {"rate_msgs_per_s", o.rate},
                  {"loop", closed_loop ? "closed" : "open"},
                  {"messages_per_frame", o.batch},
                  {"window_frames", o.window},
                  {"listeners", listeners},
                  {"send_via", o.via_rest    ? "POST /v1/messages"
                               : o.batch > 1 ? "WebSocket action send_batch"
                                             : "WebSocket action send"},
                  {"duration_s", duration<double>(o.duration).count()},
                  {"message_ids", id_kind_name(o.message_ids)},
                  {"client_threads", c.threads},
                  {"clock",
                   "notification latency = receiver wall clock - sender wall clock "
                   "(same machine)"}};
  // Without a valid token a gateway answers 401; a server without one 404.
  if (const int st = probe_ws(c.addr, "probe"); st == 404 || st == 405) {
    p.status = "skipped";
    p.note = "GET /ws is absent on this server (HTTP " + std::to_string(st) + ")";
    return p;
  }
  auto pop = o.population;
  pop.users = users;
  pop.conversations = std::max(pop.conversations, users / 2);
  pop.tag = pop.tag + "w";
  std::cout << "[ws] creating " << pop.users << " users and " << pop.conversations
            << " conversations..." << std::endl;
  const auto fx = create_fixture(c.addr, pop);

  io_pool pool(c.threads);  // before `run`: the clients' sockets must die before their contexts
  ws_run run{c, o, fx, {}, {}, {}, {}, {}, {0}, {0}, {false}, {false}, {}, {}};
  for (int i = 0; i < pool.size(); ++i)
    run.threads.push_back(std::make_unique<ws_thread_state>(run.o.message_ids));
  for (int i = 0; i < o.connections; ++i) {
    const auto ti = static_cast<std::size_t>(i % pool.size());
    auto cl = std::make_unique<ws_client>(pool.context(ti).get_executor());
    cl->user = static_cast<std::size_t>(i / per_user);
    cl->thread = ti;
    run.clients.push_back(std::move(cl));
  }
  // Senders spread over the users that have a conversation: each such user's first
  // connection, then their second ones, and so on.
  std::vector<std::size_t> sender_clients;
  for (int round = 0; round < per_user && static_cast<int>(sender_clients.size()) < o.senders;
       ++round)
    for (std::size_t i = static_cast<std::size_t>(round); i < run.clients.size();
         i += static_cast<std::size_t>(per_user))
      if (!fx.conversations_of[run.clients[i]->user].empty() &&
          static_cast<int>(sender_clients.size()) < o.senders)
        sender_clients.push_back(i);
  const int senders = static_cast<int>(sender_clients.size());
  std::size_t listening = run.clients.size();
  if (o.listeners != ws_listeners::all) {
    for (auto i : sender_clients) run.clients[i]->listening = false;
    listening -= sender_clients.size();
    if (o.listeners == ws_listeners::none) {
      for (auto& cl : run.clients) cl->listening = false;
      listening = 0;
    }
  }
  run.notifications = listening > 0;
  if (!run.notifications) p.throughput_unit = "messages/s";
  const double ramp_s = o.connections / o.connect_rate;
  run.start = steady::now() + milliseconds(20);
  run.traffic_start = run.start + nanoseconds(static_cast<std::int64_t>(ramp_s * 1e9)) + seconds(1);
  p.started_unix_s = unix_now();
  for (std::size_t i = 0; i < run.clients.size(); ++i)
    asio::co_spawn(pool.context(run.clients[i]->thread), client_loop(run, i), asio::detached);
  for (auto i : sender_clients)
    asio::co_spawn(pool.context(run.clients[i]->thread), sender_loop(run, i, o.rate / senders),
                   asio::detached);
  pool.start();
  // Expected deliveries (after the run): every established connection of every member of the
  // conversation.
  auto expected_deliveries = [&] {
    std::unordered_map<std::int64_t, std::uint64_t> conns_of_conv;
    std::vector<std::uint64_t> open_of_user(fx.users.size(), 0);
    for (const auto& cl : run.clients)
      open_of_user[cl->user] += cl->established && cl->listening ? 1 : 0;
    for (const auto& cv : fx.conversations) {
      std::uint64_t n = 0;
      for (auto m : cv.members) n += open_of_user[m];
      conns_of_conv[cv.id] = n;
    }
    return conns_of_conv;
  };
  std::thread stopper([&] {
    const auto traffic_end = run.traffic_start + o.duration;
    std::this_thread::sleep_until(traffic_end);
    // Drain: wait for the last notifications (bounded).
    const auto drain_end = steady::now() + o.drain;
    std::uint64_t last = UINT64_MAX;
    while (steady::now() < drain_end) {
      std::this_thread::sleep_for(milliseconds(250));
      const auto now_units = run.live.units.load();
      if (now_units == last && run.live.inflight.load() <= 0) break;
      last = now_units;
    }
    run.stopping = true;
    for (std::size_t k = 0; k < run.clients.size(); ++k) {
      auto* cl = run.clients[k].get();
      asio::post(cl->ws.get_executor(), [cl] { beast::get_lowest_layer(cl->ws).close(); });
    }
    pool.join();
    run.live.done = true;
  });
  std::uint64_t connected_at_end = 0;
  watch_progress("ws", c, run.live, run.notifications ? "notif/s" : "msg/s", 1, [&] {
    connected_at_end = run.connected.load();
    return "  connected " + thousands(static_cast<double>(connected_at_end));
  });
  stopper.join();
  p.duration_s = duration<double>(steady::now() - run.start).count();
  if (run.is_absent) {
    p.status = "skipped";
    p.note = run.absent;
    return p;
  }

  verifier v;
  std::uint64_t notifications = 0, dup_notifications = 0, anomalies = 0, acked = 0;
  steady::time_point last_ack = run.traffic_start;
  for (auto& ts : run.threads) {
    p.data.merge(ts->rec);
    acked += ts->accepted.size();
    last_ack = std::max(last_ack, ts->last_ack);
    for (const auto& [conv, id] : ts->accepted) v.expect(conv, id);
    notifications += ts->notifications;
    dup_notifications += ts->duplicate_notifications;
    anomalies += ts->clock_anomalies;
  }
  // Every established connection should have received every message of its user's
  // conversations, including one the server closed early (that shows as missing deliveries).
  const auto conns = expected_deliveries();
  std::uint64_t expected = 0;
  for (auto& ts : run.threads)
    for (const auto& [conv, id] : ts->accepted) expected += conns.at(conv);
  std::cout << "[ws] verifying stored messages through the history endpoint..." << std::endl;
  const auto vr = verify_history(c.addr, fx, v, o.verify);

  const auto established = run.connected.load();
  const double delivery =
      expected ? static_cast<double>(notifications) / static_cast<double>(expected) : 0;
  const auto& nl = p.data.series[s_notify].total;
  const double p99 = static_cast<double>(nl.percentile(0.99)) / 1e6;
  const auto& al = p.data.series[s_ack].total;
  const double ack_p99 = static_cast<double>(al.percentile(0.99)) / 1e6;
  // Messages acknowledged as accepted per second of the traffic phase (until the last
  // acknowledgement when that came after its end).
  const double traffic_s = std::max(duration<double>(o.duration).count(),
                                    duration<double>(last_ack - run.traffic_start).count());
  const double msgs_per_s = static_cast<double>(acked) / traffic_s;
  p.summary = {{"connections_established", established},
               {"connections_failed", run.connect_failed.load()},
               {"messages_sent", run.live.requests.load()},
               {"messages_accepted", vr.expected},
               {"accepted_msgs_per_s", msgs_per_s},
               {"send_ack_p50_ms", static_cast<double>(al.percentile(0.5)) / 1e6},
               {"send_ack_p99_ms", ack_p99},
               {"notifications_expected", expected},
               {"notifications_received", notifications},
               {"duplicate_notifications", dup_notifications},
               {"clock_anomalies", anomalies},
               {"delivery_ratio", delivery},
               {"notification_p50_ms", static_cast<double>(nl.percentile(0.5)) / 1e6},
               {"notification_p99_ms", p99},
               {"verify",
                {{"expected", vr.expected},
                 {"found", vr.found},
                 {"lost", vr.lost},
                 {"duplicates", vr.duplicates},
                 {"order_violations", vr.order_violations},
                 {"gaps", vr.gaps}}}};
  p.check("connections established", ">=", t.min_success * o.connections,
          static_cast<double>(established), "connections");
  if (run.notifications) {
    p.check("notification p99", "<=", t.ws_p99_ms, p99, "ms");
    p.check("notifications delivered", ">=", t.min_delivery, delivery, "ratio");
  } else {
    p.summary["notifications"] =
        "not applicable: no connection listens (--ws-listeners " + std::string(listeners) + ")";
    p.note = "send path only: no connection listens, notification targets not applicable";
  }
  p.check("duplicate notifications", "==", 0, static_cast<double>(dup_notifications),
          "notifications");
  if (!o.via_rest) p.check("send ack p99 (durable accept)", "<=", t.api_p99_ms, ack_p99, "ms");
  if (closed_loop && t.msgs_per_s > 0)
    p.check("ingestion throughput", ">=", t.msgs_per_s, msgs_per_s, "msg/s");
  p.check("messages accepted", ">=", 1, static_cast<double>(vr.expected), "messages");
  p.check_stored_exactly_once(vr);
  p.finish();
  return p;
}

}  // namespace chat4all::bench
