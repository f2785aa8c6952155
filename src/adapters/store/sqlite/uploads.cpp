// Uploads and their chunks (SPEC §5).

#include "adapters/store/sqlite/ops.hpp"

namespace chat4all::sqlite {

namespace {

constexpr const char* insert_upload_sql =
    "INSERT INTO uploads(id, owner_id, conversation_id, filename, mime_type, file_size, "
    "chunk_size, total_chunks, checksum_sha256, status, reason, blob_key, blob_upload, protocol, "
    "file_sha256, detected_mime, created_at, expires_at, updated_at) VALUES "
    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '', ?11, ?12, ?13, '', '', ?14, ?15, ?14)";
constexpr const char* owner_usage_sql =
    "SELECT count(*), coalesce(sum(file_size), 0) FROM uploads "
    "WHERE owner_id = ?1 AND status IN ('UPLOADING', 'MERGING')";
constexpr const char* upload_by_id_sql =
    "SELECT id, owner_id, conversation_id, filename, mime_type, file_size, chunk_size, "
    "total_chunks, checksum_sha256, status, reason, blob_key, blob_upload, protocol, "
    "file_sha256, detected_mime, created_at, expires_at, updated_at FROM uploads WHERE id = ?1";
constexpr const char* chunks_sql =
    "SELECT n, size, sha256, etag FROM upload_chunks WHERE upload_id = ?1 ORDER BY n";
constexpr const char* chunk_sql =
    "SELECT n, size, sha256, etag FROM upload_chunks WHERE upload_id = ?1 AND n = ?2";
constexpr const char* status_sql = "SELECT status FROM uploads WHERE id = ?1";
constexpr const char* insert_chunk_sql =
    "INSERT INTO upload_chunks(upload_id, n, size, sha256, etag) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* touch_sql = "UPDATE uploads SET updated_at = ?2 WHERE id = ?1";
constexpr const char* transition_sql =
    "UPDATE uploads SET status = ?3, reason = ?4, "
    "file_sha256 = CASE WHEN ?5 = '' THEN file_sha256 ELSE ?5 END, "
    "detected_mime = CASE WHEN ?6 = '' THEN detected_mime ELSE ?6 END, updated_at = ?7 "
    "WHERE id = ?1 AND status = ?2";
constexpr const char* delete_chunks_sql = "DELETE FROM upload_chunks WHERE upload_id = ?1";
constexpr const char* expired_sql =
    "SELECT id, owner_id, conversation_id, filename, mime_type, file_size, chunk_size, "
    "total_chunks, checksum_sha256, status, reason, blob_key, blob_upload, protocol, "
    "file_sha256, detected_mime, created_at, expires_at, updated_at FROM uploads "
    "WHERE status IN ('UPLOADING', 'MERGING') AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2";

upload_record read_upload(const statement& st) {
  upload_record r;
  r.id = uuid::from_raw(st.blob(0));
  r.owner = st.int64(1);
  r.conversation = st.int64(2);
  r.filename = st.text(3);
  r.mime_type = st.text(4);
  r.file_size = static_cast<std::uint64_t>(st.int64(5));
  r.chunk_size = static_cast<std::uint64_t>(st.int64(6));
  r.total_chunks = static_cast<int>(st.int64(7));
  r.checksum_sha256 = st.text(8);
  r.status = parse_upload_status(st.text(9)).value_or(upload_status::failed);
  r.reason = st.text(10);
  r.blob_key = st.text(11);
  r.blob_upload = st.text(12);
  r.protocol = st.text(13);
  r.file_sha256 = st.text(14);
  r.detected_mime = st.text(15);
  r.created_at = st.int64(16);
  r.expires_at = st.int64(17);
  r.updated_at = st.int64(18);
  return r;
}

upload_chunk read_chunk(const statement& st) {
  return upload_chunk{static_cast<int>(st.int64(0)), static_cast<std::uint64_t>(st.int64(1)),
                      st.text(2), st.text(3)};
}

}  // namespace

result<void> create_upload(connection& c, const upload_record& rec,
                           upload_store::owner_limits limits) {
  transaction tx(c, tx_kind::write);
  {
    auto st = c.prepare(owner_usage_sql);
    st.bind(1, rec.owner);
    st.step();
    const auto active = st.int64(0);
    const auto bytes = static_cast<std::uint64_t>(st.int64(1));
    if (limits.max_active > 0 && active >= limits.max_active)
      return error(errc::rate_limited, "too many uploads in progress", "too_many_uploads");
    if (limits.max_bytes > 0 && bytes + rec.file_size > limits.max_bytes)
      return error(errc::too_large, "uploads in progress would exceed the per-user quota",
                   "upload_quota_exceeded");
  }
  c.prepare(insert_upload_sql)
      .bind_blob(1, rec.id.raw())
      .bind(2, rec.owner)
      .bind(3, rec.conversation)
      .bind_text(4, rec.filename)
      .bind_text(5, rec.mime_type)
      .bind(6, static_cast<std::int64_t>(rec.file_size))
      .bind(7, static_cast<std::int64_t>(rec.chunk_size))
      .bind(8, rec.total_chunks)
      .bind_text(9, rec.checksum_sha256)
      .bind_text(10, to_string(rec.status))
      .bind_text(11, rec.blob_key)
      .bind_text(12, rec.blob_upload)
      .bind_text(13, rec.protocol)
      .bind(14, rec.created_at)
      .bind(15, rec.expires_at)
      .run();
  tx.commit();
  return ok;
}

result<upload_record> find_upload(connection& c, const uuid& id) {
  upload_record r;
  {
    auto st = c.prepare(upload_by_id_sql);
    st.bind_blob(1, id.raw());
    if (!st.step()) return error(errc::not_found, "no such upload");
    r = read_upload(st);
  }
  auto st = c.prepare(chunks_sql);
  st.bind_blob(1, id.raw());
  while (st.step()) r.chunks.push_back(read_chunk(st));
  return r;
}

result<upload_chunk> record_chunk(connection& c, const uuid& id, const upload_chunk& chunk,
                                  timestamp_us now) {
  transaction tx(c, tx_kind::write);
  {
    auto st = c.prepare(status_sql);
    st.bind_blob(1, id.raw());
    if (!st.step()) return error(errc::not_found, "no such upload");
    if (st.text(0) != "UPLOADING") return error(errc::conflict, "upload is no longer in progress");
  }
  {
    auto st = c.prepare(chunk_sql);
    st.bind_blob(1, id.raw());
    st.bind(2, chunk.number);
    if (st.step()) return read_chunk(st);
  }
  c.prepare(insert_chunk_sql)
      .bind_blob(1, id.raw())
      .bind(2, chunk.number)
      .bind(3, static_cast<std::int64_t>(chunk.size))
      .bind_text(4, chunk.sha256_hex)
      .bind_text(5, chunk.etag)
      .run();
  c.prepare(touch_sql).bind_blob(1, id.raw()).bind(2, now).run();
  tx.commit();
  return chunk;
}

result<bool> transition_upload(connection& c, const uuid& id, upload_status from, upload_status to,
                               const std::string& reason, const std::string& file_sha256,
                               const std::string& detected_mime, timestamp_us now) {
  transaction tx(c, tx_kind::write);
  {
    auto st = c.prepare(status_sql);
    st.bind_blob(1, id.raw());
    if (!st.step()) return error(errc::not_found, "no such upload");
  }
  c.prepare(transition_sql)
      .bind_blob(1, id.raw())
      .bind_text(2, to_string(from))
      .bind_text(3, to_string(to))
      .bind_text(4, reason)
      .bind_text(5, file_sha256)
      .bind_text(6, detected_mime)
      .bind(7, now)
      .run();
  if (c.changes() == 0) return false;
  if (to == upload_status::expired) c.prepare(delete_chunks_sql).bind_blob(1, id.raw()).run();
  tx.commit();
  return true;
}

std::vector<upload_record> expired_uploads(connection& c, timestamp_us now, int limit) {
  std::vector<upload_record> out;
  auto st = c.prepare(expired_sql);
  st.bind(1, now);
  st.bind(2, limit);
  while (st.step()) out.push_back(read_upload(st));
  return out;
}

}  // namespace chat4all::sqlite
