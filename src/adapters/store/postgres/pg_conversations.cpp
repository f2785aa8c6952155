// Conversations, membership, the conversation list and read marks.

#include <algorithm>
#include <string>

#include "adapters/store/postgres/pg_ops.hpp"

namespace chat4all::pg {

namespace {

// A private pair that already exists returns no row (ON CONFLICT waits for a concurrent
// creator to commit, so the lookup that follows finds its row).
constexpr const char* insert_conv_sql =
    "INSERT INTO conversations(type, name, description, created_at, last_seq, "
    "last_activity_at, member_count, private_pair) VALUES ($1, $2, $3, $4, 0, $4, $5, $6) "
    "ON CONFLICT (private_pair) DO NOTHING RETURNING id";
constexpr const char* conv_by_pair_sql = "SELECT id FROM conversations WHERE private_pair = $1";
constexpr const char* insert_members_sql =
    "INSERT INTO conversation_members(conversation_id, user_id, last_read_seq, joined_at) "
    "SELECT $1, u, 0, $3 FROM unnest($2::bigint[]) AS u";
constexpr const char* conv_with_members_sql =
    "SELECT c.type, c.name, c.description, c.created_at, m.user_id "
    "FROM conversations c LEFT JOIN conversation_members m ON m.conversation_id = c.id "
    "WHERE c.id = $1 ORDER BY m.user_id";

// One statement. The page is chosen (sorted, limited) first, so the per-row work (unread
// count, last message) runs only for the rows of the page. `total` comes from the outer
// count, so an empty page (offset past the end) still yields one row carrying it. The
// preview is cut from the payload in C++ (pg_messages.cpp: preview_of), which also copes
// with a payload that is not valid JSON.
constexpr const char* list_sql = R"sql(
WITH page AS (
  SELECT c.id, c.type, c.name, c.created_at, c.member_count, c.last_seq, c.last_activity_at,
         cm.last_read_seq
  FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
  WHERE cm.user_id = $1
  ORDER BY c.last_activity_at DESC, c.id DESC
  LIMIT $2 OFFSET $3
), items AS (
  SELECT p.id, p.type, p.name, p.created_at, p.member_count, p.last_activity_at,
         CASE WHEN p.last_seq > p.last_read_seq THEN
           (SELECT count(*) FROM messages u
            WHERE u.conversation_id = p.id AND u.seq > p.last_read_seq AND u.sender_id <> $1)
         ELSE 0 END AS unread,
         m.message_id, m.seq, m.sender_id, m.payload, m.created_at AS message_created_at
  FROM page p LEFT JOIN messages m ON m.conversation_id = p.id AND m.seq = p.last_seq
)
SELECT t.total, i.id, i.type, i.name, i.created_at, i.member_count, i.unread,
       i.message_id, i.seq, i.sender_id, i.payload, i.message_created_at
FROM (SELECT count(*) AS total FROM conversation_members WHERE user_id = $1) t
LEFT JOIN items i ON true
ORDER BY i.last_activity_at DESC, i.id DESC
)sql";

// Locks the conversation row: read marks of one conversation serialise, so that two members
// reading at once both see each other's marks (a group message becomes READ exactly when the
// last of them reads it).
constexpr const char* conv_seq_lock_sql =
    "SELECT last_seq FROM conversations WHERE id = $1 FOR NO KEY UPDATE";
constexpr const char* member_mark_sql =
    "SELECT last_read_seq FROM conversation_members WHERE conversation_id = $1 AND user_id = $2";
constexpr const char* set_mark_sql =
    "UPDATE conversation_members SET last_read_seq = $3 "
    "WHERE conversation_id = $1 AND user_id = $2";
// Messages of others in the newly read range: how many, and which of them every member except
// their sender has now read (for a private conversation that is just the reader). Those become
// READ with a history row. Runs after the mark moved.
constexpr const char* newly_read_sql = R"sql(
WITH newly AS (
  SELECT m.seq, m.message_id, m.sender_id, m.status FROM messages m
  WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq <= $3 AND m.sender_id <> $4
), became AS (
  UPDATE messages m SET status = 2
  FROM newly r
  WHERE m.conversation_id = $1 AND m.seq = r.seq AND r.status IN (0, 1)
    AND NOT EXISTS (SELECT 1 FROM conversation_members x
                    WHERE x.conversation_id = $1 AND x.user_id <> r.sender_id
                      AND x.last_read_seq < r.seq)
  RETURNING m.seq, m.message_id
), history AS (
  INSERT INTO message_status_history(conversation_id, seq, n, status, channel, detail, at)
  SELECT $1, b.seq,
         coalesce((SELECT max(h.n) FROM message_status_history h
                   WHERE h.conversation_id = $1 AND h.seq = b.seq), 1) + 1,
         2, '', '', $5
  FROM became b
)
SELECT (SELECT count(*) FROM newly), b.seq, b.message_id
FROM (SELECT 1) one LEFT JOIN became b ON true
ORDER BY b.seq
)sql";

std::string private_pair_key(const std::vector<user_id>& members) {
  return std::to_string(members.front()) + ":" + std::to_string(members.back());
}

conversation_type parse_type(std::string_view t) {
  return t == "group" ? conversation_type::group : conversation_type::private_chat;
}

}  // namespace

result<conversation> find_conversation(connection& c, conversation_id id) {
  auto r = c.query(conv_with_members_sql, params().add(id));
  if (r.empty()) return error(errc::not_found, "conversation not found");
  conversation conv;
  conv.id = id;
  conv.type = parse_type(r.text(0, 0));
  conv.name = r.text(0, 1);
  conv.description = r.text(0, 2);
  conv.created_at = r.int64(0, 3);
  for (int i = 0; i < r.size(); ++i)
    if (!r.is_null(i, 4)) conv.member_ids.push_back(r.int64(i, 4));
  return conv;
}

result<conversation_store::create_outcome> create_conversation(
    connection& c, conversation_type type, const std::string& name, const std::string& description,
    std::vector<user_id> members, timestamp_us now,
    const events_of<conversation_store::create_outcome>& events) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  if (type == conversation_type::private_chat && members.size() != 2)
    return error(errc::invalid_input, "a private conversation has exactly 2 members");
  if (members.empty()) return error(errc::invalid_input, "a conversation needs members");

  std::string pair;
  if (type == conversation_type::private_chat) pair = private_pair_key(members);
  transaction tx(c);
  params p;
  p.add(std::string_view(to_string(type))).add(name).add(description).add(now);
  p.add(static_cast<std::int64_t>(members.size()));
  if (pair.empty())
    p.add_null();
  else
    p.add(pair);
  auto r = c.query(insert_conv_sql, p);
  if (r.empty()) {
    // The private pair exists (possibly created by a concurrent call that just committed).
    tx.commit();
    auto existing = c.query(conv_by_pair_sql, params().add(pair));
    if (existing.empty()) return error(errc::unavailable, "private conversation vanished");
    auto conv = find_conversation(c, existing.int64(0, 0));
    if (!conv) return std::move(conv).err();
    return conversation_store::create_outcome{std::move(*conv), false};
  }
  conversation conv;
  conv.id = r.int64(0, 0);
  conv.type = type;
  conv.name = name;
  conv.description = description;
  conv.created_at = now;
  c.query(insert_members_sql, params().add(conv.id).add_array(members).add(now));
  conv.member_ids = std::move(members);
  conversation_store::create_outcome out{std::move(conv), true};
  if (events) outbox_change_events(c, out.conv.id, events(out), now);
  tx.commit();
  return out;
}

page<conversation_summary> list_conversations(connection& c, user_id user, int limit, int offset) {
  page<conversation_summary> out;
  limit = std::max(limit, 0);
  offset = std::max(offset, 0);
  auto r = c.query(list_sql, params()
                                 .add(user)
                                 .add(static_cast<std::int64_t>(limit))
                                 .add(static_cast<std::int64_t>(offset)));
  out.items.reserve(static_cast<std::size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) {
    out.total = r.int64(i, 0);
    if (r.is_null(i, 1)) continue;  // the one row of an empty page
    conversation_summary s;
    s.id = r.int64(i, 1);
    s.type = parse_type(r.text(i, 2));
    s.name = r.text(i, 3);
    s.created_at = r.int64(i, 4);
    s.member_count = r.int64(i, 5);
    s.unread_count = r.int64(i, 6);
    if (!r.is_null(i, 7)) {
      last_message_summary lm;
      lm.message_id = r.uuid_at(i, 7);
      lm.seq = r.int64(i, 8);
      lm.sender = r.int64(i, 9);
      lm.preview = preview_of(r.text(i, 10));
      lm.created_at = r.int64(i, 11);
      s.last_message = std::move(lm);
    }
    out.items.push_back(std::move(s));
  }
  return out;
}

result<read_mark_result> mark_read(connection& c, conversation_id conv, user_id member,
                                   std::optional<seq_t> up_to, timestamp_us now,
                                   const events_of<read_mark_result>& events) {
  transaction tx(c);
  auto cr = c.query(conv_seq_lock_sql, params().add(conv));
  if (cr.empty()) return error(errc::not_found, "conversation not found");
  const seq_t last_seq = cr.int64(0, 0);
  auto mr = c.query(member_mark_sql, params().add(conv).add(member));
  if (mr.empty()) return error(errc::forbidden, "not a member of this conversation");
  const seq_t old_mark = mr.int64(0, 0);

  const seq_t target = up_to ? std::min(*up_to, last_seq) : last_seq;
  read_mark_result res;
  res.conversation = conv;
  res.last_read_seq = std::max(old_mark, target);
  if (res.last_read_seq == old_mark) return res;  // nothing moved: no write (rolled back)

  c.query(set_mark_sql, params().add(conv).add(member).add(res.last_read_seq));
  auto nr = c.query(newly_read_sql,
                    params().add(conv).add(old_mark).add(res.last_read_seq).add(member).add(now));
  for (int i = 0; i < nr.size(); ++i) {
    res.messages_marked_read = nr.int64(i, 0);
    if (!nr.is_null(i, 2)) res.now_read.push_back(nr.uuid_at(i, 2));
  }
  if (events) outbox_change_events(c, conv, events(res), now);
  tx.commit();
  return res;
}

}  // namespace chat4all::pg
