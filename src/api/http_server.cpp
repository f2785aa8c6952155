#include "api/http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <atomic>
#include <list>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "api/http_util.hpp"
#include "api/route_table.hpp"
#include "core/thread_name.hpp"
#include "obs/logging.hpp"
#include "obs/metrics.hpp"

namespace chat4all::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

// Error codes as values: closed or reset connections are routine, not exceptional.
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// A connection as seen by drain()/stop(); touched only on its worker's thread.
struct conn_state {
  beast::tcp_stream* stream = nullptr;
  bool idle = false;  // waiting for the first byte of a request: safe to close on drain
  std::string out;    // a response's bytes (serialize_simple), its capacity kept between requests
};

// Responses up to this size are written from one buffer (serialize_simple); larger ones (history
// pages, documents) go through Beast's serializer without the extra copy.
constexpr std::size_t simple_write_max_body = 16 * 1024;

struct worker {
  // Declared before ioc: destroying ioc destroys suspended sessions, which unlink here.
  std::list<conn_state*> conns;
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  std::uint64_t rid_state = 0;
  std::thread thread;
};

struct route_stats {
  std::string name;
  std::array<std::atomic<obs::counter*>, 6> by_class{};  // index = status / 100
  obs::histogram* latency = nullptr;
  obs::counter* exceptions = nullptr;
};

void log_exception(std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error(what, {{"error", ex.what()}});
  } catch (...) {
    log::error(what, {{"error", "unknown exception"}});
  }
}

// The request body of a streaming route, read through the handler's buffers, and the
// optional streamed response.
class connection_stream_io final : public stream_io, public byte_sink {
 public:
  connection_stream_io(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                       http::request_parser<http::buffer_body>& parser, int timeout_s,
                       bool expect_continue)
      : stream_(stream),
        buffer_(buffer),
        parser_(parser),
        timeout_(std::chrono::seconds(timeout_s)),
        expect_continue_(expect_continue) {}

  std::optional<std::uint64_t> content_length() const override {
    auto cl = parser_.content_length();
    if (!cl) return std::nullopt;
    return static_cast<std::uint64_t>(*cl);
  }
  bool body_done() const override { return parser_.is_done(); }

  asio::awaitable<result<std::size_t>> read_some(std::span<char> buf) override {
    if (buf.empty()) co_return std::size_t{0};
    while (!parser_.is_done()) {
      if (expect_continue_) {
        expect_continue_ = false;
        http::response<http::empty_body> cont{http::status::continue_, 11};
        stream_.expires_after(timeout_);
        auto [cec, cn] = co_await http::async_write(stream_, cont, nothrow);
        if (cec) co_return error{errc::unavailable, "the client went away"};
      }
      auto& body = parser_.get().body();
      body.data = buf.data();
      body.size = buf.size();
      stream_.expires_after(timeout_);
      auto [ec, n] = co_await http::async_read_some(stream_, buffer_, parser_, nothrow);
      const std::size_t got = buf.size() - body.size;
      body.data = nullptr;
      body.size = 0;
      if (ec && ec != http::error::need_buffer) {
        if (ec == http::error::body_limit)
          co_return error{errc::too_large, "request body too large"};
        if (is_malformed(ec)) co_return error{errc::invalid_input, "malformed request body"};
        co_return error{errc::unavailable, "the client went away: " + ec.message()};
      }
      if (got > 0) co_return got;
    }
    co_return std::size_t{0};
  }

  asio::awaitable<result<byte_sink*>> begin_response(response head) override {
    http::response<http::empty_body> h{std::move(head.base())};
    responded_ = true;
    status_ = h.result_int();
    promised_ = 0;
    for (char c : h[http::field::content_length])
      if (c >= '0' && c <= '9') promised_ = promised_ * 10 + static_cast<std::uint64_t>(c - '0');
    stream_.expires_after(timeout_);
    http::response_serializer<http::empty_body> sr{h};
    auto [ec, n] = co_await http::async_write_header(stream_, sr, nothrow);
    if (ec) {
      failed_ = true;
      co_return error{errc::unavailable, "the client went away"};
    }
    co_return static_cast<byte_sink*>(this);
  }

  asio::awaitable<result<void>> write(std::string_view bytes) override {
    stream_.expires_after(timeout_);
    auto [ec, n] =
        co_await asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()), nothrow);
    if (ec) {
      failed_ = true;
      co_return error{errc::unavailable, "the client went away"};
    }
    written_ += bytes.size();
    co_return ok;
  }

  bool responded() const noexcept { return responded_; }
  // The response went out whole: its body had the promised Content-Length.
  bool complete() const noexcept { return !failed_ && written_ == promised_; }
  unsigned status() const noexcept { return status_; }

 private:
  beast::tcp_stream& stream_;
  beast::flat_buffer& buffer_;
  http::request_parser<http::buffer_body>& parser_;
  std::chrono::seconds timeout_;
  bool expect_continue_;
  bool responded_ = false;
  bool failed_ = false;
  unsigned status_ = 0;
  std::uint64_t promised_ = 0;
  std::uint64_t written_ = 0;
};

}  // namespace

struct http_server::impl {
  impl(server_config cfg, route_table& routes, authenticator auth, obs::metrics_registry& m)
      : cfg_(std::move(cfg)),
        routes_(routes),
        auth_(std::move(auth)),
        requests_(m.counter_family("chat4all_http_requests_total",
                                   "HTTP requests by route and status class", {"route", "status"})),
        latency_(m.histogram_family("chat4all_http_request_duration_seconds",
                                    "HTTP request latency from first byte to response written",
                                    {"route"})),
        exceptions_(m.counter_family("chat4all_http_handler_exceptions_total",
                                     "Handlers that threw (answered 500)", {"route"})),
        open_gauge_(m.gauge("chat4all_http_connections_open", "Open HTTP connections")),
        rejected_(m.counter("chat4all_http_connections_rejected_total",
                            "Connections refused because max_connections was reached")) {
    std::size_t n = cfg_.threads > 0 ? static_cast<std::size_t>(cfg_.threads)
                                     : std::max(1u, std::thread::hardware_concurrency());
    std::random_device rd;
    for (std::size_t i = 0; i < n; ++i) {
      auto w = std::make_unique<worker>();
      w->work.emplace(w->ioc.get_executor());
      w->rid_state = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
      workers_.push_back(std::move(w));
    }
  }

  ~impl() {
    if (started_ && !stopped_) stop(std::chrono::milliseconds(0));
  }

  route_stats& stats_for(const route* r) { return r ? *stats_[r->index] : *stats_.back(); }

  void count(route_stats& rs, unsigned status, double seconds) {
    std::size_t cls = status / 100;
    if (cls < 1 || cls > 5) cls = 5;
    obs::counter* c = rs.by_class[cls].load(std::memory_order_acquire);
    if (c == nullptr) {
      // Rare classes (1xx, 3xx) are created on first use; with() is idempotent, so a race
      // between two threads stores the same pointer.
      static constexpr const char* names[] = {"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"};
      c = &requests_.with({rs.name, names[cls]});
      rs.by_class[cls].store(c, std::memory_order_release);
    }
    c->inc();
    if (seconds >= 0) rs.latency->observe(seconds);
  }

  void start();
  bool drain(std::chrono::milliseconds grace);
  void stop(std::chrono::milliseconds grace);
  asio::awaitable<void> accept_loop(worker& w);
  asio::awaitable<void> reject(worker& w, tcp::socket sock);
  asio::awaitable<void> session(worker& w, tcp::socket sock);
  asio::awaitable<bool> serve_one(worker& w, conn_state& st, beast::tcp_stream& stream,
                                  beast::flat_buffer& buffer, const std::string& remote_ip);
  asio::awaitable<void> linger_close(beast::tcp_stream& stream);
  asio::awaitable<bool> serve_stream(route_stats& rs, route_match& m, beast::tcp_stream& stream,
                                     beast::flat_buffer& buffer,
                                     http::request_parser<http::string_body>& parser,
                                     std::string rid, std::string trace_id,
                                     std::optional<principal> caller, const std::string& remote_ip,
                                     steady::time_point t0);

  server_config cfg_;
  route_table& routes_;
  authenticator auth_;
  obs::counter_family& requests_;
  obs::histogram_family& latency_;
  obs::counter_family& exceptions_;
  obs::gauge& open_gauge_;
  obs::counter& rejected_;
  std::vector<std::unique_ptr<route_stats>> stats_;  // by route index; last = "unmatched"
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_{0};
  std::atomic<std::size_t> next_executor_{0};
  std::atomic<std::uint16_t> port_{0};
  bool started_ = false;
  bool stopped_ = false;
  // Last member: workers (and their suspended coroutines) go first on destruction.
  std::vector<std::unique_ptr<worker>> workers_;
};

void http_server::impl::start() {
  if (started_) throw std::logic_error("http_server::start called twice");
  for (std::size_t i = 0; i <= routes_.size(); ++i) {
    auto rs = std::make_unique<route_stats>();
    rs->name = i < routes_.size() ? routes_.at(i).options.name : "unmatched";
    for (std::size_t cls : {2, 4, 5}) {
      static constexpr const char* names[] = {"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"};
      rs->by_class[cls] = &requests_.with({rs->name, names[cls]});
    }
    rs->latency = &latency_.with({rs->name});
    rs->exceptions = &exceptions_.with({rs->name});
    stats_.push_back(std::move(rs));
  }

  tcp::endpoint ep;
  try {
    ep = resolve_listen(cfg_.listen, workers_.front()->ioc);
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      auto& a = workers_[i]->acceptor.emplace(workers_[i]->ioc);
      a.open(ep.protocol());
      a.set_option(asio::socket_base::reuse_address(true));
      // Every I/O thread listens on the same port; the kernel spreads new connections.
      // Only with several threads: SO_REUSEPORT would also let a second chat4all process
      // share the port silently instead of failing with "address in use".
      if (workers_.size() > 1) {
        a.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
      }
      a.bind(ep);
      a.listen(asio::socket_base::max_listen_connections);
      if (i == 0) ep.port(a.local_endpoint().port());  // port 0: the others join the same one
    }
  } catch (const boost::system::system_error& e) {
    for (auto& w : workers_) w->acceptor.reset();
    throw std::runtime_error("cannot listen on " + cfg_.listen + ": " + e.code().message());
  }
  port_ = ep.port();
  started_ = true;
  for (auto& wp : workers_) {
    worker& w = *wp;
    asio::co_spawn(w.ioc, accept_loop(w),
                   [](std::exception_ptr e) { log_exception("http accept loop failed", e); });
    w.thread = std::thread([&w, n = &wp - workers_.data()] {
      name_this_thread("c4a-io-" + std::to_string(n));
      // Handlers catch their own exceptions; this loop only keeps a stray one from taking
      // the whole process down.
      for (;;) {
        try {
          w.ioc.run();
          return;
        } catch (const std::exception& e) {
          log::error("exception escaped an I/O handler", {{"error", e.what()}});
        }
      }
    });
  }
  log::info("http server listening",
            {{"listen", cfg_.listen}, {"port", port_.load()}, {"threads", workers_.size()}});
}

bool http_server::impl::drain(std::chrono::milliseconds grace) {
  if (!started_) return true;
  if (!stopping_.exchange(true)) {
    for (auto& wp : workers_) {
      asio::post(wp->ioc, [w = wp.get()] {
        boost::system::error_code ec;
        if (w->acceptor) w->acceptor->close(ec);
        for (conn_state* c : w->conns) {
          if (c->idle) c->stream->cancel();
        }
      });
    }
  }
  auto deadline = steady::now() + grace;
  while (open_.load() > 0 && steady::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return open_.load() == 0;
}

void http_server::impl::stop(std::chrono::milliseconds grace) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  if (!drain(grace)) {
    int left = open_.load();
    log::warn("http drain period over, closing connections", {{"connections", left}});
    for (auto& wp : workers_) {
      asio::post(wp->ioc, [w = wp.get()] {
        for (conn_state* c : w->conns) {
          boost::system::error_code ec;
          c->stream->socket().shutdown(tcp::socket::shutdown_both, ec);
          c->stream->close();
        }
      });
    }
    // Sessions blocked on the socket unwind now; one awaiting something else is destroyed
    // with its io_context.
    auto deadline = steady::now() + std::chrono::seconds(1);
    while (open_.load() > 0 && steady::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  for (auto& w : workers_) {
    w->work.reset();
    w->ioc.stop();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

asio::awaitable<void> http_server::impl::accept_loop(worker& w) {
  for (;;) {
    auto [ec, sock] = co_await w.acceptor->async_accept(nothrow);
    if (stopping_.load()) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // EMFILE and friends: back off instead of spinning on a full descriptor table.
      log::warn("http accept failed", {{"error", ec.message()}});
      asio::steady_timer t(w.ioc, std::chrono::milliseconds(50));
      co_await t.async_wait(nothrow);
      continue;
    }
    if (open_.fetch_add(1) >= cfg_.max_connections) {
      open_.fetch_sub(1);
      rejected_.inc();
      asio::co_spawn(w.ioc, reject(w, std::move(sock)),
                     [](std::exception_ptr e) { log_exception("http reject failed", e); });
      continue;
    }
    boost::system::error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(w.ioc, session(w, std::move(sock)),
                   [](std::exception_ptr e) { log_exception("http connection failed", e); });
  }
}

asio::awaitable<void> http_server::impl::reject(worker& w, tcp::socket sock) {
  beast::tcp_stream stream(std::move(sock));
  static constexpr std::string_view body =
      R"({"error":{"code":"service_unavailable","message":"too many connections"}})";
  std::string msg =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Retry-After: 1\r\nConnection: close\r\nX-Request-ID: " +
      next_request_id(w.rid_state) + "\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + std::string(body);
  stream.expires_after(std::chrono::seconds(2));
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(msg), nothrow);
  if (!ec) co_await linger_close(stream);
}

asio::awaitable<void> http_server::impl::linger_close(beast::tcp_stream& stream) {
  // Closing with unread request bytes makes the kernel send RST, which can destroy the
  // response we just wrote before the client reads it; so half-close and drain briefly.
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(std::chrono::seconds(2));
  std::array<char, 4096> scratch;
  std::size_t total = 0;
  while (!ec && total < (1u << 20)) {
    std::size_t n = 0;
    std::tie(ec, n) = co_await stream.async_read_some(asio::buffer(scratch), nothrow);
    total += n;
  }
  stream.close();
}

asio::awaitable<void> http_server::impl::session(worker& w, tcp::socket sock) {
  struct guard {
    impl& s;
    worker& w;
    std::list<conn_state*>::iterator it;
    ~guard() {
      w.conns.erase(it);
      s.open_gauge_.dec();
      s.open_.fetch_sub(1);
    }
  };
  boost::system::error_code ec;
  auto ep = sock.remote_endpoint(ec);
  const std::string remote_ip = ec ? std::string() : ep.address().to_string();
  beast::tcp_stream stream(std::move(sock));
  beast::flat_buffer buffer;
  conn_state st;
  st.stream = &stream;
  open_gauge_.inc();
  guard g{*this, w, w.conns.insert(w.conns.end(), &st)};

  for (;;) {
    if (stopping_.load()) break;
    if (buffer.size() == 0) {
      // Idle between requests: the only state drain() may cut short.
      st.idle = true;
      stream.expires_after(std::chrono::seconds(cfg_.idle_timeout_s));
      auto [rec, n] = co_await stream.async_read_some(buffer.prepare(4096), nothrow);
      st.idle = false;
      if (rec) break;
      buffer.commit(n);
    }
    if (!co_await serve_one(w, st, stream, buffer, remote_ip)) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
}

asio::awaitable<bool> http_server::impl::serve_one(worker& w, conn_state& st,
                                                   beast::tcp_stream& stream,
                                                   beast::flat_buffer& buffer,
                                                   const std::string& remote_ip) {
  const auto t0 = steady::now();
  stream.expires_after(std::chrono::seconds(cfg_.read_timeout_s));
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(cfg_.max_header_bytes));
  // The body limit depends on the route, which is only known once the header is in.
  parser.body_limit(boost::none);

  auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, nothrow);
  if (hec) {
    std::optional<response> res;
    if (hec == http::error::header_limit) {
      res =
          bare_error(http::status::request_header_fields_too_large, "header_too_large",
                     "request header exceeds " + std::to_string(cfg_.max_header_bytes) + " bytes");
    } else if (is_malformed(hec)) {
      res = bare_error(http::status::bad_request, "bad_request", "malformed HTTP request");
    }
    if (res) {
      res->set("X-Request-ID", next_request_id(w.rid_state));
      count(stats_for(nullptr), res->result_int(), -1);
      stream.expires_after(std::chrono::seconds(cfg_.read_timeout_s));
      auto [wec, wn] = co_await http::async_write(stream, *res, nothrow);
      if (!wec) co_await linger_close(stream);
    }
    co_return false;
  }

  request& req = parser.get();
  std::string rid = sanitize_request_id(req["X-Request-ID"]);
  if (rid.empty()) rid = next_request_id(w.rid_state);
  std::string trace_id = trace_id_from(req["traceparent"]);
  auto [path, query] = split_target(req.target());
  route_match m = routes_.match(req.method(), path);
  route_stats& rs = stats_for(m.r);

  std::optional<response> res;
  bool close_after = false;
  bool threw = false;
  std::optional<principal> caller;
  if (m.kind == match_kind::not_found) {
    res = error_response(req, http::status::not_found, "not_found", "no such endpoint");
  } else if (m.kind == match_kind::method_not_allowed) {
    res = error_response(req, http::status::method_not_allowed, "method_not_allowed",
                         "method not allowed on this endpoint");
    res->set(http::field::allow, m.allow);
  } else if (m.r->options.auth) {
    std::optional<std::string> token;
    if (auto b = bearer_token(req[http::field::authorization]))
      token.emplace(*b);
    else if (m.r->upgrade)
      token = upgrade_token(query, req[http::field::sec_websocket_protocol]);
    if (!token) {
      res = error_response(req, error{errc::unauthenticated, "missing or malformed bearer token"});
    } else {
      try {
        auto verdict = co_await auth_(*token);
        if (verdict) {
          caller = std::move(*verdict);
        } else {
          res = error_response(req, verdict.err());
        }
      } catch (const std::exception& e) {
        threw = true;
        log::error(log::context{rid, trace_id}, "authenticator threw",
                   {{"route", rs.name}, {"error", e.what()}});
      }
    }
  }

  if (!res && !threw) {
    std::size_t limit = m.r->options.body_limit ? m.r->options.body_limit : cfg_.max_body_bytes;
    auto cl = parser.content_length();
    if (cl && *cl > limit) {
      res = error_response(
          req, error{errc::too_large, "request body exceeds " + std::to_string(limit) + " bytes"});
    } else if (!parser.is_done() && !m.r->stream) {
      parser.body_limit(limit);
      if (beast::iequals(req[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        auto [cec, cn] = co_await http::async_write(stream, cont, nothrow);
        if (cec) co_return false;
      }
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, nothrow);
      if (bec == http::error::body_limit) {
        res = error_response(req, error{errc::too_large, "request body exceeds " +
                                                             std::to_string(limit) + " bytes"});
      } else if (bec && is_malformed(bec)) {
        res = error_response(req, http::status::bad_request, "bad_request", "malformed body");
      } else if (bec) {
        co_return false;  // the client went away or was too slow: nobody to answer
      }
    }
  }

  if (!res && !threw && m.r->stream)
    co_return co_await serve_stream(rs, m, stream, buffer, parser, std::move(rid),
                                    std::move(trace_id), std::move(caller), remote_ip, t0);
  if (!res && !threw) {
    request_context ctx{
        req,       rid,     path, std::move(m.params), parse_query(query), std::move(caller),
        remote_ip, trace_id};
    if (m.r->upgrade) {
      // The handler owns the connection from here; its own protocol sets its timeouts.
      count(rs, 101, -1);
      stream.expires_never();
      try {
        co_await m.r->upgrade(ctx, stream, buffer);
      } catch (const std::exception& e) {
        rs.exceptions->inc();
        log::error(log::context{rid, trace_id}, "upgrade handler threw",
                   {{"route", rs.name}, {"error", e.what()}});
      }
      co_return false;
    }
    try {
      res = co_await m.r->fn(ctx);
    } catch (const std::exception& e) {
      threw = true;
      log::error(log::context{rid, trace_id}, "handler threw",
                 {{"route", rs.name}, {"error", e.what()}});
    } catch (...) {
      threw = true;
      log::error(log::context{rid, trace_id}, "handler threw", {{"route", rs.name}});
    }
  }
  if (threw) {
    rs.exceptions->inc();
    res = error_response(req, error{errc::internal, "internal error"});
  }

  // Unread body bytes would be taken for the next request: such a connection must close.
  if (!parser.is_done()) close_after = true;
  finalize(*res, req, rid);
  bool keep = req.keep_alive() && res->keep_alive() && !close_after && !stopping_.load();
  res->keep_alive(keep);
  stream.expires_after(std::chrono::seconds(cfg_.read_timeout_s));
  boost::system::error_code wec;
  st.out.clear();
  if (serialize_simple(*res, st.out, simple_write_max_body)) {
    std::tie(wec, std::ignore) = co_await asio::async_write(stream, asio::buffer(st.out), nothrow);
    if (st.out.capacity() > 4 * simple_write_max_body) std::string().swap(st.out);
  } else {
    std::tie(wec, std::ignore) = co_await http::async_write(stream, *res, nothrow);
  }

  double seconds = std::chrono::duration<double>(steady::now() - t0).count();
  count(rs, res->result_int(), seconds);
  if (log::enabled(log::level::debug)) {
    log::debug(log::context{rid, trace_id}, "http request",
               {{"route", rs.name},
                {"method", std::string_view(req.method_string())},
                {"status", res->result_int()},
                {"duration_ms", seconds * 1000.0},
                {"remote_ip", remote_ip}});
  }
  if (wec) co_return false;
  if (!keep && !parser.is_done()) co_await linger_close(stream);
  co_return keep;
}

asio::awaitable<bool> http_server::impl::serve_stream(
    route_stats& rs, route_match& m, beast::tcp_stream& stream, beast::flat_buffer& buffer,
    http::request_parser<http::string_body>& parser, std::string rid, std::string trace_id,
    std::optional<principal> caller, const std::string& remote_ip, steady::time_point t0) {
  // A copy of the header stays readable for the handler (ctx.req) while the body parser
  // takes over the parsing state.
  request head(parser.get().base());
  auto [path, query] = split_target(head.target());
  request_context ctx{
      head,      rid,     path, std::move(m.params), parse_query(query), std::move(caller),
      remote_ip, trace_id};
  const bool expect_continue = beast::iequals(head[http::field::expect], "100-continue");
  http::request_parser<http::buffer_body> body_parser{std::move(parser)};
  const std::size_t limit = m.r->options.body_limit ? m.r->options.body_limit : cfg_.max_body_bytes;
  body_parser.body_limit(limit);
  connection_stream_io io(stream, buffer, body_parser, cfg_.read_timeout_s, expect_continue);

  std::optional<response> res;
  bool threw = false;
  try {
    res = co_await m.r->stream(ctx, io);
  } catch (const std::exception& e) {
    threw = true;
    log::error(log::context{ctx.request_id, ctx.trace_id}, "handler threw",
               {{"route", rs.name}, {"error", e.what()}});
  }
  auto seconds = [t0] { return std::chrono::duration<double>(steady::now() - t0).count(); };
  if (io.responded()) {
    if (threw) rs.exceptions->inc();
    count(rs, io.status(), seconds());
    // A streamed response has no room for an error: a failure mid-way closes the connection.
    co_return !threw && io.complete() && body_parser.is_done() && head.keep_alive() &&
        !stopping_.load();
  }
  if (threw || !res) {
    rs.exceptions->inc();
    res = error_response(head, error{errc::internal, "internal error"});
  }
  finalize(*res, head, ctx.request_id);
  const bool done = body_parser.is_done();
  const bool keep = head.keep_alive() && res->keep_alive() && done && !stopping_.load();
  res->keep_alive(keep);
  stream.expires_after(std::chrono::seconds(cfg_.read_timeout_s));
  auto [wec, wn] = co_await http::async_write(stream, *res, nothrow);
  count(rs, res->result_int(), seconds());
  if (wec) co_return false;
  if (!keep && !done) co_await linger_close(stream);
  co_return keep;
}

// ---- http_server --------------------------------------------------------------------------

http_server::http_server(server_config cfg, route_table& routes, authenticator auth,
                         obs::metrics_registry& metrics)
    : impl_(std::make_unique<impl>(std::move(cfg), routes, std::move(auth), metrics)) {}

http_server::~http_server() = default;

void http_server::start() {
  impl_->start();
}
bool http_server::drain(std::chrono::milliseconds grace) {
  return impl_->drain(grace);
}
void http_server::stop(std::chrono::milliseconds grace) {
  impl_->stop(grace);
}
std::uint16_t http_server::bound_port() const noexcept {
  return impl_->port_.load();
}

boost::asio::any_io_executor http_server::executor() {
  auto& ws = impl_->workers_;
  return ws[impl_->next_executor_.fetch_add(1) % ws.size()]->ioc.get_executor();
}

std::size_t http_server::thread_count() const noexcept {
  return impl_->workers_.size();
}
bool http_server::stopping() const noexcept {
  return impl_->stopping_.load();
}
std::size_t http_server::open_connections() const noexcept {
  return static_cast<std::size_t>(std::max(0, impl_->open_.load()));
}

}  // namespace chat4all::api
