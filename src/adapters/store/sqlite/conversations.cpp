// Conversations, membership, the conversation list and read marks.

#include <algorithm>
#include <string>

#include "adapters/store/sqlite/ops.hpp"

namespace chat4all::sqlite {

namespace {

constexpr const char* conv_by_pair_sql = "SELECT id FROM conversations WHERE private_pair = ?1";
constexpr const char* insert_conv_sql =
    "INSERT INTO conversations(type, name, description, created_at, last_seq, "
    "last_activity_at, member_count, private_pair) VALUES (?1, ?2, ?3, ?4, 0, ?4, ?5, ?6)";
constexpr const char* insert_member_sql =
    "INSERT INTO conversation_members(conversation_id, user_id, last_read_seq, joined_at) "
    "VALUES (?1, ?2, 0, ?3)";
constexpr const char* conv_by_id_sql =
    "SELECT type, name, description, created_at FROM conversations WHERE id = ?1";
constexpr const char* members_sql =
    "SELECT user_id FROM conversation_members WHERE conversation_id = ?1 ORDER BY user_id";

// The page is chosen (sorted, limited) in `page` first, so the per-row work below (unread
// count, last message, preview) runs only for the rows of the page, not for every
// conversation of the user; substr() counts characters, not bytes, so the 100-character
// preview never splits a UTF-8 sequence. `total` is COUNT(*) OVER () over all of the user's rows,
// computed before LIMIT; only an empty page (offset past the end) needs the separate count below.
constexpr const char* list_sql = R"sql(
WITH page AS (
  SELECT c.id, c.type, c.name, c.created_at, c.member_count, c.last_seq, c.last_activity_at,
         cm.last_read_seq, COUNT(*) OVER () AS total
  FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
  WHERE cm.user_id = ?1
  ORDER BY c.last_activity_at DESC, c.id DESC
  LIMIT ?2 OFFSET ?3
)
SELECT p.id, p.type, p.name, p.created_at, p.member_count, p.total,
       CASE WHEN p.last_seq > p.last_read_seq THEN
         (SELECT count(*) FROM messages u
          WHERE u.conversation_id = p.id AND u.seq > p.last_read_seq AND u.sender_id <> ?1)
       ELSE 0 END,
       m.message_id, m.seq, m.sender_id,
       CASE WHEN NOT json_valid(m.payload) THEN '[file]'
            WHEN json_extract(m.payload, '$.type') = 'text'
            THEN substr(json_extract(m.payload, '$.content'), 1, 100)
            ELSE '[file]' END,
       m.created_at
FROM page p LEFT JOIN messages m ON m.conversation_id = p.id AND m.seq = p.last_seq
ORDER BY p.last_activity_at DESC, p.id DESC
)sql";
constexpr const char* count_convs_sql =
    "SELECT count(*) FROM conversation_members WHERE user_id = ?1";

constexpr const char* conv_seq_sql = "SELECT type, last_seq FROM conversations WHERE id = ?1";
constexpr const char* member_mark_sql =
    "SELECT last_read_seq FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2";
constexpr const char* set_mark_sql =
    "UPDATE conversation_members SET last_read_seq = ?3 "
    "WHERE conversation_id = ?1 AND user_id = ?2";
constexpr const char* count_others_sql =
    "SELECT count(*) FROM messages "
    "WHERE conversation_id = ?1 AND seq > ?2 AND seq <= ?3 AND sender_id <> ?4";
// Messages of others in the newly read range that every member except their sender has read
// now (for a private conversation that is just the reader). Run after the mark moved.
constexpr const char* newly_read_sql = R"sql(
SELECT m.seq, m.message_id FROM messages m
WHERE m.conversation_id = ?1 AND m.seq > ?2 AND m.seq <= ?3 AND m.sender_id <> ?4
  AND m.status IN (0, 1)
  AND NOT EXISTS (SELECT 1 FROM conversation_members x
                  WHERE x.conversation_id = ?1 AND x.user_id <> m.sender_id
                    AND x.last_read_seq < m.seq)
ORDER BY m.seq
)sql";
constexpr const char* set_status_sql =
    "UPDATE messages SET status = ?3 WHERE conversation_id = ?1 AND seq = ?2";
constexpr const char* add_history_sql =
    "INSERT INTO message_status_history(conversation_id, seq, n, status, channel, detail, at) "
    "SELECT ?1, ?2, coalesce(max(n), 1) + 1, ?3, '', '', ?4 FROM message_status_history "
    "WHERE conversation_id = ?1 AND seq = ?2";

std::string private_pair_key(const std::vector<user_id>& members) {
  return std::to_string(members.front()) + ":" + std::to_string(members.back());
}

}  // namespace

result<conversation> find_conversation(connection& c, conversation_id id) {
  conversation conv;
  conv.id = id;
  {
    auto st = c.prepare(conv_by_id_sql);
    st.bind(1, id);
    if (!st.step()) return error(errc::not_found, "conversation not found");
    conv.type = st.text(0) == "group" ? conversation_type::group : conversation_type::private_chat;
    conv.name = st.text(1);
    conv.description = st.text(2);
    conv.created_at = st.int64(3);
  }
  auto st = c.prepare(members_sql);
  st.bind(1, id);
  while (st.step()) conv.member_ids.push_back(st.int64(0));
  return conv;
}

result<conversation_store::create_outcome> create_conversation(
    connection& c, conversation_type type, const std::string& name, const std::string& description,
    std::vector<user_id> members, timestamp_us now) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  if (type == conversation_type::private_chat && members.size() != 2)
    return error(errc::invalid_input, "a private conversation has exactly 2 members");
  if (members.empty()) return error(errc::invalid_input, "a conversation needs members");

  transaction tx(c, tx_kind::write);
  std::string pair;
  if (type == conversation_type::private_chat) {
    pair = private_pair_key(members);
    auto st = c.prepare(conv_by_pair_sql);
    st.bind_text(1, pair);
    if (st.step()) {
      conversation_id existing = st.int64(0);
      auto conv = find_conversation(c, existing);
      if (!conv) return std::move(conv).err();
      return conversation_store::create_outcome{std::move(*conv), false};
    }
  }
  {
    auto st = c.prepare(insert_conv_sql);
    st.bind_text(1, to_string(type)).bind_text(2, name).bind_text(3, description).bind(4, now);
    st.bind(5, static_cast<std::int64_t>(members.size()));
    if (pair.empty())
      st.bind_null(6);
    else
      st.bind_text(6, pair);
    st.run();
  }
  conversation conv;
  conv.id = c.last_insert_rowid();
  conv.type = type;
  conv.name = name;
  conv.description = description;
  conv.created_at = now;
  for (user_id m : members)
    c.prepare(insert_member_sql).bind(1, conv.id).bind(2, m).bind(3, now).run();
  conv.member_ids = std::move(members);
  tx.commit();
  return conversation_store::create_outcome{std::move(conv), true};
}

page<conversation_summary> list_conversations(connection& c, user_id user, int limit, int offset) {
  page<conversation_summary> out;
  limit = std::max(limit, 0);
  offset = std::max(offset, 0);
  {
    auto st = c.prepare(list_sql);
    st.bind(1, user).bind(2, limit).bind(3, offset);
    while (st.step()) {
      conversation_summary s;
      s.id = st.int64(0);
      s.type = st.text(1) == "group" ? conversation_type::group : conversation_type::private_chat;
      s.name = st.text(2);
      s.created_at = st.int64(3);
      s.member_count = st.int64(4);
      out.total = st.int64(5);
      s.unread_count = st.int64(6);
      if (!st.is_null(7)) {
        last_message_summary lm;
        lm.message_id = uuid::from_raw(st.blob(7));
        lm.seq = st.int64(8);
        lm.sender = st.int64(9);
        lm.preview = st.text(10);
        lm.created_at = st.int64(11);
        s.last_message = std::move(lm);
      }
      out.items.push_back(std::move(s));
    }
  }
  if (out.items.empty()) {
    auto st = c.prepare(count_convs_sql);
    st.bind(1, user);
    if (st.step()) out.total = st.int64(0);
  }
  return out;
}

result<read_mark_result> mark_read(connection& c, conversation_id conv, user_id member,
                                   std::optional<seq_t> up_to, timestamp_us now) {
  transaction tx(c, tx_kind::write);
  seq_t last_seq = 0;
  {
    auto st = c.prepare(conv_seq_sql);
    st.bind(1, conv);
    if (!st.step()) return error(errc::not_found, "conversation not found");
    last_seq = st.int64(1);
  }
  seq_t old_mark = 0;
  {
    auto st = c.prepare(member_mark_sql);
    st.bind(1, conv).bind(2, member);
    if (!st.step()) return error(errc::forbidden, "not a member of this conversation");
    old_mark = st.int64(0);
  }
  seq_t target = up_to ? std::min(*up_to, last_seq) : last_seq;
  read_mark_result r;
  r.conversation = conv;
  r.last_read_seq = std::max(old_mark, target);
  if (r.last_read_seq == old_mark) return r;  // nothing moved: no write

  c.prepare(set_mark_sql).bind(1, conv).bind(2, member).bind(3, r.last_read_seq).run();
  {
    auto st = c.prepare(count_others_sql);
    st.bind(1, conv).bind(2, old_mark).bind(3, r.last_read_seq).bind(4, member);
    if (st.step()) r.messages_marked_read = st.int64(0);
  }
  std::vector<seq_t> seqs;
  {
    auto st = c.prepare(newly_read_sql);
    st.bind(1, conv).bind(2, old_mark).bind(3, r.last_read_seq).bind(4, member);
    while (st.step()) {
      seqs.push_back(st.int64(0));
      r.now_read.push_back(uuid::from_raw(st.blob(1)));
    }
  }
  const auto read_status = static_cast<std::int64_t>(message_status::read);
  for (seq_t s : seqs) {
    c.prepare(set_status_sql).bind(1, conv).bind(2, s).bind(3, read_status).run();
    c.prepare(add_history_sql).bind(1, conv).bind(2, s).bind(3, read_status).bind(4, now).run();
  }
  tx.commit();
  return r;
}

}  // namespace chat4all::sqlite
