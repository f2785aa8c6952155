#pragma once
// Object storage port for uploaded files. Adapters: fs_blob_store (embedded, under the data
// directory), s3_blob_store (S3/MinIO multipart). A file is uploaded as numbered parts that
// are streamed in; completion assembles them into one object without the caller holding
// the bytes. Errors: not_found (unknown upload/object), unavailable (retryable).

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace chat4all {

// Receives one part's bytes in order; finish() makes the part durable.
class blob_part_writer {
 public:
  virtual ~blob_part_writer() = default;
  virtual boost::asio::awaitable<result<void>> write(std::string_view bytes) = 0;
  virtual boost::asio::awaitable<result<void>> finish() = 0;
};

class blob_store {
 public:
  virtual ~blob_store() = default;
  // Starts a multi-part object under `key`; returns an upload handle string.
  virtual boost::asio::awaitable<result<std::string>> begin(std::string key) = 0;
  virtual boost::asio::awaitable<result<std::unique_ptr<blob_part_writer>>> open_part(
      std::string key, std::string upload, int part_number, std::uint64_t size) = 0;
  // Assembles parts 1..n into the object `key`.
  virtual boost::asio::awaitable<result<void>> complete(std::string key, std::string upload,
                                                        int parts) = 0;
  virtual boost::asio::awaitable<result<void>> abort(std::string key, std::string upload) = 0;
  // Reads [offset, offset+length) of a completed object.
  virtual boost::asio::awaitable<result<std::string>> read(std::string key, std::uint64_t offset,
                                                           std::uint64_t length) = 0;
  virtual boost::asio::awaitable<result<void>> remove(std::string key) = 0;
};

}  // namespace chat4all
