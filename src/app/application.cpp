#include "app/application.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "adapters/log/kafka/kafka_log.hpp"
#include "api/handlers.hpp"
#include "api/http_server.hpp"
#include "api/route_table.hpp"
#include "app/adapters.hpp"
#include "app/dependency_monitor.hpp"
#include "core/crypto.hpp"
#include "core/thread_name.hpp"
#include "domain/auth_service.hpp"
#include "domain/conversation_service.hpp"
#include "domain/message_service.hpp"
#include "obs/logging.hpp"
#include "obs/metrics.hpp"
#include "pipeline/event_forwarder.hpp"
#include "pipeline/faulty_store.hpp"
#include "pipeline/file_merger.hpp"
#include "pipeline/log_channel_dispatch.hpp"
#include "pipeline/message_router.hpp"
#include "pipeline/outbox_log.hpp"
#include "pipeline/outbox_relay.hpp"
#include "ws/gateway.hpp"

namespace chat4all::app {
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {
constexpr std::size_t max_inflight_messages = 1'000'000;
constexpr const char* demo_password = "demo-password";

template <class T>
T run_sync(asio::io_context& ctx, asio::awaitable<T> task) {
  auto fut = asio::co_spawn(ctx, std::move(task), asio::use_future);
  ctx.restart();
  ctx.run();
  return fut.get();
}

// In a process without a router, accepted ids are forgotten after this (the store answers).
constexpr std::chrono::seconds api_only_inflight_ttl{30};
}  // namespace

std::string resolve_jwt_secret(const config& cfg) {
  if (!cfg.auth.jwt_secret.empty()) return cfg.auth.jwt_secret;
  // Instances of a cluster must share the key; a per-instance file would not be shared.
  if (cfg.storage.backend != "sqlite")
    throw std::runtime_error(
        "config: auth.jwt_secret (CHAT4ALL_AUTH_JWT_SECRET) must be set in cluster mode, the "
        "same value (>= 32 bytes) on every instance");
  const auto path = fs::path(cfg.storage.data_dir) / "jwt.secret";
  if (std::ifstream in(path); in) {
    std::string s;
    std::getline(in, s);
    if (s.size() >= 32) return s;
  }
  auto secret = crypto::random_token(48);
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << secret << '\n';
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), 0600);
  fs::rename(tmp, path);
  return secret;
}

int migrate(const config& cfg) {
  auto db = make_store(cfg);
  asio::io_context ctx;
  auto v = run_sync(ctx, db->migrate());
  if (!v) {
    std::cerr << "migrate failed: " << v.err().message << '\n';
    return 1;
  }
  std::cout << "schema version " << *v << '\n';
  return 0;
}

int add_user(const config& cfg, const std::string& username, const std::string& password) {
  fs::create_directories(cfg.storage.data_dir);
  auto store_ptr = make_store(cfg);
  auto& db = *store_ptr;
  asio::io_context ctx;
  if (auto v = run_sync(ctx, db.migrate()); !v) {
    std::cerr << "migrate failed: " << v.err().message << '\n';
    return 1;
  }
  auto auth_cfg = cfg.auth;
  auth_cfg.jwt_secret = resolve_jwt_secret(cfg);
  system_clock clk;
  asio::thread_pool blocking(1);
  auth_service auth(db, db, clk, auth_cfg, blocking.get_executor());
  auto u = run_sync(ctx, auth.register_user(username, password));
  if (!u) {
    std::cerr << "cannot add user: " << u.err().message << '\n';
    return u.err().code == errc::conflict ? 3 : 2;
  }
  std::cout << "user " << u->username << " created with id " << u->id << '\n';
  return 0;
}

int serve(config cfg) {
  log::init_logging(cfg.logging, "chat4all", cfg.role);
  fs::create_directories(cfg.storage.data_dir);
  cfg.auth.jwt_secret = resolve_jwt_secret(cfg);
  const bool runs_api = cfg.role == "all" || cfg.role == "api";
  const bool runs_router = cfg.role == "all" || cfg.role == "router";
  // The transactional outbox exists in cluster mode (Kafka + PostgreSQL), SPEC §6.
  const bool uses_outbox =
      cfg.log.outbox && cfg.log.backend == "kafka" && cfg.storage.backend == "postgres";
  const bool runs_relay = uses_outbox && (cfg.role == "all" || cfg.role == "relay");
  if (cfg.role == "relay" && !uses_outbox) {
    log::error("role relay needs log.backend = kafka, storage.backend = postgres and log.outbox");
    return 1;
  }
  const bool runs_merger = cfg.role == "all" || cfg.role == "merger";
  const bool runs_gc = cfg.role == "all" || cfg.role == "gc";

  obs::metrics_registry metrics;
  system_clock clk;
  asio::thread_pool blocking(2);  // argon2id; bounded so logins cannot starve the machine
  name_pool_threads(blocking, 2, "c4a-blocking");
  asio::io_context pipeline_ctx;  // router stage and signal handling

  auto store_ptr = make_store(cfg);
  auto& db = *store_ptr;
  if (auto v = run_sync(pipeline_ctx, db.migrate()); !v) {
    log::error("store migration failed", {{"reason", v.err().message}});
    return 1;
  }
  auto log_ptr = make_event_log(cfg, metrics);
  auto& event_log = *log_ptr;
  auto fan_ptr = make_fanout(cfg, metrics);
  auto& fan = *fan_ptr;
  log_channel_dispatch channels(event_log);
  auto* kafka = dynamic_cast<kafka_log*>(log_ptr.get());
  auto* box = uses_outbox ? dynamic_cast<outbox*>(store_ptr.get()) : nullptr;
  // The API's log: Kafka, falling back to the outbox when Kafka does not acknowledge.
  std::unique_ptr<outbox_log> api_log;
  if (box != nullptr && runs_api) {
    outbox_log_options o;
    o.fallback_after = std::chrono::milliseconds(cfg.log.outbox_fallback_ms);
    auto healthy = [kafka] {
      if (kafka == nullptr) return true;
      const auto h = kafka->health();
      return h.ok && h.brokers_online > 0;
    };
    api_log = std::make_unique<outbox_log>(event_log, *box, clk, healthy, o, metrics);
  }
  membership_cache members(db);
  inflight_messages inflight(max_inflight_messages,
                             runs_router ? inflight_messages::never : api_only_inflight_ttl);

  auth_service auth(db, db, clk, cfg.auth, blocking.get_executor(), &fan);
  conversation_service conversations(db, db, db, members, fan, clk, cfg.limits);
  message_service messages(members, db,
                           api_log ? static_cast<chat4all::event_log&>(*api_log) : event_log,
                           inflight, clk, cfg.limits, &db);
  auto blobs_ptr = make_blob_store(cfg);
  upload_service files(db, members, *blobs_ptr, event_log, clk, cfg.uploads,
                       cfg.blobs.s3_key_prefix);
  std::optional<file_merger> merger;
  if (runs_merger) merger.emplace(event_log, files);
  std::optional<upload_gc> gc;
  if (runs_gc) gc.emplace(files, std::chrono::seconds(cfg.uploads.gc_interval_s));
  // Tests only (router.fail_store_message_ids): the router's store fails for those ids.
  std::unique_ptr<faulty_store> fault_injection;
  message_store* router_store = &db;
  if (runs_router && !cfg.router.fail_store_message_ids.empty()) {
    fault_injection = std::make_unique<faulty_store>(
        db, parse_uuid_list(cfg.router.fail_store_message_ids).value_or(std::vector<uuid>{}));
    router_store = fault_injection.get();
    log::warn("fault injection on: the router cannot store some messages (tests only)",
              {{"router.fail_store_message_ids", cfg.router.fail_store_message_ids}});
  }
  std::optional<message_router> router;
  if (runs_router)
    router.emplace(event_log, *router_store, fan, channels, inflight, clk, cfg.router, metrics);

  std::optional<outbox_relay> relay;
  if (runs_relay) relay.emplace(*box, event_log, db, clk, cfg.relay, metrics);
  // With the outbox, database-originated events go store -> outbox -> relay -> Kafka ->
  // forwarder (with the routers) -> fan-out.
  conversations.events_through_store(uses_outbox);
  std::optional<event_forwarder> forwarder;
  if (uses_outbox && runs_router) forwarder.emplace(event_log, fan, metrics);

  if (auto r = run_sync(pipeline_ctx, auth.load_revocations()); !r) {
    log::error("cannot load token revocations", {{"reason", r.err().message}});
    return 1;
  }
  // Catch up with everything accepted before a crash, so that idempotency checks see it.
  std::size_t recovered = 0;
  if (router) {
    auto drained = run_sync(pipeline_ctx, router->drain());
    if (!drained) {
      log::error("router catch-up failed", {{"reason", drained.err().message}});
      return 1;
    }
    recovered = *drained;
  }
  if (cfg.seed_demo_users) {
    for (const char* name : {"alice", "bob", "carol", "dave"}) {
      auto u = run_sync(pipeline_ctx, auth.register_user(name, demo_password));
      if (u) log::info("demo user created", {{"username", name}, {"user_id", u->id}});
    }
  }

  std::atomic<bool> ready{false};
  api::route_table routes;
  api::api_services services{auth, conversations, messages, db, metrics, cfg, ready, files};
  const auto limit_counters = make_counters(cfg);  // login throttling (SPEC §8)
  services.limits = limit_counters.get();
  if (kafka != nullptr) {
    // Kafka unreachable: still ready when accepted messages can go to the outbox.
    services.probes.push_back({"log", [kafka, uses_outbox]() -> api::dependency_state {
                                 const auto h = kafka->health();
                                 if (h.ok && h.brokers_online > 0) return {"ok", true};
                                 if (h.refreshed_at == decltype(h.refreshed_at){} &&
                                     h.failed_refreshes == 0)
                                   return {"starting", true};
                                 if (uses_outbox) return {"down (accepting into the outbox)", true};
                                 return {"down", false};
                               }});
  }
  // The blob store (S3/MinIO, or the local directory), checked every 2 s. Down, only uploads
  // and downloads fail: the process stays ready and /readyz shows why.
  dependency_monitor blob_health(
      "blobs", [&blobs = *blobs_ptr] { return blobs.ping(); }, std::chrono::seconds(2),
      /*ready_when_down=*/true);
  services.probes.push_back({"blobs", [&blob_health] { return blob_health.state(); }});
  // Redis down: events published meanwhile are lost for the other instances' clients, who
  // catch up with `resume`; REST goes on, so the process stays ready and says so.
  services.probes.push_back(
      {"fanout", [&fan = *fan_ptr]() -> api::dependency_state {
         if (fan.connected()) return {"ok", true};
         return {"down: not connected to Redis (clients catch up with resume)", true};
       }});
  // Declared before the server: its connections run on the server's I/O threads.
  std::optional<ws::gateway> gateway;
  if (runs_api) {
    api::register_all_routes(routes, services);
    gateway.emplace(cfg.ws, cfg.limits,
                    ws::gateway_services{conversations, messages, members, fan, clk, metrics});
    gateway->register_routes(routes);
  } else {
    api::register_ops_routes(routes, services);  // a router still exposes health and metrics
  }
  api::http_server server(
      cfg.server, routes, [&auth](std::string_view token) { return auth.authenticate(token); },
      metrics);
  server.start();

  pipeline_ctx.restart();
  auto work = asio::make_work_guard(pipeline_ctx);  // keeps run() alive in api-only roles
  // The loop ends when every stage that runs here has stopped.
  int stages = 1 /* blob_health */ + (router ? 1 : 0) + (relay ? 1 : 0) + (forwarder ? 1 : 0) +
               (merger ? 1 : 0) + (gc ? 1 : 0);
  auto stage_done = [&work, &stages](const char* what) {
    return [&work, &stages, what](std::exception_ptr ep) {
      if (--stages == 0) work.reset();
      if (!ep) return;
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        log::error("pipeline stage stopped by an exception", {{"stage", what}, {"what", e.what()}});
      }
    };
  };
  if (router) asio::co_spawn(pipeline_ctx, router->run(), stage_done("router"));
  if (relay) asio::co_spawn(pipeline_ctx, relay->run(), stage_done("relay"));
  if (forwarder) asio::co_spawn(pipeline_ctx, forwarder->run(), stage_done("forwarder"));
  if (merger) asio::co_spawn(pipeline_ctx, merger->run(), stage_done("merger"));
  if (gc) asio::co_spawn(pipeline_ctx, gc->run(), stage_done("upload gc"));
  asio::co_spawn(pipeline_ctx, blob_health.run(), stage_done("blob health"));
  asio::signal_set signals(pipeline_ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("signal received, draining", {{"signal", sig}});
    ready = false;
    // WebSocket clients are told to go (1001) first, so the drain does not wait for them.
    if (gateway) gateway->stop();
    server.stop(std::chrono::seconds(cfg.server.shutdown_grace_s));
    if (gateway) gateway->shutdown();
    if (router) router->stop();
    if (relay) relay->stop();
    if (forwarder) forwarder->stop();
    if (merger) merger->stop();
    if (gc) gc->stop();
    blob_health.stop();
    if (stages == 0) work.reset();
  });
  ready = true;
  log::info("chat4all serving", {{"listen", cfg.server.listen},
                                 {"port", static_cast<std::int64_t>(server.bound_port())},
                                 {"store", cfg.storage.backend},
                                 {"log", cfg.log.backend},
                                 {"fanout", cfg.fanout.backend},
                                 {"outbox", uses_outbox},
                                 {"blobs", cfg.blobs.backend},
                                 {"recovered_records", static_cast<std::int64_t>(recovered)}});
  pipeline_ctx.run();  // returns once the router loop ended (or the api-only guard dropped)
  event_log.stop();
  log::info("chat4all stopped");
  log::flush();
  return 0;
}

}  // namespace chat4all::app
