#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>

#include "api/http_util.hpp"
#include "domain/events.hpp"
#include "obs/logging.hpp"
#include "ws/session.hpp"

namespace chat4all::ws {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_chunk = 16 * 1024;
constexpr std::size_t first_read = 256;
constexpr std::size_t max_held_bytes = 256 * 1024;  // one socket write of a burst at most
constexpr timestamp_us burst_window_us = 500'000;
constexpr auto handshake_timeout = std::chrono::seconds(10);
constexpr auto close_timeout = std::chrono::seconds(5);
constexpr const char* subprotocol = "chat4all.v1";

void log_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("websocket task failed", {{"error", ex.what()}});
  }
}

bool offers(std::string_view protocols, std::string_view want) {
  while (!protocols.empty()) {
    auto comma = protocols.find(',');
    auto item = protocols.substr(0, comma);
    protocols = comma == std::string_view::npos ? std::string_view() : protocols.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == want) return true;
  }
  return false;
}
// A sorted vector used as a small set: true when it changed.
bool sorted_insert(std::vector<conversation_id>& v, conversation_id c) {
  auto it = std::lower_bound(v.begin(), v.end(), c);
  if (it != v.end() && *it == c) return false;
  v.insert(it, c);
  return true;
}

bool sorted_erase(std::vector<conversation_id>& v, conversation_id c) {
  auto it = std::lower_bound(v.begin(), v.end(), c);
  if (it == v.end() || *it != c) return false;
  v.erase(it);
  return true;
}

}  // namespace

// Counts the helper coroutines (writer, heartbeat, closer, joins) so that teardown can wait
// for them: they use the stream, which belongs to the HTTP server's connection.
// spawn() counts a helper before it is even started (a helper that starts after teardown
// would use a stream that is gone); its guard, the first thing it runs, uncounts it at its end.
struct session::helper_guard {
  explicit helper_guard(session& s) : s_(s) {}
  ~helper_guard() { --s_.helpers_; }
  session& s_;
};

void session::spawn(task<void> t) {
  ++helpers_;
  asio::co_spawn(ex_, std::move(t), log_failure);
}

session::session(gateway_core& gw, beast::tcp_stream& stream, asio::any_io_executor ex,
                 principal who, std::uint64_t id)
    : gw_(gw),
      ws_(stream),
      ex_(ex),
      who_(std::move(who)),
      id_(id),
      queue_(gw.cfg.send_queue_max_events, gw.cfg.send_queue_max_bytes),
      wake_(ex),
      beat_(ex),
      room_(ex),
      close_deadline_(ex) {}

session::~session() = default;

task<void> session::run(api::request_context& ctx) {
  ws_.set_option(
      websocket::stream_base::timeout{handshake_timeout, websocket::stream_base::none(), false});
  // Frames over max_frame_bytes are read and discarded (error event, socket open); far
  // larger ones are a protocol abuse that Beast closes with 1009.
  ws_.read_message_max(std::max<std::size_t>(gw_.cfg.max_frame_bytes * 16, 16u << 20));
  const bool chosen = offers(ctx.req[beast::http::field::sec_websocket_protocol], subprotocol);
  ws_.set_option(websocket::stream_base::decorator(
      [chosen, rid = ctx.request_id](websocket::response_type& res) {
        res.set("X-Request-ID", rid);
        if (chosen) res.set(beast::http::field::sec_websocket_protocol, subprotocol);
      }));
  ws_.control_callback([this](websocket::frame_type, beast::string_view) { heard_ = true; });

  if (!websocket::is_upgrade(ctx.req)) {
    // A plain GET: answer with the SPEC error body rather than Beast's text one.
    auto res = api::error_response(ctx.req, beast::http::status::upgrade_required,
                                   "upgrade_required", "GET /ws needs a WebSocket upgrade");
    res.set(beast::http::field::upgrade, "websocket");
    api::finalize(res, ctx.req, ctx.request_id);
    res.keep_alive(false);
    auto& stream = beast::get_lowest_layer(ws_);
    stream.expires_after(handshake_timeout);
    auto [wec, wn] = co_await beast::http::async_write(stream, res, nothrow);
    co_return;
  }
  auto [aec] = co_await ws_.async_accept(ctx.req, nothrow);
  if (aec) co_return;  // Beast answered the bad upgrade request itself
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type&) {}));
  // The request is no longer needed: free it for the life of the connection.
  ctx.req = api::request{};
  ctx.query.clear();
  ctx.query.shrink_to_fit();

  gw_.opened.inc();
  gw_.open.inc();
  admitted_ = gw_.admit(who_.id, id_, weak_from_this(), ex_);
  spawn(writer(shared_from_this()));
  if (!admitted_) {
    gw_.closed_cap.inc();
    begin_close(close_user_cap, "too many connections for this user");
  } else if (gw_.stopping.load()) {
    begin_close(close_going_away, "server shutting down");
  } else {
    spawn(heartbeat(shared_from_this()));
    co_await subscribe_all();
    // Events of the channels just joined may be queued already: the greeting goes first.
    if (!closing_ && !done_)
      queue_.push_front(make_event(
          connected_event(who_.id, gw_.connection_id(id_), gw_.cfg.heartbeat_s, now()), {}));
  }
  greeted_ = true;
  wake_.cancel();
  co_await read_loop();
  co_await teardown();
}

task<void> session::subscribe_all() {
  // The user's channel first, then the list: a conversation created in between still
  // arrives as conversation.created.
  std::vector<std::string> mine{user_channel(who_.id)};
  co_await gw_.channels.join(std::move(mine), id_, weak_from_this(), ex_);
  std::vector<std::string> channels;
  const int page = gw_.limits.page_max;
  // The list is ordered by last activity, so a conversation that becomes active while the
  // pages are read can move to a page already read: read again (bounded) until every one of
  // the `total` conversations was seen.
  std::size_t seen = 0;
  for (int pass = 0; pass < 3; ++pass) {
    std::int64_t total = 0;
    bool failed = false;
    for (int offset = 0;;) {
      auto p = co_await gw_.svc.conversations.list(who_, page, offset);
      if (!p) {
        auto out = error_event(p.err(), now(), {}, "connect");
        push_reply(std::move(out));
        failed = true;
        break;
      }
      total = p->total;
      for (const auto& c : p->items)
        if (add_subscription(c.id)) channels.push_back(conversation_channel(c.id));
      offset += static_cast<int>(p->items.size());
      if (p->items.empty() || offset >= p->total) break;
    }
    seen = subs_.size();
    if (failed || static_cast<std::int64_t>(seen) >= total) break;
  }
  if (!channels.empty())
    co_await gw_.channels.join(std::move(channels), id_, weak_from_this(), ex_);
}

task<void> session::read_loop() {
  beast::flat_buffer in;
  for (;;) {
    bool oversize = false;
    // The first read of a message waits (idle) with a small buffer; the rest reads big.
    for (std::size_t limit = first_read;;) {
      auto [ec, n] = co_await ws_.async_read_some(in, limit, nothrow);
      limit = read_chunk;
      if (ec) co_return;
      if (in.size() > gw_.cfg.max_frame_bytes) {
        oversize = true;
        in.clear();
      }
      if (ws_.is_message_done()) break;
    }
    heard_ = true;
    if (oversize) {
      gw_.bad_frames.inc();
      push_reply(
          error_event(error{errc::too_large,
                            "frame exceeds " + std::to_string(gw_.cfg.max_frame_bytes) + " bytes",
                            "frame_too_large"},
                      now()));
    } else if (!ws_.got_text()) {
      gw_.bad_frames.inc();
      push_reply(error_event(
          error{errc::invalid_input, "binary frames are not supported", "invalid_json"}, now()));
    } else {
      co_await handle({static_cast<const char*>(in.data().data()), in.size()});
    }
    // An idle connection keeps no read buffer.
    in.clear();
    in.shrink_to_fit();
    if (done_) co_return;
  }
}

task<void> session::handle(std::string_view text) {
  std::string mid;
  auto a = parse_action(text, &mid, static_cast<std::size_t>(gw_.limits.batch_max_messages));
  if (!a) {
    gw_.bad_frames.inc();
    {
      auto out = error_event(a.err(), now(), mid);
      co_await reply(std::move(out));
    }
    co_return;
  }
  const char* name = action_name(a->kind);
  const conversation_id conv = a->conversation;
  // Membership, for the actions whose use case does not check it itself. For unsubscribe it
  // also bounds what the session remembers of the client's choices (dropped_) by the user's
  // conversations, not by the ids a client can send.
  if (a->kind == action_kind::typing || a->kind == action_kind::subscribe ||
      a->kind == action_kind::unsubscribe) {
    auto m = co_await gw_.svc.members.require_member(conv, who_.id);
    if (!m) {
      co_await reply_error(m.err(), name);
      co_return;
    }
  }
  switch (a->kind) {
    case action_kind::send: {
      const auto id_text = a->send.message_id.str();
      auto ack = accepted_event(a->send, now());
      auto r = co_await gw_.svc.messages.send(who_, std::move(a->send));
      {
        auto out = r ? std::move(ack) : error_event(r.err(), now(), id_text, name);
        co_await reply(std::move(out));
      }
      co_return;
    }
    case action_kind::send_batch: {
      // The same use case as POST /v1/messages:batch: answered once the durable ones are in
      // the log, one result per item.
      auto& b = a->batch;
      auto outcomes = co_await gw_.svc.messages.send_batch(who_, std::move(b.valid));
      b.settle(outcomes);
      {
        auto out = b.all_unavailable()
                       ? error_event(api::message_batch::unavailable_error(), now(), {}, name)
                       : batch_accepted_event(b, now());
        co_await reply(std::move(out));
      }
      co_return;
    }
    case action_kind::read: {
      auto r = co_await gw_.svc.conversations.mark_read(who_, conv, a->up_to_seq);
      if (!r) co_await reply_error(r.err(), name);
      co_return;
    }
    case action_kind::typing: {
      gw_.svc.fan.publish(conversation_channel(conv),
                          typing_event(conv, who_.id, a->typing, now()));
      co_return;
    }
    case action_kind::subscribe: {
      choose_subscribed(conv, true);
      if (add_subscription(conv)) co_await join_now(conv);
      {
        auto out = subscription_event(true, conv, now());
        co_await reply(std::move(out));
      }
      co_return;
    }
    case action_kind::unsubscribe: {
      choose_subscribed(conv, false);
      if (remove_subscription(conv)) {
        std::vector<std::string> gone{conversation_channel(conv)};
        gw_.channels.leave(std::move(gone), id_);
      }
      {
        auto out = subscription_event(false, conv, now());
        co_await reply(std::move(out));
      }
      co_return;
    }
    case action_kind::resume:
      co_await resume(conv, a->after_seq);
      co_return;
    case action_kind::pong:
      co_return;
  }
}

task<void> session::resume(conversation_id conv, seq_t after_seq) {
  auto m = co_await gw_.svc.members.require_member(conv, who_.id);
  if (!m) {
    co_await reply_error(m.err(), "resume");
    co_return;
  }
  // Live first, so that nothing published after the replay's last read can be missed.
  choose_subscribed(conv, true);
  if (add_subscription(conv)) co_await join_now(conv);
  seam* s = seam_for(conv);
  if (s) {
    s->restart(after_seq);
  } else {
    seams_.emplace_back(conv, std::make_unique<seam>(after_seq));
    s = seams_.back().second.get();
  }
  history_query q;
  q.conversation = conv;
  q.limit = gw_.limits.page_max;
  q.after_seq = after_seq;
  std::int64_t replayed = 0;
  for (;;) {
    auto p = co_await gw_.svc.conversations.history(who_, q);
    if (!p) {
      co_await reply_error(p.err(), "resume");
      break;
    }
    for (const auto& msg : p->messages) {
      event_info info;
      info.kind = event_kind::message_created;
      info.conversation = conv;
      info.seq = msg.seq;
      auto ev = make_event(event_message_created(msg, now()), info);
      // A replay waits for the reader instead of overflowing its queue.
      const bool room = co_await wait_room(ev->payload.size());
      if (!room) co_return;
      s->replayed(msg.seq);
      if (!push(std::move(ev))) co_return;
      ++replayed;
    }
    if (!p->has_more || p->messages.empty()) break;
    q.after_seq = p->messages.back().seq;
  }
  // The live events buffered meanwhile, in seq order, also at the reader's pace.
  for (;;) {
    auto pending = s->take();
    if (pending.empty()) break;
    for (auto& ev : pending) {
      const bool room = co_await wait_room(ev->payload.size());
      if (!room) co_return;
      if (!push(std::move(ev))) co_return;
    }
  }
  s->end();
  {
    auto out = resumed_event(conv, after_seq, s->last(), replayed, now());
    co_await reply(std::move(out));
  }
}

task<bool> session::wait_room(std::size_t bytes) {
  // An event larger than the byte bound is let through once the queue is empty.
  while (!closing_ && !done_ && !queue_.empty() && !queue_.fits(1, bytes)) {
    waiting_room_ = true;
    room_.expires_after(std::chrono::seconds(1));
    co_await room_.async_wait(nothrow);
    waiting_room_ = false;
  }
  co_return !closing_ && !done_;
}

void session::on_event(const event_ptr& ev) {
  if (closing_ || done_) return;
  const auto& i = ev->info;
  switch (i.kind) {
    case event_kind::conversation_created:
      if (i.conversation > 0 && !dropped_by_client(i.conversation) &&
          add_subscription(i.conversation))
        spawn(join_conversation(shared_from_this(), i.conversation));
      push(ev);
      return;
    case event_kind::typing:
      if (i.actor == who_.id) return;  // one's own typing is not news
      break;
    default:
      break;
  }
  if (i.conversation != 0 && !subscribed(i.conversation)) return;  // unsubscribed meanwhile
  if (i.kind == event_kind::message_created) {
    if (seam* s = seam_for(i.conversation)) {
      switch (s->on_live(i.seq, ev, queue_.max_events())) {
        case seam::verdict::pass:
          break;
        case seam::verdict::drop:
        case seam::verdict::buffered:
          return;
        case seam::verdict::overflow:
          overflow();
          return;
      }
    }
  }
  push(ev);
}

task<void> session::join_conversation(std::shared_ptr<session> self, conversation_id conv) {
  helper_guard g(*this);
  if (done_) co_return;
  co_await join_now(conv);
}

task<void> session::join_now(conversation_id conv) {
  std::vector<std::string> channels{conversation_channel(conv)};
  co_await gw_.channels.join(std::move(channels), id_, weak_from_this(), ex_);
}

bool session::push(event_ptr ev) {
  if (closing_ || done_) return false;
  // Draining: the writer is idle or its last write finished a moment ago (a burst that
  // arrived before its next turn), as opposed to a socket that stopped taking data.
  const bool draining = writing_since_ == 0 || now() - writing_since_ < burst_window_us;
  if (!queue_.push(std::move(ev), draining)) {
    overflow();
    return false;
  }
  if (queue_.over_bound() && !burst_check_) {
    // A burst past the bounds must drain: if the writer stops making progress, close.
    burst_check_ = true;
    close_deadline_.expires_after(std::chrono::microseconds(burst_window_us));
    close_deadline_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      if (ec) return;
      if (auto s = w.lock()) s->check_burst();
    });
  }
  wake_.cancel();
  return true;
}

task<void> session::reply_error(const error& e, std::string_view action) {
  auto out = error_event(e, now(), {}, action);
  co_await reply(std::move(out));
}

task<void> session::reply(std::string payload) {
  // An answer to the client's own action waits for room (the client is not read meanwhile).
  // Named results: g++ 12 miscompiles some co_await expressions used as conditions.
  const bool room = co_await wait_room(payload.size());
  if (room) push_reply(std::move(payload));
  co_return;
}

void session::push_reply(std::string payload) {
  push(make_event(std::move(payload), {}));
}

void session::check_burst() {
  burst_check_ = false;
  if (closing_ || done_ || !queue_.over_bound()) return;
  const bool stalled = writing_since_ != 0 && now() - writing_since_ >= burst_window_us;
  if (stalled) {
    overflow();
    return;
  }
  burst_check_ = true;
  close_deadline_.expires_after(std::chrono::microseconds(burst_window_us));
  close_deadline_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto s = w.lock()) s->check_burst();
  });
}

void session::overflow() {
  if (closing_ || done_) return;
  gw_.dropped.inc(queue_.clear() + 1);
  gw_.closed_slow.inc();
  begin_close(close_try_again_later, "send queue full: reconnect and resume");
}

void session::begin_close(std::uint16_t code, const char* reason) {
  if (closing_ || done_) return;
  closing_ = true;
  wake_.cancel();
  room_.cancel();
  spawn(closer(shared_from_this(), code, reason));
  // A peer that never answers the close (or never reads) is cut off.
  close_deadline_.expires_after(close_timeout);
  close_deadline_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto s = w.lock()) s->hard_close();
  });
}

task<void> session::closer(std::shared_ptr<session> self, std::uint16_t code, std::string reason) {
  helper_guard g(*this);
  if (done_) co_return;
  // Beast lets a close start while a write is in flight: the close frame follows it.
  websocket::close_reason why(code);
  why.reason = reason;
  auto [ec] = co_await ws_.async_close(why, nothrow);
  if (ec) hard_close();
}

void session::hard_close() {
  if (hard_closed_) return;
  hard_closed_ = true;
  auto& stream = beast::get_lowest_layer(ws_);
  boost::system::error_code ec;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  stream.cancel();  // the HTTP server closes the socket once run() returned
}

task<void> session::writer(std::shared_ptr<session> self) {
  helper_guard g(*this);
  auto& out = ws_.next_layer();
  std::vector<timestamp_us> accepted_at;
  while (!done_) {
    if (queue_.empty() || closing_ || !greeted_) {
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(nothrow);
      continue;
    }
    // Several events waiting (a burst): their frames leave in one socket write.
    const bool several = queue_.size() > 1;
    if (several) out.hold();
    writing_since_ = now();
    std::size_t held_bytes = 0;
    bool failed = false;
    accepted_at.clear();
    do {
      event_ptr ev = queue_.pop();
      if (waiting_room_) room_.cancel();
      auto [ec, n] = co_await ws_.async_write(asio::buffer(ev->payload), nothrow);
      if (ec) {
        failed = true;
        break;
      }
      held_bytes += ev->payload.size();
      accepted_at.push_back(ev->info.accepted_at);
    } while (several && !queue_.empty() && !closing_ && !done_ && held_bytes < max_held_bytes);
    if (several && !failed) {
      auto ec = co_await out.release();
      failed = static_cast<bool>(ec);
    }
    writing_since_ = 0;
    if (failed) {
      hard_close();
      break;
    }
    gw_.events_sent.inc(accepted_at.size());
    const auto t = now();
    for (auto at : accepted_at)
      if (at > 0) gw_.latency.observe(static_cast<double>(t - at) / 1e6);
  }
}

task<void> session::heartbeat(std::shared_ptr<session> self) {
  helper_guard g(*this);
  const auto interval = std::chrono::seconds(gw_.cfg.heartbeat_s);
  const timestamp_us stuck_us = 2LL * gw_.cfg.heartbeat_s * 1'000'000;
  int missed = 0;
  while (!done_ && !closing_) {
    beat_.expires_after(interval);
    co_await beat_.async_wait(nothrow);
    if (done_ || closing_) break;
    missed = heard_ ? 0 : missed + 1;
    heard_ = false;
    const bool stuck = writing_since_ != 0 && now() - writing_since_ > stuck_us;
    if (missed >= 2 || stuck) {
      gw_.closed_heartbeat.inc();
      hard_close();
      break;
    }
    if (queue_.fits(1, 64)) push_reply(ping_event(now()));
    auto [ec] = co_await ws_.async_ping({}, nothrow);
    if (ec) break;
  }
}

task<void> session::teardown() {
  done_ = true;
  wake_.cancel();
  beat_.cancel();
  room_.cancel();
  close_deadline_.cancel();
  // Pending writes, pings and closes end now; the helpers see done_ and return.
  beast::get_lowest_layer(ws_).cancel();
  asio::steady_timer t(ex_);
  for (int i = 0; helpers_ > 0 && i < 1000; ++i) {
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(nothrow);
    if (i % 20 == 19) beast::get_lowest_layer(ws_).cancel();
  }
  if (admitted_) {
    gw_.release(who_.id, id_);
    admitted_ = false;
    std::vector<std::string> channels{user_channel(who_.id)};
    for (auto c : subs_) channels.push_back(conversation_channel(c));
    gw_.channels.leave(std::move(channels), id_);
  }
  gw_.open.dec();
}

bool session::subscribed(conversation_id c) const {
  return std::binary_search(subs_.begin(), subs_.end(), c);
}

bool session::add_subscription(conversation_id c) {
  return sorted_insert(subs_, c);
}

bool session::remove_subscription(conversation_id c) {
  return sorted_erase(subs_, c);
}

void session::choose_subscribed(conversation_id c, bool yes) {
  if (yes)
    sorted_erase(dropped_, c);
  else
    sorted_insert(dropped_, c);
}

bool session::dropped_by_client(conversation_id c) const {
  return std::binary_search(dropped_.begin(), dropped_.end(), c);
}

session::seam* session::seam_for(conversation_id c) {
  for (auto& [id, s] : seams_)
    if (id == c) return s.get();
  return nullptr;
}

}  // namespace chat4all::ws
