// Messages: the batched, idempotent write path and the reads (history, one message).

#include <boost/json.hpp>

#include <algorithm>
#include <deque>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "adapters/store/postgres/pg_ops.hpp"

namespace chat4all::pg {

namespace {

// Row locks in id order: two routers storing batches that share conversations take them in
// the same order and cannot deadlock. NO KEY UPDATE does not block foreign-key checks.
constexpr const char* lock_convs_sql =
    "SELECT id, last_seq, last_activity_at FROM conversations WHERE id = ANY($1::bigint[]) "
    "ORDER BY id FOR NO KEY UPDATE";
// Runs after the locks: a concurrent writer of the same conversations has committed by now,
// so its messages are visible here and are skipped without consuming a seq.
constexpr const char* stored_ids_sql =
    "SELECT message_id FROM messages WHERE message_id = ANY($1::uuid[])";
// One statement for the whole batch. ON CONFLICT names the message_id index only: a
// (conversation_id, seq) collision would be a bug and still fails the batch.
constexpr const char* insert_sql = R"sql(
INSERT INTO messages(conversation_id, seq, message_id, sender_id, payload, channels, status,
                     content_hash, created_at, delivered_at)
SELECT d.conversation_id, d.seq, d.message_id, d.sender_id, d.payload, d.channels, 1,
       d.content_hash, d.created_at, $9
FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[], $5::text[], $6::text[],
            $7::bigint[], $8::bigint[])
  AS d(conversation_id, seq, message_id, sender_id, payload, channels, content_hash, created_at)
ON CONFLICT (message_id) DO NOTHING
)sql";
constexpr const char* update_counters_sql =
    "UPDATE conversations c SET last_seq = d.last_seq, last_activity_at = d.at "
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(id, last_seq, at) "
    "WHERE c.id = d.id";

// store_failed: one message, FAILED, with history row n = 1 (see pg_migrations.cpp).
constexpr const char* lock_conv_sql =
    "SELECT last_seq, last_activity_at FROM conversations WHERE id = $1 FOR NO KEY UPDATE";
constexpr const char* insert_failed_sql = R"sql(
INSERT INTO messages(conversation_id, seq, message_id, sender_id, payload, channels, status,
                     content_hash, created_at, delivered_at)
VALUES ($1, $2, $3, $4, $5, $6, 3, $7, $8, $9)
ON CONFLICT (message_id) DO NOTHING
)sql";
constexpr const char* add_failed_event_sql =
    "INSERT INTO message_status_history(conversation_id, seq, n, status, channel, detail, at) "
    "VALUES ($1, $2, 1, 3, '', $3, $4)";
constexpr const char* update_counter_sql =
    "UPDATE conversations SET last_seq = $2, last_activity_at = $3 WHERE id = $1";

constexpr const char* hashes_sql =
    "SELECT message_id, content_hash FROM messages WHERE message_id = ANY($1::uuid[])";

#define CHAT4ALL_MESSAGE_COLUMNS                                                               \
  "m.message_id, m.conversation_id, m.seq, m.sender_id, coalesce(u.username, ''), m.payload, " \
  "m.channels, m.status, m.content_hash, m.created_at, m.delivered_at "

// One statement (one snapshot): the message, read_by, and its later history events, one row
// per event (or one row with NULL event columns).
constexpr const char* message_by_id_sql =
    "SELECT " CHAT4ALL_MESSAGE_COLUMNS
    ", (SELECT count(*) FROM conversation_members x WHERE x.conversation_id = m.conversation_id "
    "   AND x.user_id <> m.sender_id AND x.last_read_seq >= m.seq), "
    "h.status, h.channel, h.detail, h.at, h.n "
    "FROM messages m LEFT JOIN users u ON u.id = m.sender_id "
    "LEFT JOIN message_status_history h ON h.conversation_id = m.conversation_id "
    "AND h.seq = m.seq WHERE m.message_id = $1 ORDER BY h.n";
constexpr const char* history_desc_sql =
    "SELECT " CHAT4ALL_MESSAGE_COLUMNS
    "FROM messages m LEFT JOIN users u ON u.id = m.sender_id "
    "WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq < $3 "
    "ORDER BY m.seq DESC LIMIT $4 OFFSET $5";
constexpr const char* history_asc_sql =
    "SELECT " CHAT4ALL_MESSAGE_COLUMNS
    "FROM messages m LEFT JOIN users u ON u.id = m.sender_id "
    "WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq < $3 "
    "ORDER BY m.seq ASC LIMIT $4 OFFSET $5";

#undef CHAT4ALL_MESSAGE_COLUMNS

// A concurrent writer may store one of our ids under another conversation between our
// existence check and our insert (the conversation locks do not cover it): the insert then
// skips a row that already has a seq. The whole transaction is retried; the retry sees it.
constexpr int max_attempts = 3;

message read_message(const rows& r, int i) {
  message m;
  m.message_id = r.uuid_at(i, 0);
  m.conversation = r.int64(i, 1);
  m.seq = r.int64(i, 2);
  m.sender = r.int64(i, 3);
  m.sender_username = r.text(i, 4);
  m.payload_json = r.text(i, 5);
  m.channels = decode_channels(r.text(i, 6));
  m.status = static_cast<message_status>(r.int64(i, 7));
  m.content_hash = static_cast<std::uint64_t>(r.int64(i, 8));
  m.created_at = r.int64(i, 9);
  return m;
}

struct counter {
  seq_t last_seq = 0;
  timestamp_us last_activity = 0;
  bool dirty = false;
};

// One attempt; nullopt when a concurrent writer got in the way (see max_attempts).
std::optional<std::vector<message>> try_store(connection& c,
                                              const std::vector<const accepted_message*>& batch,
                                              const std::vector<conversation_id>& conv_ids,
                                              timestamp_us now) {
  transaction tx(c);
  std::unordered_map<conversation_id, counter> counters;
  {
    auto r = c.query(lock_convs_sql, params().add_array(conv_ids));
    for (int i = 0; i < r.size(); ++i) counters[r.int64(i, 0)] = {r.int64(i, 1), r.int64(i, 2)};
  }
  std::unordered_set<uuid, uuid_hash> stored_ids;
  {
    std::vector<uuid> ids;
    ids.reserve(batch.size());
    for (const auto* m : batch)
      if (counters.count(m->conversation)) ids.push_back(m->message_id);
    if (!ids.empty()) {
      auto r = c.query(stored_ids_sql, params().add_array(ids));
      for (int i = 0; i < r.size(); ++i) stored_ids.insert(r.uuid_at(i, 0));
    }
  }

  std::vector<message> out;
  out.reserve(batch.size());
  std::vector<std::int64_t> conv_col, seq_col, sender_col, hash_col, at_col;
  std::vector<uuid> id_col;
  std::vector<std::string_view> payload_col, channels_col;
  std::deque<std::string> channels_json;  // owns the non-empty channel lists (stable addresses)
  for (const auto* in : batch) {
    auto it = counters.find(in->conversation);
    // A conversation that does not exist cannot take messages; skipping (rather than failing
    // the batch) keeps one bad record from blocking every message behind it.
    if (it == counters.end() || stored_ids.count(in->message_id)) continue;
    counter& k = it->second;
    const seq_t seq = ++k.last_seq;
    k.last_activity = std::max(k.last_activity, in->accepted_at);
    k.dirty = true;
    conv_col.push_back(in->conversation);
    seq_col.push_back(seq);
    id_col.push_back(in->message_id);
    sender_col.push_back(in->sender);
    payload_col.push_back(in->payload_json);
    if (in->channels.empty()) {
      channels_col.push_back("[]");
    } else {
      channels_json.push_back(encode_channels(in->channels));
      channels_col.push_back(channels_json.back());
    }
    hash_col.push_back(static_cast<std::int64_t>(in->content_hash));
    at_col.push_back(in->accepted_at);

    message m;
    m.message_id = in->message_id;
    m.conversation = in->conversation;
    m.sender = in->sender;
    m.seq = seq;
    m.payload_json = in->payload_json;
    m.channels = in->channels;
    m.status = message_status::delivered;
    m.created_at = in->accepted_at;
    m.content_hash = in->content_hash;
    out.push_back(std::move(m));
  }
  if (out.empty()) {
    tx.commit();
    return out;
  }
  params p;
  p.add_array(conv_col).add_array(seq_col).add_array(id_col).add_array(sender_col);
  p.add_text_array(payload_col).add_text_array(channels_col).add_array(hash_col).add_array(at_col);
  p.add(now);
  auto ins = c.query(insert_sql, p);
  if (ins.affected() != static_cast<std::int64_t>(out.size())) return std::nullopt;  // rollback

  std::vector<std::int64_t> ids, seqs, ats;
  for (const auto& [id, k] : counters) {
    if (!k.dirty) continue;
    ids.push_back(id);
    seqs.push_back(k.last_seq);
    ats.push_back(k.last_activity);
  }
  c.query(update_counters_sql, params().add_array(ids).add_array(seqs).add_array(ats));
  tx.commit();
  return out;
}

}  // namespace

std::string preview_of(std::string_view payload_json) {
  boost::system::error_code ec;
  auto v = boost::json::parse(payload_json, ec);
  if (ec || !v.is_object()) return "[file]";
  const auto& o = v.as_object();
  auto type = o.if_contains("type");
  if (!type || !type->is_string() || type->as_string() != "text") return "[file]";
  auto content = o.if_contains("content");
  if (!content || !content->is_string()) return {};
  std::string_view s = content->as_string();
  // The first 100 code points: count UTF-8 lead bytes, never split a sequence.
  std::size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && chars++ == 100) break;
  }
  return std::string(s.substr(0, i));
}

std::vector<message> store_messages(connection& c, const std::vector<accepted_message>& batch,
                                    timestamp_us now) {
  if (batch.empty()) return {};
  // The same id twice in one batch: the first occurrence wins.
  std::vector<const accepted_message*> unique;
  unique.reserve(batch.size());
  std::unordered_set<uuid, uuid_hash> seen;
  std::vector<conversation_id> conv_ids;
  for (const auto& m : batch) {
    if (!seen.insert(m.message_id).second) continue;
    unique.push_back(&m);
    conv_ids.push_back(m.conversation);
  }
  std::sort(conv_ids.begin(), conv_ids.end());
  conv_ids.erase(std::unique(conv_ids.begin(), conv_ids.end()), conv_ids.end());
  for (int attempt = 0; attempt < max_attempts; ++attempt)
    if (auto out = try_store(c, unique, conv_ids, now)) return std::move(*out);
  throw failure(error(errc::unavailable,
                      "postgres: store_messages: concurrent writers of the "
                      "same message ids, try again"));
}

result<void> store_failed(connection& c, const accepted_message& in, const std::string& reason,
                          timestamp_us now) {
  transaction tx(c);
  auto conv = c.query(lock_conv_sql, params().add(in.conversation));
  if (conv.empty()) return error(errc::not_found, "conversation not found");
  // After the lock: a concurrent writer of this conversation has committed; an id it stored
  // is seen here (no seq consumed). The id stored under another conversation meanwhile is
  // caught by ON CONFLICT below.
  if (!c.query(stored_ids_sql, params().add_array(std::vector<uuid>{in.message_id})).empty()) {
    tx.commit();
    return ok;
  }
  const seq_t seq = conv.int64(0, 0) + 1;
  const std::string channels = encode_channels(in.channels);
  params p;
  p.add(in.conversation).add(seq).add(in.message_id).add(in.sender).add(in.payload_json);
  p.add(channels).add(static_cast<std::int64_t>(in.content_hash)).add(in.accepted_at).add(now);
  if (c.query(insert_failed_sql, p).affected() == 0) {
    tx.commit();  // stored concurrently under another conversation: nothing to do
    return ok;
  }
  c.query(add_failed_event_sql, params().add(in.conversation).add(seq).add(reason).add(now));
  c.query(update_counter_sql,
          params().add(in.conversation).add(seq).add(std::max(conv.int64(0, 1), in.accepted_at)));
  tx.commit();
  return ok;
}

std::vector<std::optional<std::uint64_t>> find_content_hashes(connection& c,
                                                              const std::vector<uuid>& ids) {
  std::vector<std::optional<std::uint64_t>> out(ids.size());
  if (ids.empty()) return out;
  auto r = c.query(hashes_sql, params().add_array(ids));
  std::unordered_map<uuid, std::uint64_t, uuid_hash> found;
  for (int i = 0; i < r.size(); ++i)
    found.emplace(r.uuid_at(i, 0), static_cast<std::uint64_t>(r.int64(i, 1)));
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (auto it = found.find(ids[i]); it != found.end()) out[i] = it->second;
  return out;
}

result<message_with_history> get_message(connection& c, const uuid& id) {
  auto r = c.query(message_by_id_sql, params().add(id));
  if (r.empty()) return error(errc::not_found, "message not found");
  message_with_history out;
  out.msg = read_message(r, 0);
  // The first two events are columns of the message row (see pg_migrations.cpp).
  out.history.push_back({message_status::accepted, {}, {}, out.msg.created_at});
  out.history.push_back({message_status::delivered, {}, {}, r.int64(0, 10)});
  out.read_by = r.int64(0, 11);
  for (int i = 0; i < r.size(); ++i) {
    if (r.is_null(i, 12)) continue;
    status_event e;
    e.status = static_cast<message_status>(r.int64(i, 12));
    e.channel = r.text(i, 13);
    e.detail = r.text(i, 14);
    e.at = r.int64(i, 15);
    // n = 1: a message that failed before delivery; its FAILED event replaces DELIVERED.
    if (r.int64(i, 16) == 1)
      out.history.back() = std::move(e);
    else
      out.history.push_back(std::move(e));
  }
  return out;
}

history_page history(connection& c, const history_query& q) {
  history_page out;
  const int limit = std::max(q.limit, 0);
  const seq_t lo = q.after_seq.value_or(std::numeric_limits<seq_t>::min());
  const seq_t hi = q.before_seq.value_or(std::numeric_limits<seq_t>::max());
  // One row more than asked tells whether there is more.
  auto r = c.query(q.after_seq ? history_asc_sql : history_desc_sql,
                   params()
                       .add(q.conversation)
                       .add(lo)
                       .add(hi)
                       .add(static_cast<std::int64_t>(limit) + 1)
                       .add(static_cast<std::int64_t>(std::max(q.offset, 0))));
  const int n = std::min(r.size(), limit);
  out.has_more = r.size() > limit;
  out.messages.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out.messages.push_back(read_message(r, i));
  return out;
}

}  // namespace chat4all::pg
