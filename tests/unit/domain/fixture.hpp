#pragma once
// Domain use cases wired on the real embedded adapters (SQLite, embedded log, in-process
// fan-out) in a temporary directory, with a manual clock.

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <filesystem>
#include <random>

#include "adapters/blob/fs/fs_blob_store.hpp"
#include "adapters/fanout/inproc/inproc_fanout.hpp"
#include "adapters/log/embedded/embedded_log.hpp"
#include "adapters/store/sqlite/sqlite_store.hpp"
#include "domain/auth_service.hpp"
#include "domain/conversation_service.hpp"
#include "domain/message_service.hpp"
#include "domain/upload_service.hpp"
#include "obs/metrics.hpp"
#include "pipeline/log_channel_dispatch.hpp"
#include "pipeline/message_router.hpp"

namespace chat4all::testing {

namespace asio = boost::asio;

inline std::filesystem::path temp_dir() {
  std::random_device rd;
  auto p = std::filesystem::temp_directory_path() /
           ("chat4all-domain-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(p);
  return p;
}

struct domain_fixture : ::testing::Test {
  std::filesystem::path dir = temp_dir();
  manual_clock clk;
  config cfg = [] {
    config c;
    c.auth.jwt_secret = std::string(40, 'k');
    c.auth.argon2_opslimit = 1;
    c.auth.argon2_memlimit_kib = 8192;
    c.storage.worker_threads = 2;
    return c;
  }();
  asio::io_context io;
  asio::thread_pool blocking{1};
  obs::metrics_registry metrics;
  sqlite_store db{(dir / "db.sqlite").string(), cfg.storage};
  embedded_log log{(dir / "log").string(), cfg.log};
  inproc_fanout fan;
  log_channel_dispatch channels{log};
  membership_cache members{db};
  inflight_messages inflight{1000};
  auth_service auth{db, db, clk, cfg.auth, blocking.get_executor()};
  conversation_service conversations{db, db, db, members, fan, clk, cfg.limits};
  message_service messages{members, db, log, inflight, clk, cfg.limits, &db};
  fs_blob_store blobs{(dir / "blobs").string(), 1};
  upload_service files{db, members, blobs, log, clk, cfg.uploads};
  message_router router{log, db, fan, channels, inflight, clk, cfg.router, metrics};

  domain_fixture() { EXPECT_TRUE(run(db.migrate())); }
  ~domain_fixture() override {
    log.stop();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  template <class T>
  T run(asio::awaitable<T> t) {
    auto f = asio::co_spawn(io, std::move(t), asio::use_future);
    io.restart();
    io.run();
    return f.get();
  }

  principal user(const std::string& name) {
    auto u = run(auth.register_user(name, "password-123"));
    EXPECT_TRUE(u) << (u ? "" : u.err().message);
    principal p;
    p.id = u ? u->id : 0;
    return p;
  }

  send_request text(conversation_id conv, const std::string& content, uuid id = uuid::random()) {
    send_request r;
    r.message_id = id;
    r.conversation = conv;
    r.payload.content = content;
    return r;
  }

  // Everything accepted so far, stored by the router.
  std::size_t drain() {
    auto n = run(router.drain());
    EXPECT_TRUE(n);
    return n ? *n : 0;
  }
};

}  // namespace chat4all::testing
