#pragma once
// Object storage port for uploaded files. Adapters: fs_blob_store (embedded, under the data
// directory), s3_blob_store (S3/MinIO multipart over libcurl).
//
// A file is uploaded as numbered parts streamed in from a byte_source through one fixed-size
// buffer (memory does not grow with the part or the file); completion assembles the parts into
// one object without copying bytes through the caller (fs: an index of the parts; S3:
// CompleteMultipartUpload). Reads stream a byte range out to a byte_sink the same way.
//
// Thread-safety: every method may be called concurrently from any thread; the adapters run
// blocking work (file I/O, libcurl easy calls) on their own worker threads, never on the
// caller's I/O thread. `src` and `sink` references must stay valid until the call completes.
// Errors: not_found (unknown upload/object/part), invalid_input (a source that ended before
// `size` bytes), unavailable (storage unreachable or failing; retryable).

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace chat4all {

// Bytes that arrive in order (a request body). read_some returns 0 at the end of the data.
class byte_source {
 public:
  virtual ~byte_source() = default;
  virtual boost::asio::awaitable<result<std::size_t>> read_some(std::span<char> buf) = 0;
};

// Where bytes go in order (a response body).
class byte_sink {
 public:
  virtual ~byte_sink() = default;
  virtual boost::asio::awaitable<result<void>> write(std::string_view bytes) = 0;
};

struct blob_part {
  int number = 0;  // 1-based
  std::uint64_t size = 0;
  std::string etag;
};

class blob_store {
 public:
  virtual ~blob_store() = default;
  // Starts a multi-part object under `key`; returns the upload handle to pass back later.
  virtual boost::asio::awaitable<result<std::string>> begin(std::string key) = 0;
  // Reads exactly `size` bytes from `src` and stores them as part `number` (replacing an
  // earlier part with that number). Returns the part's tag. invalid_input when `src` ends
  // early; nothing is stored then.
  virtual boost::asio::awaitable<result<std::string>> put_part(std::string key, std::string upload,
                                                               int number, std::uint64_t size,
                                                               byte_source& src) = 0;
  // Assembles `parts` (in order) into the object `key`.
  virtual boost::asio::awaitable<result<void>> complete(std::string key, std::string upload,
                                                        std::vector<blob_part> parts) = 0;
  // Drops an unfinished multi-part object and its parts (idempotent).
  virtual boost::asio::awaitable<result<void>> abort(std::string key, std::string upload) = 0;
  // Streams [offset, offset + length) of a completed object into `sink`.
  virtual boost::asio::awaitable<result<void>> read(std::string key, std::uint64_t offset,
                                                    std::uint64_t length, byte_sink& sink) = 0;
  // Deletes a completed object (idempotent).
  virtual boost::asio::awaitable<result<void>> remove(std::string key) = 0;
  // Whether the store can be used now (its directory, its bucket), for GET /readyz: ok, or
  // unavailable / not_found with the reason. Bounded: answers within a few seconds.
  virtual boost::asio::awaitable<result<void>> ping() = 0;
  // A time-limited URL a client can GET the object from directly, or nullopt when the adapter
  // has none (fs). `filename` and `content_type` become the response's headers.
  virtual std::optional<std::string> presign_get(const std::string& key, int ttl_s,
                                                 const std::string& filename,
                                                 const std::string& content_type) = 0;
};

}  // namespace chat4all
