#include "adapters/store/postgres/pg_store.hpp"

#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <mutex>
#include <type_traits>
#include <vector>

#include "adapters/store/postgres/pg_conn.hpp"
#include "adapters/store/postgres/pg_ops.hpp"
#include "core/offload.hpp"
#include "core/thread_name.hpp"

namespace chat4all {

namespace {

template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<result<T>> : std::true_type {};

// Runs `f` and turns libpq failures (and unexpected exceptions) into error values.
template <class R, class F>
R guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const pg::failure& e) {
    return e.err();
  } catch (const std::exception& e) {
    return error(errc::internal, e.what());
  }
}

}  // namespace

struct pg_store::impl {
  std::string conninfo_;
  pg_store_options opts_;
  // One worker thread per connection: a job holds one connection at a time, so at most
  // pool_size connections are ever open and no job waits for a connection.
  asio::thread_pool pool_;

  std::mutex idle_mu_;
  std::vector<std::unique_ptr<pg::connection>> idle_;

  impl(std::string conninfo, pg_store_options opts)
      : conninfo_(std::move(conninfo)),
        opts_(std::move(opts)),
        pool_(static_cast<std::size_t>(std::max(opts_.pool_size, 1))) {
    name_pool_threads(pool_, static_cast<std::size_t>(std::max(opts_.pool_size, 1)), "c4a-pg");
  }

  ~impl() {
    pool_.join();
    idle_.clear();
  }

  // A connection leased to one job; back to the idle list afterwards if still usable
  // (connected, no transaction left open), otherwise closed.
  struct lease {
    impl* owner;
    std::unique_ptr<pg::connection> conn;
    bool reused;
    lease(impl* o, std::unique_ptr<pg::connection> c, bool r)
        : owner(o), conn(std::move(c)), reused(r) {}
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() {
      if (!conn || !conn->reusable()) return;
      std::lock_guard lk(owner->idle_mu_);
      owner->idle_.push_back(std::move(conn));
    }
  };

  lease acquire() {
    for (;;) {
      std::unique_ptr<pg::connection> c;
      {
        std::lock_guard lk(idle_mu_);
        if (idle_.empty()) break;
        c = std::move(idle_.back());
        idle_.pop_back();
      }
      // Closed by the server while idle (restart, admin shutdown): replace it, no failure.
      if (c->reusable()) return lease(this, std::move(c), true);
    }
    return lease(this, std::make_unique<pg::connection>(conninfo_, opts_.schema), false);
  }

  template <class R, class F>
  R with_connection(F& f) {
    {
      auto l = acquire();
      const auto before = l.conn->completed();
      try {
        return f(*l.conn);
      } catch (const pg::failure& e) {
        // A reused connection that was lost before any statement of this job completed: it
        // died while idle after the check above. Retry once on a fresh connection. (The one
        // ambiguity: a single-statement write that the server executed just before dying.)
        if (!e.connection_lost() || !l.reused || l.conn->completed() != before) throw;
        l.conn.reset();
      }
    }
    lease fresh(this, std::make_unique<pg::connection>(conninfo_, opts_.schema), false);
    return f(*fresh.conn);
  }

  // Runs f(connection) on the pool. Not a coroutine: it builds the job and hands it to
  // offload (which takes everything by value), so no coroutine frame of ours refers to it.
  template <class F>
  auto run(F f) -> task<std::invoke_result_t<F&, pg::connection&>> {
    using R = std::invoke_result_t<F&, pg::connection&>;
    static_assert(is_result<R>::value);
    return offload(pool_.get_executor(), [this, f = std::move(f)]() mutable -> R {
      return guarded<R>([&]() -> R { return with_connection<R>(f); });
    });
  }
};

pg_store::pg_store(std::string conninfo, pg_store_options opts)
    : impl_(std::make_unique<impl>(std::move(conninfo), std::move(opts))) {}

pg_store::~pg_store() = default;

task<result<int>> pg_store::migrate() {
  return impl_->run([schema = impl_->opts_.schema](pg::connection& c) -> result<int> {
    return pg::apply_migrations(c, schema);
  });
}

task<result<void>> pg_store::ping() {
  return impl_->run([](pg::connection& c) -> result<void> {
    c.query("SELECT 1");
    return ok;
  });
}

// ---- users ----

task<result<user>> pg_store::create_user(std::string username, std::string password_hash,
                                         timestamp_us now) {
  return impl_->run(
      [username = std::move(username), password_hash = std::move(password_hash),
       now](pg::connection& c) { return pg::create_user(c, username, password_hash, now); });
}

task<result<user>> pg_store::find_user_by_name(std::string username) {
  return impl_->run([username = std::move(username)](pg::connection& c) {
    return pg::find_user_by_name(c, username);
  });
}

task<result<user>> pg_store::find_user(user_id id) {
  return impl_->run([id](pg::connection& c) { return pg::find_user(c, id); });
}

task<result<std::vector<user_id>>> pg_store::existing_users(std::vector<user_id> ids) {
  return impl_->run([ids = std::move(ids)](pg::connection& c) -> result<std::vector<user_id>> {
    return pg::existing_users(c, ids);
  });
}

// ---- tokens ----

task<result<void>> pg_store::insert_refresh(refresh_token_record rec) {
  return impl_->run(
      [rec = std::move(rec)](pg::connection& c) { return pg::insert_refresh(c, rec); });
}

task<result<user_id>> pg_store::rotate_refresh(std::string old_hash,
                                               refresh_token_record replacement, timestamp_us now) {
  return impl_->run(
      [old_hash = std::move(old_hash), replacement = std::move(replacement),
       now](pg::connection& c) { return pg::rotate_refresh(c, old_hash, replacement, now); });
}

task<result<void>> pg_store::revoke_refresh(std::string token_hash) {
  return impl_->run([token_hash = std::move(token_hash)](pg::connection& c) {
    return pg::revoke_refresh(c, token_hash);
  });
}

task<result<void>> pg_store::revoke_access(std::string jti, timestamp_us expires_at) {
  return impl_->run([jti = std::move(jti), expires_at](pg::connection& c) {
    return pg::revoke_access(c, jti, expires_at);
  });
}

task<result<std::vector<std::string>>> pg_store::revoked_access(timestamp_us now) {
  return impl_->run([now](pg::connection& c) -> result<std::vector<std::string>> {
    return pg::revoked_access(c, now);
  });
}

// ---- conversations ----

task<result<conversation_store::create_outcome>> pg_store::create_conversation(
    conversation_type type, std::string name, std::string description, std::vector<user_id> members,
    timestamp_us now, events_of<create_outcome> events) {
  return impl_->run([type, name = std::move(name), description = std::move(description),
                     members = std::move(members), now,
                     events = std::move(events)](pg::connection& c) {
    return pg::create_conversation(c, type, name, description, members, now, events);
  });
}

task<result<conversation>> pg_store::find_conversation(conversation_id id) {
  return impl_->run([id](pg::connection& c) { return pg::find_conversation(c, id); });
}

task<result<page<conversation_summary>>> pg_store::list_conversations(user_id user, int limit,
                                                                      int offset) {
  return impl_->run([user, limit, offset](pg::connection& c) -> result<page<conversation_summary>> {
    return pg::list_conversations(c, user, limit, offset);
  });
}

task<result<read_mark_result>> pg_store::mark_read(conversation_id conv, user_id member,
                                                   std::optional<seq_t> up_to, timestamp_us now,
                                                   events_of<read_mark_result> events) {
  return impl_->run([conv, member, up_to, now, events = std::move(events)](pg::connection& c) {
    return pg::mark_read(c, conv, member, up_to, now, events);
  });
}

// ---- messages ----

task<result<std::vector<message>>> pg_store::store_messages(std::vector<accepted_message> batch,
                                                            timestamp_us now) {
  return impl_->run(
      [batch = std::move(batch), now](pg::connection& c) -> result<std::vector<message>> {
        return pg::store_messages(c, batch, now);
      });
}

task<result<void>> pg_store::store_failed(accepted_message m, std::string reason,
                                          timestamp_us now) {
  return impl_->run(
      [m = std::move(m), reason = std::move(reason), now](pg::connection& c) -> result<void> {
        return pg::store_failed(c, m, reason, now);
      });
}

task<result<std::vector<std::optional<std::uint64_t>>>> pg_store::find_content_hashes(
    std::vector<uuid> ids) {
  return impl_->run([ids = std::move(ids)](
                        pg::connection& c) -> result<std::vector<std::optional<std::uint64_t>>> {
    return pg::find_content_hashes(c, ids);
  });
}

task<result<message_with_history>> pg_store::get_message(uuid id) {
  return impl_->run([id](pg::connection& c) { return pg::get_message(c, id); });
}

task<result<history_page>> pg_store::history(history_query q) {
  return impl_->run([q](pg::connection& c) -> result<history_page> { return pg::history(c, q); });
}

// ---- outbox ----

task<result<void>> pg_store::enqueue(std::string topic, std::vector<log_record> records,
                                     timestamp_us now) {
  return impl_->run([topic = std::move(topic), records = std::move(records),
                     now](pg::connection& c) -> result<void> {
    pg::outbox_enqueue(c, topic, records, now);
    return ok;
  });
}

task<result<std::int64_t>> pg_store::backlog() {
  return impl_->run(
      [](pg::connection& c) -> result<std::int64_t> { return pg::outbox_backlog(c); });
}

task<result<bool>> pg_store::acquire_lease(std::string holder, std::chrono::milliseconds ttl) {
  return impl_->run([holder = std::move(holder), ttl](pg::connection& c) -> result<bool> {
    return pg::outbox_acquire_lease(c, holder, ttl.count());
  });
}

task<result<void>> pg_store::release_lease(std::string holder) {
  return impl_->run([holder = std::move(holder)](pg::connection& c) -> result<void> {
    pg::outbox_release_lease(c, holder);
    return ok;
  });
}

task<result<std::vector<outbox_entry>>> pg_store::oldest(std::size_t max) {
  return impl_->run([max](pg::connection& c) -> result<std::vector<outbox_entry>> {
    return pg::outbox_oldest(c, max);
  });
}

task<result<void>> pg_store::remove(std::vector<std::int64_t> ids) {
  return impl_->run([ids = std::move(ids)](pg::connection& c) -> result<void> {
    pg::outbox_remove(c, ids);
    return ok;
  });
}

task<result<int>> pg_store::note_failure(std::int64_t id, std::string reason) {
  return impl_->run([id, reason = std::move(reason)](pg::connection& c) {
    return pg::outbox_note_failure(c, id, reason);
  });
}

// ---- tooling ----

result<void> pg_drop_schema(const std::string& conninfo, const std::string& schema) {
  return guarded<result<void>>([&]() -> result<void> {
    pg::connection c(conninfo, "public");
    c.exec("DROP SCHEMA IF EXISTS " + c.quote_ident(schema) + " CASCADE");
    return ok;
  });
}

// ---- uploads ----

task<result<void>> pg_store::create_upload(upload_record rec, owner_limits limits) {
  return impl_->run([rec = std::move(rec), limits](pg::connection& c) {
    return pg::create_upload(c, rec, limits);
  });
}

task<result<upload_record>> pg_store::find_upload(uuid id) {
  return impl_->run([id](pg::connection& c) { return pg::find_upload(c, id); });
}

task<result<upload_chunk>> pg_store::record_chunk(uuid id, upload_chunk chunk, timestamp_us now) {
  return impl_->run([id, chunk = std::move(chunk), now](pg::connection& c) {
    return pg::record_chunk(c, id, chunk, now);
  });
}

task<result<bool>> pg_store::transition_upload(uuid id, upload_status from, upload_status to,
                                               std::string reason, std::string file_sha256,
                                               std::string detected_mime, timestamp_us now) {
  return impl_->run([id, from, to, reason = std::move(reason), file_sha256 = std::move(file_sha256),
                     detected_mime = std::move(detected_mime), now](pg::connection& c) {
    return pg::transition_upload(c, id, from, to, reason, file_sha256, detected_mime, now);
  });
}

task<result<std::vector<upload_record>>> pg_store::expired_uploads(timestamp_us now, int limit) {
  return impl_->run([now, limit](pg::connection& c) -> result<std::vector<upload_record>> {
    return pg::expired_uploads(c, now, limit);
  });
}

}  // namespace chat4all
