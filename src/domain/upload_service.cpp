#include "domain/upload_service.hpp"

#include <algorithm>
#include <vector>

#include "core/crypto.hpp"
#include "core/mime_sniff.hpp"

namespace chat4all {
namespace asio = boost::asio;

namespace {

constexpr std::size_t drain_buffer_bytes = 64 * 1024;
constexpr std::size_t sniff_bytes = 8192;

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Passes at most `limit` bytes of `inner` through, hashing them (and feeding `extra`).
class hashing_source final : public byte_source {
 public:
  hashing_source(byte_source& inner, std::uint64_t limit, crypto::digest_stream* extra)
      : inner_(inner), left_(limit), extra_(extra) {}
  asio::awaitable<result<std::size_t>> read_some(std::span<char> buf) override {
    if (left_ == 0) co_return std::size_t{0};
    if (buf.size() > left_) buf = buf.first(static_cast<std::size_t>(left_));
    auto n = co_await inner_.read_some(buf);
    if (n && *n > 0) {
      const std::string_view piece(buf.data(), *n);
      sha_.update(piece);
      if (extra_) extra_->update(piece);
      left_ -= *n;
    }
    co_return n;
  }
  std::string hex() { return crypto::to_hex(sha_.finish()); }

 private:
  byte_source& inner_;
  std::uint64_t left_;
  crypto::digest_stream* extra_;
  crypto::sha256_stream sha_;
};

// Reads and hashes up to `limit` bytes of `src`, storing nothing; returns the byte count.
asio::awaitable<result<std::uint64_t>> drain(byte_source& src, std::uint64_t limit,
                                             crypto::sha256_stream* sha,
                                             crypto::digest_stream* extra) {
  std::vector<char> buf(drain_buffer_bytes);
  std::uint64_t total = 0;
  while (total < limit) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), limit - total));
    auto n = co_await src.read_some(std::span<char>(buf.data(), want));
    if (!n) co_return std::move(n).err();
    if (*n == 0) break;
    const std::string_view piece(buf.data(), *n);
    if (sha) sha->update(piece);
    if (extra) extra->update(piece);
    total += *n;
  }
  co_return total;
}

// True when `src` has no byte left.
asio::awaitable<result<bool>> at_end(byte_source& src) {
  char one = 0;
  auto n = co_await src.read_some(std::span<char>(&one, 1));
  if (!n) co_return std::move(n).err();
  co_return *n == 0;
}

class string_sink final : public byte_sink {
 public:
  std::string data;
  asio::awaitable<result<void>> write(std::string_view bytes) override {
    data.append(bytes);
    co_return ok;
  }
};

class sha_sink final : public byte_sink {
 public:
  crypto::sha256_stream sha;
  asio::awaitable<result<void>> write(std::string_view bytes) override {
    sha.update(bytes);
    co_return ok;
  }
};

error bad_input(std::string field, std::string reason, std::string message,
                std::string api_code = {}) {
  error e{errc::invalid_input, std::move(message), std::move(api_code)};
  e.details.push_back({std::move(field), std::move(reason)});
  return e;
}

error wrong_size(int n, std::uint64_t size) {
  return bad_input(
      "body", "must be exactly " + std::to_string(size) + " bytes",
      "chunk " + std::to_string(n) + " must be exactly " + std::to_string(size) + " bytes");
}

error missing_chunks_error(const upload_record& rec) {
  error e{errc::invalid_input, "chunks are missing", "missing_chunks"};
  std::vector<bool> have(static_cast<std::size_t>(rec.total_chunks) + 1, false);
  for (const auto& c : rec.chunks)
    if (c.number >= 1 && c.number <= rec.total_chunks)
      have[static_cast<std::size_t>(c.number)] = true;
  for (int n = 1; n <= rec.total_chunks; ++n)
    if (!have[static_cast<std::size_t>(n)]) e.details.push_back({"chunks", std::to_string(n)});
  return e;
}

}  // namespace

upload_service::upload_service(upload_store& uploads, membership_cache& members, blob_store& blobs,
                               event_log& log, const clock& clk, uploads_config cfg,
                               std::string key_prefix)
    : uploads_(uploads),
      members_(members),
      blobs_(blobs),
      log_(log),
      clock_(clk),
      cfg_(std::move(cfg)),
      key_prefix_(std::move(key_prefix)) {}

task<result<upload_record>> upload_service::initiate(const principal& who, initiate_request req,
                                                     std::string protocol) {
  error bad{errc::invalid_input, "invalid upload"};
  if (req.filename.empty() || req.filename.size() > 255 ||
      req.filename.find_first_of(std::string_view("/\\\0\r\n", 5)) != std::string::npos)
    bad.details.push_back({"filename", "must be 1-255 bytes without / \\ or control line breaks"});
  if (req.mime_type.empty() || req.mime_type.size() > 255 ||
      req.mime_type.find('/') == std::string::npos ||
      req.mime_type.find_first_of("\r\n\"") != std::string::npos)
    bad.details.push_back({"mime_type", "must be a media type such as image/png"});
  if (req.file_size == 0) bad.details.push_back({"file_size", "must be at least 1"});
  if (!req.checksum_sha256.empty() && !is_hex64(req.checksum_sha256))
    bad.details.push_back({"checksum_sha256", "must be 64 hex digits"});
  const std::uint64_t chunk = req.chunk_size.value_or(cfg_.default_chunk_size);
  if (chunk < cfg_.min_chunk_size || chunk > cfg_.max_chunk_size)
    bad.details.push_back({"chunk_size", "must be between " + std::to_string(cfg_.min_chunk_size) +
                                             " and " + std::to_string(cfg_.max_chunk_size)});
  if (!bad.details.empty()) co_return bad;
  if (req.file_size > cfg_.max_file_size)
    co_return error{errc::too_large, "file_size exceeds the limit of " +
                                         std::to_string(cfg_.max_file_size) + " bytes"};
  auto conv = co_await members_.require_member(req.conversation, who.id);
  if (!conv) co_return std::move(conv).err();

  upload_record rec;
  rec.id = uuid::random();
  rec.owner = who.id;
  rec.conversation = req.conversation;
  rec.filename = std::move(req.filename);
  rec.mime_type = std::move(req.mime_type);
  rec.file_size = req.file_size;
  rec.chunk_size = chunk;
  rec.total_chunks = static_cast<int>((req.file_size + chunk - 1) / chunk);
  rec.checksum_sha256 = lower(std::move(req.checksum_sha256));
  rec.status = upload_status::uploading;
  rec.blob_key = key_prefix_ + "files/" + rec.id.str();
  rec.protocol = std::move(protocol);
  rec.created_at = clock_.now_us();
  rec.updated_at = rec.created_at;
  rec.expires_at = rec.created_at + static_cast<timestamp_us>(cfg_.expiry_s) * 1'000'000;

  auto handle = co_await blobs_.begin(rec.blob_key);
  if (!handle) co_return std::move(handle).err();
  rec.blob_upload = std::move(*handle);
  auto created = co_await uploads_.create_upload(
      rec, {cfg_.max_active_per_user, static_cast<std::uint64_t>(cfg_.max_bytes_per_user)});
  if (!created) {
    co_await blobs_.abort(rec.blob_key, rec.blob_upload);
    co_return std::move(created).err();
  }
  co_return rec;
}

task<result<upload_record>> upload_service::owned(const principal& who, uuid id) {
  auto rec = co_await uploads_.find_upload(id);
  if (!rec) co_return rec;
  if (rec->owner != who.id) co_return error{errc::forbidden, "not the owner of this upload"};
  co_return rec;
}

task<result<upload_service::chunk_result>> upload_service::put_chunk(
    const principal& who, uuid id, int n, std::optional<std::uint64_t> content_length,
    std::string expected_sha256, byte_source& body) {
  if (!expected_sha256.empty() && !is_hex64(expected_sha256))
    co_return bad_input("X-Chunk-SHA256", "must be 64 hex digits", "invalid X-Chunk-SHA256");
  expected_sha256 = lower(std::move(expected_sha256));
  auto rec = co_await owned(who, id);
  if (!rec) co_return std::move(rec).err();
  if (n < 1 || n > rec->total_chunks) {
    error e{errc::invalid_input, "chunk number out of range"};
    e.details.push_back({"chunk_number", "must be 1 to " + std::to_string(rec->total_chunks)});
    co_return e;
  }
  const std::uint64_t size = rec->chunk_bytes(n);
  if (content_length && *content_length > size)
    co_return error{errc::too_large, "chunk " + std::to_string(n) + " must be exactly " +
                                         std::to_string(size) + " bytes"};
  if (content_length && *content_length < size) co_return wrong_size(n, size);

  const auto existing = std::find_if(rec->chunks.begin(), rec->chunks.end(),
                                     [n](const upload_chunk& c) { return c.number == n; });
  if (existing != rec->chunks.end()) {
    // A resend: compare without storing anything.
    std::string got = expected_sha256;
    if (got.empty()) {
      crypto::sha256_stream sha;
      auto read = co_await drain(body, size + 1, &sha, nullptr);
      if (!read) co_return std::move(read).err();
      if (*read != size) co_return wrong_size(n, size);
      got = crypto::to_hex(sha.finish());
    }
    if (got != existing->sha256_hex)
      co_return error{errc::conflict,
                      "chunk " + std::to_string(n) + " was already stored with different content",
                      "chunk_conflict"};
    co_return chunk_result{*existing, true};
  }
  if (rec->status != upload_status::uploading)
    co_return error{errc::conflict,
                    std::string("the upload is ") + to_string(rec->status) + ", not UPLOADING",
                    "upload_not_in_progress"};

  hashing_source src(body, size, nullptr);
  auto tag = co_await blobs_.put_part(rec->blob_key, rec->blob_upload, n, size, src);
  if (!tag) {
    if (tag.err().code == errc::invalid_input) co_return wrong_size(n, size);
    co_return std::move(tag).err();
  }
  if (!content_length) {
    auto end = co_await at_end(body);
    if (!end) co_return std::move(end).err();
    if (!*end)
      co_return error{errc::too_large, "chunk " + std::to_string(n) + " must be exactly " +
                                           std::to_string(size) + " bytes"};
  }
  const std::string sha = src.hex();
  if (!expected_sha256.empty() && sha != expected_sha256)
    co_return bad_input("X-Chunk-SHA256", "does not match the body",
                        "the chunk's SHA-256 does not match X-Chunk-SHA256", "checksum_mismatch");
  upload_chunk chunk{n, size, sha, tag->empty() ? sha : *tag};
  auto recorded = co_await uploads_.record_chunk(id, chunk, clock_.now_us());
  if (!recorded) co_return std::move(recorded).err();
  if (recorded->sha256_hex != sha)
    co_return error{errc::conflict,
                    "chunk " + std::to_string(n) + " was already stored with different content",
                    "chunk_conflict"};
  co_return chunk_result{std::move(*recorded), false};
}

task<result<upload_record>> upload_service::status(const principal& who, uuid id) {
  co_return co_await owned(who, id);
}

task<result<upload_record>> upload_service::start_merge(upload_record rec) {
  if (static_cast<int>(rec.chunks.size()) != rec.total_chunks) co_return missing_chunks_error(rec);
  const auto now = clock_.now_us();
  auto moved = co_await uploads_.transition_upload(rec.id, upload_status::uploading,
                                                   upload_status::merging, "", "", "", now);
  if (!moved) co_return std::move(moved).err();
  if (!*moved) co_return co_await uploads_.find_upload(rec.id);  // someone else moved it
  std::vector<log_record> req;
  req.push_back({rec.id.str(), rec.id.str()});
  if (auto r = co_await log_.append(file_merge_topic, std::move(req)); !r) {
    co_await uploads_.transition_upload(rec.id, upload_status::merging, upload_status::uploading,
                                        "", "", "", clock_.now_us());
    co_return error{errc::unavailable, "the merge queue is unavailable; retry"};
  }
  rec.status = upload_status::merging;
  co_return rec;
}

task<result<upload_record>> upload_service::complete(const principal& who, uuid id) {
  auto rec = co_await owned(who, id);
  if (!rec) co_return rec;
  if (rec->status != upload_status::uploading) {
    if (rec->status == upload_status::expired)
      co_return error{errc::conflict, "the upload expired", "upload_not_in_progress"};
    co_return rec;  // MERGING / COMPLETED / FAILED: a repeat, answer with the state
  }
  co_return co_await start_merge(std::move(*rec));
}

task<result<void>> upload_service::fail(const upload_record& rec, std::string reason) {
  co_await blobs_.abort(rec.blob_key, rec.blob_upload);
  co_await blobs_.remove(rec.blob_key);
  auto r =
      co_await uploads_.transition_upload(rec.id, upload_status::merging, upload_status::failed,
                                          std::move(reason), "", "", clock_.now_us());
  if (!r) co_return std::move(r).err();
  co_return ok;
}

task<result<void>> upload_service::merge(uuid id) {
  auto rec = co_await uploads_.find_upload(id);
  if (!rec)
    co_return rec.err().code == errc::not_found ? result<void>(ok) : result<void>(rec.err());
  if (rec->status != upload_status::merging) co_return ok;
  if (static_cast<int>(rec->chunks.size()) != rec->total_chunks)
    co_return co_await fail(*rec, "chunks missing at merge");
  std::vector<blob_part> parts;
  parts.reserve(rec->chunks.size());
  for (const auto& c : rec->chunks) parts.push_back({c.number, c.size, c.etag});
  if (auto done = co_await blobs_.complete(rec->blob_key, rec->blob_upload, std::move(parts));
      !done) {
    if (done.err().code == errc::unavailable) co_return done;  // retry later
    co_return co_await fail(*rec, "assembling the parts failed: " + done.err().message);
  }
  // The assembled object is read back: its first bytes for the type (one ranged read of at
  // most 8 KiB), and all of it for the SHA-256, only when the client declared one (chunks
  // arrive in any order, so the whole-file hash cannot be computed on the way in). On S3
  // that is a GET of the whole object from the store: merge time grows with the file
  // (docs/operations.md). Without a declared checksum nothing more is read and the file has
  // no whole-file SHA-256 (downloads then use the file id as ETag).
  string_sink head;
  const auto head_len = std::min<std::uint64_t>(sniff_bytes, rec->file_size);
  if (auto r = co_await blobs_.read(rec->blob_key, 0, head_len, head); !r) co_return r;
  // libmagic on a few KiB (mmap'd database): ~1 ms; the merger never runs on an HTTP I/O thread.
  const std::string detected = sniff_mime_type(head.data);
  std::string sha;
  if (!rec->checksum_sha256.empty()) {
    sha_sink whole;
    if (auto r = co_await blobs_.read(rec->blob_key, 0, rec->file_size, whole); !r) co_return r;
    sha = crypto::to_hex(whole.sha.finish());
    if (sha != rec->checksum_sha256)
      co_return co_await fail(*rec, "checksum_mismatch: the file's SHA-256 is " + sha +
                                        ", the client declared " + rec->checksum_sha256);
  }
  if (!mime_types_agree(rec->mime_type, detected) && cfg_.magic_mismatch == "reject")
    co_return co_await fail(
        *rec, "content_type_mismatch: declared " + rec->mime_type + ", the content is " + detected);
  auto r = co_await uploads_.transition_upload(id, upload_status::merging, upload_status::completed,
                                               "", sha, detected, clock_.now_us());
  if (!r) co_return std::move(r).err();
  co_return ok;
}

task<result<upload_record>> upload_service::file_for_download(const principal& who, uuid file_id) {
  auto rec = co_await uploads_.find_upload(file_id);
  if (!rec) co_return rec;
  auto conv = co_await members_.require_member(rec->conversation, who.id);
  if (!conv) co_return std::move(conv).err();
  if (rec->status != upload_status::completed)
    co_return error{errc::not_found, "the file is not available (upload not completed)"};
  co_return rec;
}

task<result<void>> upload_service::read(const upload_record& file, std::uint64_t offset,
                                        std::uint64_t length, byte_sink& sink) {
  co_return co_await blobs_.read(file.blob_key, offset, length, sink);
}

std::optional<std::string> upload_service::presigned_url(const upload_record& file) {
  return blobs_.presign_get(file.blob_key, cfg_.presign_ttl_s, file.filename, file.mime_type);
}

task<result<int>> upload_service::expire_due(int limit) {
  auto due = co_await uploads_.expired_uploads(clock_.now_us(), limit);
  if (!due) co_return std::move(due).err();
  int n = 0;
  for (const auto& rec : *due) {
    if (auto a = co_await blobs_.abort(rec.blob_key, rec.blob_upload); !a) co_return a.err();
    if (auto r = co_await blobs_.remove(rec.blob_key); !r) co_return r.err();
    auto moved = co_await uploads_.transition_upload(rec.id, rec.status, upload_status::expired,
                                                     "expired: not completed in time", "", "",
                                                     clock_.now_us());
    if (!moved) co_return std::move(moved).err();
    if (*moved) ++n;
  }
  co_return n;
}

task<result<void>> check_file_message(upload_store& uploads, uuid file_id, conversation_id conv) {
  auto rec = co_await uploads.find_upload(file_id);
  if (!rec && rec.err().code != errc::not_found) co_return rec.err();
  if (!rec || rec->status != upload_status::completed || rec->conversation != conv) {
    error e{errc::invalid_input, "unknown file"};
    e.details.push_back({"payload.file_id", "no completed file with this id in the conversation"});
    co_return e;
  }
  co_return ok;
}

std::uint64_t upload_service::stored_offset(const upload_record& rec) noexcept {
  int contiguous = 0;
  for (const auto& c : rec.chunks) {  // sorted by number
    if (c.number != contiguous + 1) break;
    contiguous = c.number;
  }
  if (contiguous == rec.total_chunks) return rec.file_size;
  return rec.chunk_size * static_cast<std::uint64_t>(contiguous);
}

task<result<std::uint64_t>> upload_service::append(const principal& who, uuid id,
                                                   std::uint64_t offset,
                                                   std::optional<std::uint64_t> content_length,
                                                   std::optional<tus_checksum> checksum,
                                                   byte_source& body) {
  auto rec = co_await owned(who, id);
  if (!rec) co_return std::move(rec).err();
  if (rec->status != upload_status::uploading)
    co_return error{errc::conflict,
                    std::string("the upload is ") + to_string(rec->status) + ", not UPLOADING",
                    "upload_not_in_progress"};
  std::uint64_t at = stored_offset(*rec);
  if (offset != at)
    co_return error{
        errc::conflict,
        "Upload-Offset is " + std::to_string(offset) + ", the upload is at " + std::to_string(at),
        "offset_mismatch"};
  if (content_length && *content_length > rec->file_size - at)
    co_return error{errc::too_large, "the body goes past Upload-Length"};
  std::optional<crypto::digest_stream> digest;
  if (checksum) {
    digest = crypto::digest_stream::create(checksum->algorithm);
    if (!digest)
      co_return bad_input("Upload-Checksum", "algorithm must be sha1 or sha256",
                          "unsupported checksum algorithm");
  }
  std::uint64_t left = content_length.value_or(rec->file_size - at);
  std::vector<upload_chunk> pending;  // recorded at the end when a checksum must hold first
  bool ended = false;
  while (left > 0 && at < rec->file_size) {
    const int n = static_cast<int>(at / rec->chunk_size) + 1;
    const std::uint64_t size = rec->chunk_bytes(n);
    if (content_length && left < size) break;  // a trailing piece: drained below
    hashing_source src(body, size, digest ? &*digest : nullptr);
    auto tag = co_await blobs_.put_part(rec->blob_key, rec->blob_upload, n, size, src);
    if (!tag) {
      if (tag.err().code != errc::invalid_input) co_return std::move(tag).err();
      ended = true;  // the body ended inside this chunk (no Content-Length): drop that piece
      break;
    }
    const std::string sha = src.hex();
    upload_chunk chunk{n, size, sha, tag->empty() ? sha : *tag};
    if (checksum) {
      pending.push_back(std::move(chunk));
    } else if (auto r = co_await uploads_.record_chunk(id, chunk, clock_.now_us()); !r) {
      co_return std::move(r).err();
    }
    at += size;
    left -= std::min(left, size);
  }
  if (!ended) {
    // Bytes that do not make a whole chunk: read (for the checksum) and dropped.
    auto rest = co_await drain(body, content_length ? left : UINT64_MAX, nullptr,
                               digest ? &*digest : nullptr);
    if (!rest) co_return std::move(rest).err();
  }
  if (checksum) {
    if (digest->finish() != checksum->digest)
      co_return bad_input("Upload-Checksum", "does not match the body",
                          "the body does not match Upload-Checksum", "checksum_mismatch");
    for (auto& c : pending)
      if (auto r = co_await uploads_.record_chunk(id, c, clock_.now_us()); !r)
        co_return std::move(r).err();
  }
  if (at == rec->file_size) {
    auto fresh = co_await uploads_.find_upload(id);
    if (!fresh) co_return std::move(fresh).err();
    if (fresh->status == upload_status::uploading)
      if (auto m = co_await start_merge(std::move(*fresh)); !m) co_return std::move(m).err();
  }
  co_return at;
}

task<result<void>> upload_service::terminate(const principal& who, uuid id) {
  auto rec = co_await owned(who, id);
  if (!rec) co_return std::move(rec).err();
  if (rec->status == upload_status::expired) co_return error{errc::not_found, "no such upload"};
  co_await blobs_.abort(rec->blob_key, rec->blob_upload);
  co_await blobs_.remove(rec->blob_key);
  auto r = co_await uploads_.transition_upload(id, rec->status, upload_status::expired,
                                               "terminated", "", "", clock_.now_us());
  if (!r) co_return std::move(r).err();
  co_return ok;
}

}  // namespace chat4all
