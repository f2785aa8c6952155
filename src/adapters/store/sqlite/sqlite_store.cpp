#include "adapters/store/sqlite/sqlite_store.hpp"

#include <boost/asio/thread_pool.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include "adapters/store/sqlite/db.hpp"
#include "adapters/store/sqlite/known_ids.hpp"
#include "adapters/store/sqlite/ops.hpp"
#include "core/offload.hpp"
#include "core/thread_name.hpp"
#include "obs/logging.hpp"

namespace chat4all {

namespace {

template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<result<T>> : std::true_type {};

// Runs `f` and turns SQLite failures (and unexpected exceptions) into error values.
template <class R, class F>
R guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const sqlite::failure& e) {
    return e.err();
  } catch (const std::exception& e) {
    return error(errc::internal, e.what());
  }
}

}  // namespace

struct sqlite_store::impl {
  std::string path_;
  sqlite::open_options reader_opts_;
  // Reads run on pool_ (cfg.worker_threads); writes on one dedicated thread, so queued writes
  // never occupy the read workers. (Not a strand on pool_: chat4all::offload in GCC 12 corrupts
  // the reference count of a strand executor it captures; a thread_pool executor is safe.)
  asio::thread_pool pool_;
  asio::thread_pool writer_thread_{1};

  std::mutex writer_mu_;  // writer_thread_ already serialises writes; the mutex makes it explicit
  std::unique_ptr<sqlite::connection> writer_;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<sqlite::connection>> idle_readers_;

  // The message_ids in the messages table (see known_ids.hpp); null until migrate() loaded
  // it, and always when this process is not the only writer of the table.
  const bool sole_writer_;
  mutable std::mutex known_mu_;
  std::shared_ptr<sqlite::known_ids> known_;
  std::shared_ptr<sqlite::known_ids> growing_;  // being filled by grow_known()
  std::thread grower_;                          // its scan (grow_into)
  std::atomic<bool> closing_{false};
  const std::size_t filter_min_;

  std::shared_ptr<sqlite::known_ids> known() const {
    std::lock_guard lk(known_mu_);
    return known_;
  }

  // Adds every message_id in the table to `k`: in chunks of ids in key order, each chunk its
  // own short read transaction, so no reader holds the WAL back for the whole scan. Ids
  // committed between chunks are the writer's to add (see grow_known). False when the store
  // began closing first.
  bool scan_ids(sqlite::connection& c, sqlite::known_ids& k) {
    static constexpr const char* chunk_sql =
        "SELECT message_id FROM messages WHERE message_id > ?1 ORDER BY message_id LIMIT ?2";
    // A quarter of the smallest filter, at most 50,000 ids (tests with small filters see
    // several chunks).
    const auto chunk =
        static_cast<std::int64_t>(std::clamp<std::size_t>(filter_min_ / 4, 16, 50'000));
    std::string last;  // the empty blob sorts before every id
    for (;;) {
      if (closing_.load(std::memory_order_relaxed)) return false;
      std::int64_t n = 0;
      sqlite::transaction tx(c, sqlite::tx_kind::read);
      {
        auto st = c.prepare(chunk_sql);
        st.bind_blob(1, last).bind(2, chunk);
        while (st.step()) {
          const auto id = st.blob(0);
          k.add(uuid::from_raw(id));
          if (++n == chunk) last.assign(id);
        }
      }
      tx.commit();
      if (n < chunk) return true;
    }
  }

  // Writer thread, at startup: a filter holding every message_id in the table, with room to
  // grow. Sized from the largest rowid (rowids only grow, so it bounds the row count) rather
  // than count(*), which would read the whole table before the scan reads it again.
  void load_known(sqlite::connection& c) {
    static constexpr const char* rows_sql = "SELECT coalesce(max(id), 0) FROM messages";
    std::size_t n = 0;
    {
      auto st = c.prepare(rows_sql);
      if (st.step()) n = static_cast<std::size_t>(st.int64(0));
    }
    auto k = std::make_shared<sqlite::known_ids>(2 * n, filter_min_);
    scan_ids(c, *k);
    std::lock_guard lk(known_mu_);
    known_ = std::move(k);
  }

  // Writer thread, after the commit that inserted `ids`.
  template <class Ids>
  void remember(const Ids& ids) {
    std::shared_ptr<sqlite::known_ids> k, next;
    {
      std::lock_guard lk(known_mu_);
      k = known_;
      next = growing_;
    }
    if (!k) return;
    for (const auto& id : ids) k->add(id);
    if (next) {
      for (const auto& id : ids) next->add(id);
      return;
    }
    // Past its capacity the filter answers "maybe" more and more often: grow it, four times
    // over (each growth rescans the whole table: fewer, bigger steps cost less in all).
    if (k->added() > k->capacity() && k->capacity() < sqlite::known_ids::max_capacity)
      grow_known(4 * k->capacity());
  }

  // Writer thread. Builds a filter of `capacity` ids in the background while the writer goes
  // on (a scan of millions of ids on the writer stopped every insert for a second or more).
  // Nothing is missed: the new filter exists before the scan starts, and from then on
  // remember() adds every committed id to both filters; an id in both the scan and a later
  // add is set twice (harmless). Until the scan is done, the old filter answers.
  void grow_known(std::size_t capacity) {
    auto next = std::make_shared<sqlite::known_ids>(capacity, filter_min_);
    {
      std::lock_guard lk(known_mu_);
      growing_ = next;
    }
    if (grower_.joinable()) grower_.join();  // the last growth is over (growing_ was empty)
    grower_ = std::thread([this, next = std::move(next)] { grow_into(next); });
  }

  // The growth scan, on a thread of its own at the lowest priority (nice 19): under full
  // load it takes what the other threads leave (on 2 busy cores a 4 M-id scan took a whole
  // core for a second, and every request waited).
  void grow_into(const std::shared_ptr<sqlite::known_ids>& next) {
    name_this_thread("c4a-sql-grow");
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    bool done = false;
    try {
      sqlite::connection conn(path_, reader_opts_);
      done = scan_ids(conn, *next);
    } catch (const std::exception& e) {
      // The old filter keeps answering (more false positives, never a wrong "absent");
      // a later insert tries again.
      log::warn("sqlite: growing the message_id filter failed", {{"reason", e.what()}});
    }
    std::lock_guard lk(known_mu_);
    if (done) known_ = next;
    growing_.reset();
  }

  impl(std::string path, const storage_config& cfg, bool sole_writer, std::size_t filter_min)
      : path_(std::move(path)),
        pool_(static_cast<std::size_t>(std::max(cfg.worker_threads, 1))),
        sole_writer_(sole_writer),
        filter_min_(filter_min) {
    name_pool_threads(pool_, static_cast<std::size_t>(std::max(cfg.worker_threads, 1)),
                      "c4a-sql-read");
    name_pool_threads(writer_thread_, 1, "c4a-sql-writer");
    reader_opts_.synchronous = cfg.sqlite_synchronous;
    reader_opts_.busy_timeout_ms = cfg.busy_timeout_ms;
    reader_opts_.writer = false;
    sqlite::open_options w = reader_opts_;
    w.writer = true;
    try {
      auto parent = std::filesystem::path(path_).parent_path();
      if (!parent.empty()) std::filesystem::create_directories(parent);
      writer_ = std::make_unique<sqlite::connection>(path_, w);
    } catch (const std::exception& e) {
      pool_.join();
      writer_thread_.join();
      throw std::runtime_error("sqlite_store: cannot open " + path_ + ": " + e.what());
    }
  }

  ~impl() {
    closing_ = true;
    if (grower_.joinable()) grower_.join();
    pool_.join();
    writer_thread_.join();
    idle_readers_.clear();
    writer_.reset();
  }

  // A reader connection leased to one job; returned to the idle list afterwards.
  struct reader_lease {
    impl* owner;
    std::unique_ptr<sqlite::connection> conn;
    ~reader_lease() {
      if (!conn) return;
      std::lock_guard lk(owner->readers_mu_);
      owner->idle_readers_.push_back(std::move(conn));
    }
  };

  reader_lease lease_reader() {
    {
      std::lock_guard lk(readers_mu_);
      if (!idle_readers_.empty()) {
        auto c = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return {this, std::move(c)};
      }
    }
    // At most one reader per worker thread is ever open: a job holds one lease at a time.
    return {this, std::make_unique<sqlite::connection>(path_, reader_opts_)};
  }

  // write() and read() are deliberately not coroutines: they build the job and hand it to
  // offload (a coroutine taking everything by value), so nothing refers to `this` from a
  // coroutine frame of theirs.
  // Runs f(writer) on the writer thread. f returns result<T> and opens its own transaction.
  template <class F>
  auto write(F f) -> task<std::invoke_result_t<F&, sqlite::connection&>> {
    using R = std::invoke_result_t<F&, sqlite::connection&>;
    static_assert(is_result<R>::value);
    return offload(writer_thread_.get_executor(), [this, f = std::move(f)]() mutable -> R {
      std::lock_guard lk(writer_mu_);
      return guarded<R>([&]() -> R { return f(*writer_); });
    });
  }

  // Runs f(reader) on any worker, inside one read transaction (a consistent snapshot).
  template <class F>
  auto read(F f) -> task<std::invoke_result_t<F&, sqlite::connection&>> {
    using R = std::invoke_result_t<F&, sqlite::connection&>;
    static_assert(is_result<R>::value);
    return offload(pool_.get_executor(), [this, f = std::move(f)]() mutable -> R {
      return guarded<R>([&]() -> R {
        auto lease = lease_reader();
        sqlite::transaction tx(*lease.conn, sqlite::tx_kind::read);
        R r = f(*lease.conn);
        tx.commit();
        return r;
      });
    });
  }
};

sqlite_store::sqlite_store(std::string db_path, storage_config cfg, bool sole_message_writer,
                           std::size_t id_filter_min_ids)
    : impl_(std::make_unique<impl>(
          std::move(db_path), cfg, sole_message_writer,
          id_filter_min_ids != 0 ? id_filter_min_ids : sqlite::known_ids::default_min_capacity)) {}

sqlite_store::~sqlite_store() = default;

std::size_t sqlite_store::id_filter_capacity() const {
  const auto k = impl_->known();
  return k ? k->capacity() : 0;
}

task<result<int>> sqlite_store::migrate() {
  return impl_->write([i = impl_.get()](sqlite::connection& c) -> result<int> {
    const int applied = sqlite::apply_migrations(c);
    if (i->sole_writer_) i->load_known(c);
    return applied;
  });
}

task<result<void>> sqlite_store::ping() {
  return impl_->read([](sqlite::connection& c) -> result<void> {
    static constexpr const char* sql = "SELECT 1";
    auto st = c.prepare(sql);
    st.run();
    return ok;
  });
}

// ---- users ----

task<result<user>> sqlite_store::create_user(std::string username, std::string password_hash,
                                             timestamp_us now) {
  return impl_->write([username = std::move(username), password_hash = std::move(password_hash),
                       now](sqlite::connection& c) {
    return sqlite::create_user(c, username, password_hash, now);
  });
}

task<result<user>> sqlite_store::find_user_by_name(std::string username) {
  return impl_->read([username = std::move(username)](sqlite::connection& c) {
    return sqlite::find_user_by_name(c, username);
  });
}

task<result<user>> sqlite_store::find_user(user_id id) {
  return impl_->read([id](sqlite::connection& c) { return sqlite::find_user(c, id); });
}

task<result<std::vector<user_id>>> sqlite_store::existing_users(std::vector<user_id> ids) {
  return impl_->read([ids = std::move(ids)](sqlite::connection& c) -> result<std::vector<user_id>> {
    return sqlite::existing_users(c, ids);
  });
}

// ---- tokens ----

task<result<void>> sqlite_store::insert_refresh(refresh_token_record rec) {
  return impl_->write(
      [rec = std::move(rec)](sqlite::connection& c) { return sqlite::insert_refresh(c, rec); });
}

task<result<user_id>> sqlite_store::rotate_refresh(std::string old_hash,
                                                   refresh_token_record replacement,
                                                   timestamp_us now) {
  return impl_->write([old_hash = std::move(old_hash), replacement = std::move(replacement),
                       now](sqlite::connection& c) {
    return sqlite::rotate_refresh(c, old_hash, replacement, now);
  });
}

task<result<void>> sqlite_store::revoke_refresh(std::string token_hash) {
  return impl_->write([token_hash = std::move(token_hash)](sqlite::connection& c) {
    return sqlite::revoke_refresh(c, token_hash);
  });
}

task<result<void>> sqlite_store::revoke_access(std::string jti, timestamp_us expires_at) {
  return impl_->write([jti = std::move(jti), expires_at](sqlite::connection& c) {
    return sqlite::revoke_access(c, jti, expires_at);
  });
}

task<result<std::vector<std::string>>> sqlite_store::revoked_access(timestamp_us now) {
  return impl_->read([now](sqlite::connection& c) -> result<std::vector<std::string>> {
    return sqlite::revoked_access(c, now);
  });
}

// ---- conversations ----

task<result<conversation_store::create_outcome>> sqlite_store::create_conversation(
    conversation_type type, std::string name, std::string description, std::vector<user_id> members,
    timestamp_us now, events_of<create_outcome>) {
  // No outbox here: the embedded default publishes events itself (conversation_service).
  return impl_->write([type, name = std::move(name), description = std::move(description),
                       members = std::move(members), now](sqlite::connection& c) {
    return sqlite::create_conversation(c, type, name, description, members, now);
  });
}

task<result<conversation>> sqlite_store::find_conversation(conversation_id id) {
  return impl_->read([id](sqlite::connection& c) { return sqlite::find_conversation(c, id); });
}

task<result<page<conversation_summary>>> sqlite_store::list_conversations(user_id user, int limit,
                                                                          int offset) {
  return impl_->read(
      [user, limit, offset](sqlite::connection& c) -> result<page<conversation_summary>> {
        return sqlite::list_conversations(c, user, limit, offset);
      });
}

task<result<read_mark_result>> sqlite_store::mark_read(conversation_id conv, user_id member,
                                                       std::optional<seq_t> up_to, timestamp_us now,
                                                       events_of<read_mark_result>) {
  return impl_->write([conv, member, up_to, now](sqlite::connection& c) {
    return sqlite::mark_read(c, conv, member, up_to, now);
  });
}

// ---- messages ----

task<result<std::vector<message>>> sqlite_store::store_messages(std::vector<accepted_message> batch,
                                                                timestamp_us now) {
  return impl_->write([i = impl_.get(), batch = std::move(batch),
                       now](sqlite::connection& c) mutable -> result<std::vector<message>> {
    auto stored = sqlite::store_messages(c, batch, now);
    i->remember(stored | std::views::transform(&message::message_id));
    return stored;
  });
}

task<result<void>> sqlite_store::store_failed(accepted_message m, std::string reason,
                                              timestamp_us now) {
  return impl_->write([i = impl_.get(), m = std::move(m), reason = std::move(reason),
                       now](sqlite::connection& c) -> result<void> {
    auto r = sqlite::store_failed(c, m, reason, now);
    if (r) i->remember(std::vector<uuid>{m.message_id});
    return r;
  });
}

task<result<std::vector<std::optional<std::uint64_t>>>> sqlite_store::find_content_hashes(
    std::vector<uuid> ids) {
  using hashes = std::vector<std::optional<std::uint64_t>>;
  const auto k = impl_->known();
  if (!k) {
    auto all = [ids = std::move(ids)](sqlite::connection& c) -> result<hashes> {
      return sqlite::find_content_hashes(c, ids);
    };
    co_return co_await impl_->read(std::move(all));
  }
  // Only the ids the filter cannot rule out are looked up (usually none: no query, no hop
  // to the read pool).
  hashes out(ids.size());
  std::vector<uuid> maybe;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!k->may_contain(ids[i])) continue;
    maybe.push_back(ids[i]);
    where.push_back(i);
  }
  if (maybe.empty()) co_return out;
  auto look_up = [maybe = std::move(maybe)](sqlite::connection& c) -> result<hashes> {
    return sqlite::find_content_hashes(c, maybe);
  };
  auto found = co_await impl_->read(std::move(look_up));
  if (!found) co_return std::move(found).err();
  for (std::size_t j = 0; j < where.size(); ++j) out[where[j]] = (*found)[j];
  co_return out;
}

task<result<message_with_history>> sqlite_store::get_message(uuid id) {
  return impl_->read([id](sqlite::connection& c) { return sqlite::get_message(c, id); });
}

task<result<history_page>> sqlite_store::history(history_query q) {
  return impl_->read(
      [q](sqlite::connection& c) -> result<history_page> { return sqlite::history(c, q); });
}

// ---- uploads ----

task<result<void>> sqlite_store::create_upload(upload_record rec, owner_limits limits) {
  return impl_->write([rec = std::move(rec), limits](sqlite::connection& c) {
    return sqlite::create_upload(c, rec, limits);
  });
}

task<result<upload_record>> sqlite_store::find_upload(uuid id) {
  return impl_->read([id](sqlite::connection& c) { return sqlite::find_upload(c, id); });
}

task<result<upload_chunk>> sqlite_store::record_chunk(uuid id, upload_chunk chunk,
                                                      timestamp_us now) {
  return impl_->write([id, chunk = std::move(chunk), now](sqlite::connection& c) {
    return sqlite::record_chunk(c, id, chunk, now);
  });
}

task<result<bool>> sqlite_store::transition_upload(uuid id, upload_status from, upload_status to,
                                                   std::string reason, std::string file_sha256,
                                                   std::string detected_mime, timestamp_us now) {
  return impl_->write([id, from, to, reason = std::move(reason),
                       file_sha256 = std::move(file_sha256),
                       detected_mime = std::move(detected_mime), now](sqlite::connection& c) {
    return sqlite::transition_upload(c, id, from, to, reason, file_sha256, detected_mime, now);
  });
}

task<result<std::vector<upload_record>>> sqlite_store::expired_uploads(timestamp_us now,
                                                                       int limit) {
  return impl_->read([now, limit](sqlite::connection& c) -> result<std::vector<upload_record>> {
    return sqlite::expired_uploads(c, now, limit);
  });
}

}  // namespace chat4all
