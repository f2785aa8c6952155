// Messages: the batched, idempotent write path and the reads (history, one message).

#include <boost/json.hpp>

#include <limits>
#include <unordered_map>

#include "adapters/store/sqlite/ops.hpp"

namespace chat4all::sqlite {

namespace {

constexpr const char* conv_counter_sql =
    "SELECT last_seq, last_activity_at FROM conversations WHERE id = ?1";
// ON CONFLICT names the message_id index only: a duplicate id is skipped (idempotency), while
// any other violation (a seq collision would be a bug) still fails the batch.
constexpr const char* insert_message_sql =
    "INSERT INTO messages(conversation_id, seq, message_id, sender_id, payload, channels, "
    "status, content_hash, created_at, delivered_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
    "ON CONFLICT(message_id) DO NOTHING";
constexpr const char* update_counter_sql =
    "UPDATE conversations SET last_seq = ?2, last_activity_at = ?3 WHERE id = ?1";

// The FAILED event of a message that was never delivered is history row n = 1: it takes the
// place of the DELIVERED event that delivered_at stands for otherwise (see migrations.cpp).
constexpr const char* add_failed_event_sql =
    "INSERT INTO message_status_history(conversation_id, seq, n, status, channel, detail, at) "
    "VALUES (?1, ?2, 1, ?3, '', ?4, ?5)";

constexpr const char* hash_by_id_sql = "SELECT content_hash FROM messages WHERE message_id = ?1";

#define CHAT4ALL_MESSAGE_COLUMNS                                                               \
  "m.message_id, m.conversation_id, m.seq, m.sender_id, coalesce(u.username, ''), m.payload, " \
  "m.channels, m.status, m.content_hash, m.created_at, m.delivered_at "

constexpr const char* message_by_id_sql =
    "SELECT " CHAT4ALL_MESSAGE_COLUMNS
    "FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.message_id = ?1";
constexpr const char* history_rows_sql =
    "SELECT status, channel, detail, at, n FROM message_status_history "
    "WHERE conversation_id = ?1 AND seq = ?2 ORDER BY n";
constexpr const char* read_by_sql =
    "SELECT count(*) FROM conversation_members "
    "WHERE conversation_id = ?1 AND user_id <> ?2 AND last_read_seq >= ?3";
constexpr const char* history_desc_sql =
    "SELECT " CHAT4ALL_MESSAGE_COLUMNS
    "FROM messages m LEFT JOIN users u ON u.id = m.sender_id "
    "WHERE m.conversation_id = ?1 AND m.seq > ?2 AND m.seq < ?3 "
    "ORDER BY m.seq DESC LIMIT ?4 OFFSET ?5";
constexpr const char* history_asc_sql =
    "SELECT " CHAT4ALL_MESSAGE_COLUMNS
    "FROM messages m LEFT JOIN users u ON u.id = m.sender_id "
    "WHERE m.conversation_id = ?1 AND m.seq > ?2 AND m.seq < ?3 "
    "ORDER BY m.seq ASC LIMIT ?4 OFFSET ?5";

#undef CHAT4ALL_MESSAGE_COLUMNS

message read_message(const statement& st) {
  message m;
  m.message_id = uuid::from_raw(st.blob(0));
  m.conversation = st.int64(1);
  m.seq = st.int64(2);
  m.sender = st.int64(3);
  m.sender_username = st.text(4);
  m.payload_json = st.text(5);
  m.channels = decode_channels(st.text(6));
  m.status = static_cast<message_status>(st.int64(7));
  m.content_hash = static_cast<std::uint64_t>(st.int64(8));
  m.created_at = st.int64(9);
  return m;
}

struct counter {
  bool exists = false;
  bool dirty = false;
  seq_t last_seq = 0;
  timestamp_us last_activity = 0;
};

}  // namespace

std::vector<message> store_messages(connection& c, std::vector<accepted_message>& batch,
                                    timestamp_us now) {
  std::vector<message> stored;
  stored.reserve(batch.size());
  if (batch.empty()) return stored;
  // The counters of the batch's conversations are read once and written back once: inside
  // the single writer transaction nobody else can move them.
  std::unordered_map<conversation_id, counter> counters;
  const auto delivered = static_cast<std::int64_t>(message_status::delivered);

  transaction tx(c, tx_kind::write);
  for (auto& in : batch) {
    auto [it, fresh] = counters.try_emplace(in.conversation);
    counter& k = it->second;
    if (fresh) {
      auto st = c.prepare(conv_counter_sql);
      st.bind(1, in.conversation);
      if (st.step()) {
        k.exists = true;
        k.last_seq = st.int64(0);
        k.last_activity = st.int64(1);
      }
    }
    // A conversation that does not exist cannot take messages; skipping (rather than failing
    // the batch) keeps one bad record from blocking every message behind it.
    if (!k.exists) continue;

    const seq_t seq = k.last_seq + 1;
    std::string channels = encode_channels(in.channels);
    {
      auto st = c.prepare(insert_message_sql);
      st.bind(1, in.conversation)
          .bind(2, seq)
          .bind_blob(3, in.message_id.raw())
          .bind(4, in.sender)
          .bind_text(5, in.payload_json)
          .bind_text(6, channels)
          .bind(7, delivered)
          .bind(8, static_cast<std::int64_t>(in.content_hash))
          .bind(9, in.accepted_at)
          .bind(10, now);
      st.run();
    }
    if (c.changes() == 0) continue;  // message_id already stored: idempotent skip
    k.last_seq = seq;
    k.last_activity = std::max(k.last_activity, in.accepted_at);
    k.dirty = true;

    message m;
    m.message_id = in.message_id;
    m.conversation = in.conversation;
    m.sender = in.sender;
    m.seq = seq;
    m.payload_json = std::move(in.payload_json);  // the statement no longer refers to it
    m.channels = std::move(in.channels);
    m.status = message_status::delivered;
    m.created_at = in.accepted_at;
    m.content_hash = in.content_hash;
    stored.push_back(std::move(m));
  }
  for (const auto& [id, k] : counters) {
    if (!k.dirty) continue;
    c.prepare(update_counter_sql).bind(1, id).bind(2, k.last_seq).bind(3, k.last_activity).run();
  }
  tx.commit();
  return stored;
}

result<void> store_failed(connection& c, const accepted_message& in, const std::string& reason,
                          timestamp_us now) {
  transaction tx(c, tx_kind::write);
  seq_t last_seq = 0;
  timestamp_us last_activity = 0;
  {
    auto st = c.prepare(conv_counter_sql);
    st.bind(1, in.conversation);
    if (!st.step()) return error(errc::not_found, "conversation not found");
    last_seq = st.int64(0);
    last_activity = st.int64(1);
  }
  const seq_t seq = last_seq + 1;
  const auto failed = static_cast<std::int64_t>(message_status::failed);
  {
    // delivered_at (NOT NULL) holds the failure time; the n = 1 row below says what it was.
    const std::string channels = encode_channels(in.channels);  // bound without a copy
    auto st = c.prepare(insert_message_sql);
    st.bind(1, in.conversation)
        .bind(2, seq)
        .bind_blob(3, in.message_id.raw())
        .bind(4, in.sender)
        .bind_text(5, in.payload_json)
        .bind_text(6, channels)
        .bind(7, failed)
        .bind(8, static_cast<std::int64_t>(in.content_hash))
        .bind(9, in.accepted_at)
        .bind(10, now);
    st.run();
  }
  if (c.changes() == 0) return ok;  // already stored: idempotent, nothing written
  c.prepare(add_failed_event_sql)
      .bind(1, in.conversation)
      .bind(2, seq)
      .bind(3, failed)
      .bind_text(4, reason)
      .bind(5, now)
      .run();
  c.prepare(update_counter_sql)
      .bind(1, in.conversation)
      .bind(2, seq)
      .bind(3, std::max(last_activity, in.accepted_at))
      .run();
  tx.commit();
  return ok;
}

std::vector<std::optional<std::uint64_t>> find_content_hashes(connection& c,
                                                              const std::vector<uuid>& ids) {
  std::vector<std::optional<std::uint64_t>> out;
  out.reserve(ids.size());
  for (const auto& id : ids) {
    auto st = c.prepare(hash_by_id_sql);
    st.bind_blob(1, id.raw());
    if (st.step())
      out.emplace_back(static_cast<std::uint64_t>(st.int64(0)));
    else
      out.emplace_back(std::nullopt);
  }
  return out;
}

result<message_with_history> get_message(connection& c, const uuid& id) {
  message_with_history out;
  {
    auto st = c.prepare(message_by_id_sql);
    st.bind_blob(1, id.raw());
    if (!st.step()) return error(errc::not_found, "message not found");
    out.msg = read_message(st);
    // The first two events are columns of the message row (see migrations.cpp).
    out.history.push_back({message_status::accepted, {}, {}, out.msg.created_at});
    out.history.push_back({message_status::delivered, {}, {}, st.int64(10)});
  }
  {
    auto st = c.prepare(history_rows_sql);
    st.bind(1, out.msg.conversation).bind(2, out.msg.seq);
    while (st.step()) {
      status_event e;
      e.status = static_cast<message_status>(st.int64(0));
      e.channel = st.text(1);
      e.detail = st.text(2);
      e.at = st.int64(3);
      // n = 1: a message that failed before delivery; its FAILED event replaces DELIVERED.
      if (st.int64(4) == 1)
        out.history.back() = std::move(e);
      else
        out.history.push_back(std::move(e));
    }
  }
  auto st = c.prepare(read_by_sql);
  st.bind(1, out.msg.conversation).bind(2, out.msg.sender).bind(3, out.msg.seq);
  if (st.step()) out.read_by = st.int64(0);
  return out;
}

history_page history(connection& c, const history_query& q) {
  history_page out;
  const int limit = std::max(q.limit, 0);
  const seq_t lo = q.after_seq.value_or(std::numeric_limits<seq_t>::min());
  const seq_t hi = q.before_seq.value_or(std::numeric_limits<seq_t>::max());
  auto st = c.prepare(q.after_seq ? history_asc_sql : history_desc_sql);
  // One row more than asked tells whether there is more.
  st.bind(1, q.conversation)
      .bind(2, lo)
      .bind(3, hi)
      .bind(4, static_cast<std::int64_t>(limit) + 1)
      .bind(5, std::max(q.offset, 0));
  out.messages.reserve(static_cast<std::size_t>(std::min(limit, 1000)));
  while (st.step()) {
    if (static_cast<int>(out.messages.size()) == limit) {
      out.has_more = true;
      break;
    }
    out.messages.push_back(read_message(st));
  }
  return out;
}

}  // namespace chat4all::sqlite
