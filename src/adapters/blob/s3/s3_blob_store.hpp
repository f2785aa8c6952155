#pragma once
// s3_blob_store: blobs in an S3-compatible object store (MinIO, AWS S3) over libcurl, signed
// with curl's built-in AWS SigV4 (CURLOPT_AWS_SIGV4 "aws:amz:<region>:s3"), path-style URLs
// (<endpoint>/<bucket>/<key>).
//
// Mapping of the blob_store port:
//   begin     CreateMultipartUpload (POST ?uploads=), the S3 upload id is the handle
//   put_part  UploadPart (PUT ?partNumber=n&uploadId=..), the body streamed from the source
//             with its Content-Length and `x-amz-content-sha256: UNSIGNED-PAYLOAD`; the ETag
//             is the part's tag
//   complete  CompleteMultipartUpload (no byte copied)
//   abort     AbortMultipartUpload (a missing upload is fine)
//   read      ranged GetObject streamed to the sink
//   remove    DeleteObject
//   presign   SigV4 query signing (computed here: curl signs requests, it does not presign)
//             with the host of `public_endpoint`
//
// Streaming: a request runs as one blocking curl easy call on one of the store's `transfers`
// worker threads (each keeps its easy handle, hence its keep-alive connection). Bytes cross
// between the caller's coroutine and curl's read/write callback through a bounded pipe of
// `buffer_bytes`: the coroutine never blocks its I/O thread (it waits asynchronously for room
// or data), the worker blocks on a condition variable. Memory per transfer: the pipe, a 64 KiB
// staging buffer, curl's own buffers. More concurrent transfers than `transfers` wait in line
// (their pipe fills, then the request body is not read: TCP backpressure to the client).
//
// libcurl 7.88 SigV4 facts (checked against MinIO): the canonical query string is the URL's
// as written, so parameters are written sorted and with "=" ("?uploads=", not "?uploads");
// a user header `x-amz-content-sha256` is signed as given (UNSIGNED-PAYLOAD for streamed
// parts; the explicit SHA-256 of the XML body for CompleteMultipartUpload, whose own hash
// curl gets wrong); removing `Expect:` with an empty header makes curl sign a header it does
// not send, so parts keep curl's `Expect: 100-continue` (one local round trip per part).
//
// Errors: connection failures, timeouts, 5xx and 403 -> unavailable (retryable: a
// misconfigured key must not fail uploads for good); 404 NoSuch* -> not_found; other 4xx ->
// invalid_input; a source that ends early -> invalid_input (the part is not stored: curl
// aborts the request before its declared length).

#include <memory>
#include <string>

#include "domain/ports/blob_store.hpp"

namespace chat4all {

struct s3_options {
  std::string endpoint;  // http(s)://host:port, no trailing path
  std::string bucket;
  std::string region = "us-east-1";
  std::string access_key;
  std::string secret_key;
  std::string public_endpoint;  // presigned URL host; "" = endpoint
  int transfers = 32;           // worker threads = concurrent S3 requests
  std::size_t buffer_bytes = 256 * 1024;
  long connect_timeout_ms = 5000;
  long stall_timeout_s = 60;  // a transfer moving < 1 byte/s for this long is aborted
};

class s3_blob_store final : public blob_store {
 public:
  // Throws std::invalid_argument when the endpoint or bucket is empty.
  explicit s3_blob_store(s3_options o);
  ~s3_blob_store() override;

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
  // HeadBucket, with a 3 s limit.
  boost::asio::awaitable<result<void>> ping() override;
  std::optional<std::string> presign_get(const std::string& key, int ttl_s,
                                         const std::string& filename,
                                         const std::string& content_type) override;

  // SigV4 query-string presigning of a GET (exposed for tests): `now_s` is the signing time
  // (Unix seconds), `query` extra parameters (unencoded) signed with the request.
  std::string presign(const std::string& key, int ttl_s, std::int64_t now_s,
                      std::vector<std::pair<std::string, std::string>> query) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace chat4all
