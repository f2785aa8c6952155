// Uploads and their chunks (SPEC §5).

#include "adapters/store/postgres/pg_ops.hpp"

namespace chat4all::pg {

namespace {

#define CHAT4ALL_UPLOAD_COLUMNS                                                                    \
  "id, owner_id, conversation_id, filename, mime_type, file_size, chunk_size, total_chunks, "      \
  "checksum_sha256, status, reason, blob_key, blob_upload, protocol, file_sha256, detected_mime, " \
  "created_at, expires_at, updated_at"

// Serialises the creations of one owner (released at COMMIT) so the limits hold under races.
constexpr const char* owner_lock_sql =
    "SELECT pg_advisory_xact_lock(1128481074, ($1::bigint % 2147483647)::int)";
constexpr const char* owner_usage_sql =
    "SELECT count(*), coalesce(sum(file_size), 0)::bigint FROM uploads "
    "WHERE owner_id = $1 AND status IN ('UPLOADING', 'MERGING')";
constexpr const char* insert_upload_sql =
    "INSERT INTO uploads(" CHAT4ALL_UPLOAD_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', $11, $12, $13, '', '', $14, $15, $14)";
constexpr const char* upload_by_id_sql =
    "SELECT " CHAT4ALL_UPLOAD_COLUMNS " FROM uploads WHERE id = $1";
constexpr const char* chunks_sql =
    "SELECT n, size, sha256, etag FROM upload_chunks WHERE upload_id = $1 ORDER BY n";
constexpr const char* status_for_update_sql = "SELECT status FROM uploads WHERE id = $1 FOR UPDATE";
constexpr const char* insert_chunk_sql =
    "INSERT INTO upload_chunks(upload_id, n, size, sha256, etag) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (upload_id, n) DO NOTHING";
constexpr const char* chunk_sql =
    "SELECT n, size, sha256, etag FROM upload_chunks WHERE upload_id = $1 AND n = $2";
constexpr const char* touch_sql = "UPDATE uploads SET updated_at = $2 WHERE id = $1";
constexpr const char* transition_sql =
    "UPDATE uploads SET status = $3, reason = $4, "
    "file_sha256 = CASE WHEN $5 = '' THEN file_sha256 ELSE $5 END, "
    "detected_mime = CASE WHEN $6 = '' THEN detected_mime ELSE $6 END, updated_at = $7 "
    "WHERE id = $1 AND status = $2";
constexpr const char* exists_sql = "SELECT 1 FROM uploads WHERE id = $1";
constexpr const char* delete_chunks_sql = "DELETE FROM upload_chunks WHERE upload_id = $1";
constexpr const char* expired_sql =
    "SELECT " CHAT4ALL_UPLOAD_COLUMNS
    " FROM uploads WHERE status IN ('UPLOADING', 'MERGING') AND expires_at <= $1 "
    "ORDER BY expires_at LIMIT $2";

#undef CHAT4ALL_UPLOAD_COLUMNS

upload_record read_upload(const rows& r, int i) {
  upload_record u;
  u.id = r.uuid_at(i, 0);
  u.owner = r.int64(i, 1);
  u.conversation = r.int64(i, 2);
  u.filename = std::string(r.text(i, 3));
  u.mime_type = std::string(r.text(i, 4));
  u.file_size = static_cast<std::uint64_t>(r.int64(i, 5));
  u.chunk_size = static_cast<std::uint64_t>(r.int64(i, 6));
  u.total_chunks = static_cast<int>(r.int64(i, 7));
  u.checksum_sha256 = std::string(r.text(i, 8));
  u.status = parse_upload_status(r.text(i, 9)).value_or(upload_status::failed);
  u.reason = std::string(r.text(i, 10));
  u.blob_key = std::string(r.text(i, 11));
  u.blob_upload = std::string(r.text(i, 12));
  u.protocol = std::string(r.text(i, 13));
  u.file_sha256 = std::string(r.text(i, 14));
  u.detected_mime = std::string(r.text(i, 15));
  u.created_at = r.int64(i, 16);
  u.expires_at = r.int64(i, 17);
  u.updated_at = r.int64(i, 18);
  return u;
}

upload_chunk read_chunk(const rows& r, int i) {
  return upload_chunk{static_cast<int>(r.int64(i, 0)), static_cast<std::uint64_t>(r.int64(i, 1)),
                      std::string(r.text(i, 2)), std::string(r.text(i, 3))};
}

}  // namespace

result<void> create_upload(connection& c, const upload_record& rec,
                           upload_store::owner_limits limits) {
  transaction tx(c);
  c.query(owner_lock_sql, params().add(rec.owner));
  auto usage = c.query(owner_usage_sql, params().add(rec.owner));
  const auto active = usage.int64(0, 0);
  const auto bytes = static_cast<std::uint64_t>(usage.int64(0, 1));
  if (limits.max_active > 0 && active >= limits.max_active)
    return error(errc::rate_limited, "too many uploads in progress", "too_many_uploads");
  if (limits.max_bytes > 0 && bytes + rec.file_size > limits.max_bytes)
    return error(errc::too_large, "uploads in progress would exceed the per-user quota",
                 "upload_quota_exceeded");
  c.query(insert_upload_sql, params()
                                 .add(rec.id)
                                 .add(rec.owner)
                                 .add(rec.conversation)
                                 .add(rec.filename)
                                 .add(rec.mime_type)
                                 .add(static_cast<std::int64_t>(rec.file_size))
                                 .add(static_cast<std::int64_t>(rec.chunk_size))
                                 .add(std::int64_t{rec.total_chunks})
                                 .add(rec.checksum_sha256)
                                 .add(std::string_view(to_string(rec.status)))
                                 .add(rec.blob_key)
                                 .add(rec.blob_upload)
                                 .add(rec.protocol)
                                 .add(rec.created_at)
                                 .add(rec.expires_at));
  tx.commit();
  return ok;
}

result<upload_record> find_upload(connection& c, const uuid& id) {
  auto r = c.query(upload_by_id_sql, params().add(id));
  if (r.empty()) return error(errc::not_found, "no such upload");
  upload_record u = read_upload(r, 0);
  auto ch = c.query(chunks_sql, params().add(id));
  u.chunks.reserve(static_cast<std::size_t>(ch.size()));
  for (int i = 0; i < ch.size(); ++i) u.chunks.push_back(read_chunk(ch, i));
  return u;
}

result<upload_chunk> record_chunk(connection& c, const uuid& id, const upload_chunk& chunk,
                                  timestamp_us now) {
  transaction tx(c);
  auto st = c.query(status_for_update_sql, params().add(id));
  if (st.empty()) return error(errc::not_found, "no such upload");
  if (st.text(0, 0) != "UPLOADING") return error(errc::conflict, "upload is no longer in progress");
  auto ins = c.query(insert_chunk_sql, params()
                                           .add(id)
                                           .add(std::int64_t{chunk.number})
                                           .add(static_cast<std::int64_t>(chunk.size))
                                           .add(chunk.sha256_hex)
                                           .add(chunk.etag));
  if (ins.affected() == 0) {
    auto existing = c.query(chunk_sql, params().add(id).add(std::int64_t{chunk.number}));
    tx.commit();
    return read_chunk(existing, 0);
  }
  c.query(touch_sql, params().add(id).add(now));
  tx.commit();
  return chunk;
}

result<bool> transition_upload(connection& c, const uuid& id, upload_status from, upload_status to,
                               const std::string& reason, const std::string& file_sha256,
                               const std::string& detected_mime, timestamp_us now) {
  transaction tx(c);
  auto r = c.query(transition_sql, params()
                                       .add(id)
                                       .add(std::string_view(to_string(from)))
                                       .add(std::string_view(to_string(to)))
                                       .add(reason)
                                       .add(file_sha256)
                                       .add(detected_mime)
                                       .add(now));
  if (r.affected() == 0) {
    if (c.query(exists_sql, params().add(id)).empty())
      return error(errc::not_found, "no such upload");
    return false;
  }
  if (to == upload_status::expired) c.query(delete_chunks_sql, params().add(id));
  tx.commit();
  return true;
}

std::vector<upload_record> expired_uploads(connection& c, timestamp_us now, int limit) {
  std::vector<upload_record> out;
  auto r = c.query(expired_sql, params().add(now).add(std::int64_t{limit}));
  out.reserve(static_cast<std::size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) out.push_back(read_upload(r, i));
  return out;
}

}  // namespace chat4all::pg
