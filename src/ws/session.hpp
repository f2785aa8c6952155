#pragma once
// Internals of the gateway (not a public header): the state shared by all connections of an
// instance (gateway_core) and one connection (session). See gateway.hpp for the contract.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/http_types.hpp"
#include "ws/gateway.hpp"
#include "ws/held_stream.hpp"
#include "ws/hub.hpp"
#include "ws/resume_seam.hpp"
#include "ws/send_queue.hpp"

namespace chat4all::ws {

class session;

// Close codes of SPEC §4 besides the standard ones.
inline constexpr std::uint16_t close_user_cap = 4008;
inline constexpr std::uint16_t close_try_again_later = 1013;
inline constexpr std::uint16_t close_going_away = 1001;

struct gateway_core {
  gateway_core(ws_config cfg, limits_config limits, gateway_services s);

  // Admits a connection under the per-user cap and records it for stop(). False: over the
  // cap (nothing recorded).
  bool admit(user_id user, std::uint64_t id, std::weak_ptr<session> s,
             boost::asio::any_io_executor ex);
  void release(user_id user, std::uint64_t id);
  std::string connection_id(std::uint64_t id) const;

  ws_config cfg;
  limits_config limits;
  gateway_services svc;
  hub channels;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> next_id{1};
  std::string instance_tag;

  obs::gauge& open;
  obs::counter& opened;
  obs::counter& closed_slow;
  obs::counter& closed_cap;
  obs::counter& closed_heartbeat;
  obs::counter& closed_shutdown;
  obs::counter& events_sent;
  obs::counter& dropped;
  obs::counter& bad_frames;
  obs::histogram& latency;

  struct entry {
    std::weak_ptr<session> s;
    boost::asio::any_io_executor ex;
  };
  mutable std::mutex mu;
  std::unordered_map<user_id, int> per_user;
  std::unordered_map<std::uint64_t, entry> sessions;
};

class session final : public listener, public std::enable_shared_from_this<session> {
 public:
  session(gateway_core& gw, boost::beast::tcp_stream& stream, boost::asio::any_io_executor ex,
          principal who, std::uint64_t id);
  ~session() override;

  // The whole life of the connection, from the handshake (answering `ctx.req`) to teardown.
  task<void> run(api::request_context& ctx);
  void on_event(const event_ptr& ev) override;
  // Starts the closing handshake with `code` (no-op when already closing). Executor only.
  void begin_close(std::uint16_t code, const char* reason);

 private:
  using ws_stream = boost::beast::websocket::stream<held_stream>;
  using seam = resume_seam<event_ptr>;
  struct helper_guard;

  task<void> writer(std::shared_ptr<session> self);
  task<void> heartbeat(std::shared_ptr<session> self);
  task<void> closer(std::shared_ptr<session> self, std::uint16_t code, std::string reason);
  task<void> join_conversation(std::shared_ptr<session> self, conversation_id conv);
  task<void> subscribe_all();
  task<void> join_now(conversation_id conv);
  task<void> read_loop();
  task<void> handle(std::string_view text);
  task<void> resume(conversation_id conv, seq_t after_seq);
  task<bool> wait_room(std::size_t bytes);
  void spawn(task<void> t);
  task<void> teardown();

  bool push(event_ptr ev);
  void push_reply(std::string payload);
  task<void> reply(std::string payload);
  // The `error` event answering `action` (no message id).
  task<void> reply_error(const error& e, std::string_view action);
  void overflow();
  void check_burst();
  void hard_close();
  bool subscribed(conversation_id c) const;
  bool add_subscription(conversation_id c);
  bool remove_subscription(conversation_id c);
  // The client's own choice (subscribe / resume, unsubscribe), remembered for late events.
  void choose_subscribed(conversation_id c, bool yes);
  bool dropped_by_client(conversation_id c) const;
  seam* seam_for(conversation_id c);
  timestamp_us now() const { return gw_.svc.clk.now_us(); }

  gateway_core& gw_;
  ws_stream ws_;
  boost::asio::any_io_executor ex_;
  principal who_;
  std::uint64_t id_;
  send_queue queue_;
  boost::asio::steady_timer wake_;            // wakes the writer (cancel)
  boost::asio::steady_timer beat_;            // heartbeat
  boost::asio::steady_timer room_;            // wakes a replay waiting for queue room (cancel)
  boost::asio::steady_timer close_deadline_;  // burst check, then the close deadline
  std::vector<conversation_id> subs_;         // sorted
  // Sorted: conversations the client unsubscribed from. A conversation.created that arrives
  // later (relayed through the outbox in cluster mode) must not subscribe them again.
  std::vector<conversation_id> dropped_;
  std::vector<std::pair<conversation_id, std::unique_ptr<seam>>> seams_;
  timestamp_us writing_since_ = 0;
  int helpers_ = 0;
  bool admitted_ = false;
  bool heard_ = true;
  bool closing_ = false;
  // The `connected` greeting is queued: until then the writer sends nothing, so that events
  // of the conversations joined before it (SPEC §4: the greeting comes first) wait behind it.
  bool greeted_ = false;
  bool done_ = false;
  bool hard_closed_ = false;
  bool waiting_room_ = false;
  bool burst_check_ = false;
};

}  // namespace chat4all::ws
