#pragma once
// fs_blob_store: the embedded default blob store, on the local file system under `root`
// (normally <data_dir>/blobs).
//
// Layout: an object `key` is the directory <root>/<key>/ holding its parts as files
// (part-000001, ...) and, once completed, an `index` file listing the part sizes. Completion
// writes the index only: no byte is copied (like S3's CompleteMultipartUpload), and a read
// maps its range onto the parts. A part is written to a temporary file, fsync'd and renamed,
// so a part is either absent or whole, even after a crash.
//
// Threading: file I/O runs on the store's own `threads` worker threads; the awaiting coroutine
// resumes on its own executor. Each put_part/read uses one buffer of `buffer_bytes`.
// Keys must be relative paths of [A-Za-z0-9._/-] without "..": anything else is invalid_input.

#include <memory>
#include <string>

#include "domain/ports/blob_store.hpp"

namespace chat4all {

class fs_blob_store final : public blob_store {
 public:
  // Creates `root` if needed (throws std::runtime_error when it cannot: a startup error).
  explicit fs_blob_store(std::string root, int threads = 4, std::size_t buffer_bytes = 256 * 1024);
  ~fs_blob_store() override;

  boost::asio::awaitable<result<std::string>> begin(std::string key) override;
  boost::asio::awaitable<result<std::string>> put_part(std::string key, std::string upload,
                                                       int number, std::uint64_t size,
                                                       byte_source& src) override;
  boost::asio::awaitable<result<void>> complete(std::string key, std::string upload,
                                                std::vector<blob_part> parts) override;
  boost::asio::awaitable<result<void>> abort(std::string key, std::string upload) override;
  boost::asio::awaitable<result<void>> read(std::string key, std::uint64_t offset,
                                            std::uint64_t length, byte_sink& sink) override;
  boost::asio::awaitable<result<void>> remove(std::string key) override;
  // The root directory exists and is writable.
  boost::asio::awaitable<result<void>> ping() override;
  std::optional<std::string> presign_get(const std::string& key, int ttl_s,
                                         const std::string& filename,
                                         const std::string& content_type) override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace chat4all
