// The transactional outbox (domain/ports/outbox.hpp) and its publisher lease.

#include "adapters/store/postgres/pg_ops.hpp"
#include "domain/events.hpp"

namespace chat4all::pg {

namespace {

// One statement per enqueue: the rows get increasing ids in array order.
constexpr const char* enqueue_sql =
    "INSERT INTO outbox(topic, key, value, traceparent, created_at) "
    "SELECT $1, d.key, d.value, d.tp, $5 FROM unnest($2::text[], $3::text[], $4::text[]) "
    "WITH ORDINALITY AS d(key, value, tp, n) ORDER BY d.n";
constexpr const char* backlog_sql = "SELECT count(*) FROM outbox";
// The database's clock decides expiry, so relays on machines with skewed clocks agree.
constexpr const char* acquire_lease_sql =
    "UPDATE outbox_lease SET holder = $1, "
    "expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond' "
    "WHERE id = 1 AND (holder = $1 OR expires_at < clock_timestamp()) RETURNING holder";
constexpr const char* release_lease_sql =
    "UPDATE outbox_lease SET holder = '', expires_at = '-infinity' WHERE id = 1 AND holder = $1";
constexpr const char* oldest_sql =
    "SELECT id, topic, key, value, attempts, created_at, traceparent FROM outbox ORDER BY id "
    "LIMIT $1";
constexpr const char* remove_sql = "DELETE FROM outbox WHERE id = ANY($1::bigint[])";
constexpr const char* note_failure_sql =
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1 RETURNING attempts";

}  // namespace

void outbox_enqueue(connection& c, const std::string& topic, const std::vector<log_record>& records,
                    timestamp_us now) {
  if (records.empty()) return;
  std::vector<std::string_view> keys, values, traceparents;
  keys.reserve(records.size());
  values.reserve(records.size());
  traceparents.reserve(records.size());
  for (const auto& r : records) {
    keys.push_back(r.key);
    values.push_back(r.value);
    traceparents.push_back(r.traceparent);
  }
  c.query(enqueue_sql, params()
                           .add(topic)
                           .add_text_array(keys)
                           .add_text_array(values)
                           .add_text_array(traceparents)
                           .add(std::int64_t{now}));
}

void outbox_change_events(connection& c, conversation_id conv, const change_events& events,
                          timestamp_us now) {
  std::vector<log_record> records;
  records.reserve(events.size());
  for (const auto& [channel, payload] : events)
    records.push_back({std::to_string(conv), encode_change_event(channel, payload)});
  outbox_enqueue(c, conversation_events_topic, records, now);
}

std::int64_t outbox_backlog(connection& c) {
  return c.query(backlog_sql).int64(0, 0);
}

bool outbox_acquire_lease(connection& c, const std::string& holder, std::int64_t ttl_ms) {
  return !c.query(acquire_lease_sql, params().add(holder).add(ttl_ms)).empty();
}

void outbox_release_lease(connection& c, const std::string& holder) {
  c.query(release_lease_sql, params().add(holder));
}

std::vector<outbox_entry> outbox_oldest(connection& c, std::size_t max) {
  auto r = c.query(oldest_sql, params().add(static_cast<std::int64_t>(max)));
  std::vector<outbox_entry> out;
  out.reserve(static_cast<std::size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) {
    outbox_entry e;
    e.id = r.int64(i, 0);
    e.topic = std::string(r.text(i, 1));
    e.record = {std::string(r.text(i, 2)), std::string(r.text(i, 3)), std::string(r.text(i, 6))};
    e.attempts = static_cast<int>(r.int64(i, 4));
    e.created_at = r.int64(i, 5);
    out.push_back(std::move(e));
  }
  return out;
}

void outbox_remove(connection& c, const std::vector<std::int64_t>& ids) {
  if (!ids.empty()) c.query(remove_sql, params().add_array(ids));
}

result<int> outbox_note_failure(connection& c, std::int64_t id, const std::string& reason) {
  auto r = c.query(note_failure_sql, params().add(id).add(reason));
  if (r.empty()) return error(errc::not_found, "outbox entry not found");
  return static_cast<int>(r.int64(0, 0));
}

}  // namespace chat4all::pg
