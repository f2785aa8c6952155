#pragma once
// Use cases of resumable uploads (SPEC §5): initiate, stream a chunk in, status, complete
// (hand over to the merger through the `file_merge_requests` topic), merge, download, expire,
// and the offset-based view that tus 1.0 needs. The bytes go straight from the request body
// to the blob store through one fixed buffer per request; SHA-256 is computed on the way.
//
// Thread-safety: all methods are coroutines, safe to call concurrently; `body` and `sink`
// must stay valid until the call completes. Errors (values): invalid_input, forbidden (not
// the owner / not a member), not_found, conflict (chunk re-sent with different bytes, upload
// not in progress, tus offset mismatch), too_large, rate_limited (per-user limits),
// unavailable (storage or log down; retryable).

#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "domain/membership_cache.hpp"
#include "domain/ports/blob_store.hpp"
#include "domain/ports/event_log.hpp"
#include "domain/ports/store.hpp"

namespace chat4all {

inline constexpr const char* file_merge_topic = "file_merge_requests";

struct initiate_request {
  conversation_id conversation = 0;
  std::string filename;
  std::string mime_type;
  std::uint64_t file_size = 0;
  std::string checksum_sha256;  // 64 hex digits or ""
  std::optional<std::uint64_t> chunk_size;
};

// ok when `file_id` is a COMPLETED file of `conv`; invalid_input (detail payload.file_id)
// otherwise: what a file message needs (SPEC §2).
task<result<void>> check_file_message(upload_store& uploads, uuid file_id, conversation_id conv);

class upload_service {
 public:
  upload_service(upload_store& uploads, membership_cache& members, blob_store& blobs,
                 event_log& log, const clock& clk, uploads_config cfg, std::string key_prefix = "");

  task<result<upload_record>> initiate(const principal& who, initiate_request req,
                                       std::string protocol = "chunked");

  struct chunk_result {
    upload_chunk chunk;
    bool replay = false;  // the chunk was already stored with these bytes
  };
  // Streams chunk `n` (1-based) from `body` into storage. `content_length` is the request's
  // when known; `expected_sha256` (hex, may be "") is the client's X-Chunk-SHA256.
  task<result<chunk_result>> put_chunk(const principal& who, uuid id, int n,
                                       std::optional<std::uint64_t> content_length,
                                       std::string expected_sha256, byte_source& body);
  // Owner only.
  task<result<upload_record>> status(const principal& who, uuid id);
  // UPLOADING -> MERGING and a merge request on the log; a repeat returns the current state.
  // invalid_input (api_code "missing_chunks", one detail per missing chunk) when incomplete.
  task<result<upload_record>> complete(const principal& who, uuid id);
  // The merger's step: assemble, sniff the type, hash, then COMPLETED or FAILED (reason).
  // Idempotent: an upload no longer MERGING is left alone.
  task<result<void>> merge(uuid id);
  // A COMPLETED file for a member of its conversation (forbidden otherwise).
  task<result<upload_record>> file_for_download(const principal& who, uuid file_id);
  task<result<void>> read(const upload_record& file, std::uint64_t offset, std::uint64_t length,
                          byte_sink& sink);
  std::optional<std::string> presigned_url(const upload_record& file);
  // Removes up to `limit` expired uploads from storage and marks them EXPIRED; returns how many.
  task<result<int>> expire_due(int limit);

  // ---- tus 1.0 ----
  // Bytes of the file stored contiguously from the start (whole chunks only).
  static std::uint64_t stored_offset(const upload_record& rec) noexcept;
  // Appends `body` at `offset` (which must equal stored_offset: conflict otherwise). Whole
  // chunks are stored; a trailing piece shorter than a chunk (except the file's last) is read
  // and dropped, so the returned new offset may be less than offset + body length (tus
  // allows it: the client continues from the offset it is told). With `checksum` (an
  // algorithm name "sha1"/"sha256" and the raw digest), the body's digest must match or
  // nothing of it is kept (api_code "checksum_mismatch"). The last chunk completes the upload.
  struct tus_checksum {
    std::string algorithm;
    std::string digest;
  };
  task<result<std::uint64_t>> append(const principal& who, uuid id, std::uint64_t offset,
                                     std::optional<std::uint64_t> content_length,
                                     std::optional<tus_checksum> checksum, byte_source& body);
  // tus termination: drops the stored parts; the upload becomes EXPIRED (reason "terminated").
  task<result<void>> terminate(const principal& who, uuid id);

  const uploads_config& config() const noexcept { return cfg_; }

 private:
  task<result<upload_record>> owned(const principal& who, uuid id);
  task<result<upload_record>> start_merge(upload_record rec);
  task<result<void>> fail(const upload_record& rec, std::string reason);

  upload_store& uploads_;
  membership_cache& members_;
  blob_store& blobs_;
  event_log& log_;
  const clock& clock_;
  uploads_config cfg_;
  std::string key_prefix_;
};

}  // namespace chat4all
