#include "adapters/blob/s3/s3_blob_store.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>

#include "adapters/blob/s3/byte_pipe.hpp"
#include "core/crypto.hpp"
#include "core/offload.hpp"
#include "core/thread_name.hpp"
#include "obs/logging.hpp"

namespace chat4all {
namespace {

using s3::byte_pipe;
constexpr std::size_t stage_bytes = 64 * 1024;
constexpr std::size_t max_error_body = 64 * 1024;

// RFC 3986 unreserved characters stay, everything else is %XX (uppercase): SigV4's encoding.
std::string uri_encode(std::string_view s, bool keep_slash) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// The text of the first <tag>...</tag> in `xml` ("" when absent). S3 answers are flat enough.
std::string xml_text(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const auto a = xml.find(open);
  if (a == std::string_view::npos) return {};
  const auto b = xml.find(close, a + open.size());
  if (b == std::string_view::npos) return {};
  return std::string(xml.substr(a + open.size(), b - a - open.size()));
}

bool valid_key(std::string_view key) {
  return !key.empty() && key.size() <= 900 && key.front() != '/' &&
         key.find("..") == std::string_view::npos;
}

struct http_call {
  enum class verb { get, head, put, post, del } method = verb::get;
  std::string url;
  std::vector<std::string> headers;
  std::string body;                     // POST body (small: XML)
  std::shared_ptr<byte_pipe> upload;    // PUT body, streamed
  std::uint64_t upload_size = 0;        //
  std::shared_ptr<byte_pipe> download;  // 2xx response body, streamed
  long timeout_ms = 0;                  // the whole request at most (0: no limit but the stall)
};

struct http_outcome {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;  // error bodies and small answers (bounded)
  std::string etag;
  std::string curl_error;
};

// One easy handle per worker thread: reset between calls, its connection cache kept.
struct easy_handle {
  CURL* h = curl_easy_init();
  ~easy_handle() {
    if (h) curl_easy_cleanup(h);
  }
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* out = static_cast<http_outcome*>(user);
  std::string_view line(data, size * n);
  if (line.size() > 5 && (line[0] == 'E' || line[0] == 'e') &&
      (line.substr(0, 5) == "ETag:" || line.substr(0, 5) == "etag:" ||
       line.substr(0, 5) == "Etag:")) {
    line.remove_prefix(5);
    while (!line.empty() && (line.front() == ' ' || line.front() == '"')) line.remove_prefix(1);
    while (!line.empty() &&
           (line.back() == '\r' || line.back() == '\n' || line.back() == ' ' || line.back() == '"'))
      line.remove_suffix(1);
    out->etag = std::string(line);
  }
  return size * n;
}

struct call_state {
  http_call* call;
  http_outcome* out;
  CURL* h;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* st = static_cast<call_state*>(user);
  const std::size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(st->h, CURLINFO_RESPONSE_CODE, &status);
  if (st->call->download && status >= 200 && status < 300)
    return st->call->download->write_blocking(data, len) ? len : 0;
  if (st->out->body.size() < max_error_body)
    st->out->body.append(data, std::min(len, max_error_body - st->out->body.size()));
  return len;
}

std::size_t on_read(char* data, std::size_t size, std::size_t n, void* user) {
  auto* st = static_cast<call_state*>(user);
  const auto k = st->call->upload->read_blocking(data, size * n);
  return k < 0 ? CURL_READFUNC_ABORT : static_cast<std::size_t>(k);
}

std::string amz_time(std::int64_t now_s, const char* fmt) {
  const std::time_t t = static_cast<std::time_t>(now_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

}  // namespace

struct s3_blob_store::impl {
  s3_options o;
  std::string sigv4;    // "aws:amz:<region>:s3"
  std::string userpwd;  // "<access>:<secret>"
  asio::thread_pool pool;

  explicit impl(s3_options opt)
      : o(std::move(opt)),
        sigv4("aws:amz:" + o.region + ":s3"),
        userpwd(o.access_key + ":" + o.secret_key),
        pool(static_cast<std::size_t>(std::max(o.transfers, 1))) {
    name_pool_threads(pool, static_cast<std::size_t>(std::max(o.transfers, 1)), "c4a-s3");
  }
  ~impl() { pool.join(); }

  std::string object_url(const std::string& key) const {
    return o.endpoint + "/" + uri_encode(o.bucket, false) + "/" + uri_encode(key, true);
  }

  // Runs one request on the calling (worker) thread.
  void perform(http_call& call, http_outcome& out) const {
    thread_local easy_handle easy;
    CURL* h = easy.h;
    if (!h) {
      out.code = CURLE_FAILED_INIT;
      out.curl_error = "curl_easy_init failed";
      return;
    }
    curl_easy_reset(h);
    call_state st{&call, &out, h};
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, call.url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(h, CURLOPT_USERPWD, userpwd.c_str());
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o.stall_timeout_s);
    if (call.timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, call.timeout_ms);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &out);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
    switch (call.method) {
      case http_call::verb::get:
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        break;
      case http_call::verb::head:
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        break;
      case http_call::verb::put:
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(call.upload_size));
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &st);
        break;
      case http_call::verb::post:
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, call.body.c_str());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
        break;
      case http_call::verb::del:
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    }
    curl_slist* headers = nullptr;
    for (const auto& hd : call.headers) headers = curl_slist_append(headers, hd.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    out.code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
    if (out.code != CURLE_OK) out.curl_error = errbuf[0] ? errbuf : curl_easy_strerror(out.code);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
  }

  // A small request (no streamed body) on a worker thread.
  asio::awaitable<http_outcome> run(http_call call) {
    auto work = [this, call = std::move(call)]() mutable {
      http_outcome out;
      perform(call, out);
      return out;
    };
    co_return co_await offload(pool.get_executor(), std::move(work));
  }

  // Starts a streamed request; `pipe->finish()` marks its end, then `out` is filled.
  void start(std::shared_ptr<http_call> call, std::shared_ptr<http_outcome> out,
             std::shared_ptr<byte_pipe> pipe) {
    asio::post(pool,
               [this, call = std::move(call), out = std::move(out), pipe = std::move(pipe)]() {
                 // Given up while it waited for a worker (the client left): no request.
                 if (!pipe->abandoned()) perform(*call, *out);
                 pipe->finish();
               });
  }

  // The outcome as a result: 2xx (without an <Error> body) is ok.
  static result<void> check(const http_outcome& out, const char* what) {
    const std::string op = std::string("S3 ") + what;
    if (out.code != CURLE_OK) {
      // curl's text names the endpoint (host, port): the server log gets it, clients do not.
      log::warn("S3 request failed", {{"operation", what}, {"reason", out.curl_error}});
      return error(errc::unavailable, op + ": the file storage is unreachable");
    }
    const std::string code = xml_text(out.body, "Code");
    const bool error_body = out.body.find("<Error>") != std::string::npos;
    if (out.status >= 200 && out.status < 300 && !error_body) return ok;
    std::string msg = op + " answered HTTP " + std::to_string(out.status);
    if (!code.empty()) msg += " " + code + ": " + xml_text(out.body, "Message");
    if (out.status == 404 || code.starts_with("NoSuch")) return error(errc::not_found, msg);
    if (out.status == 403 || out.status >= 500 || code == "SlowDown" || code == "InternalError" ||
        (error_body && out.status < 300))
      return error(errc::unavailable, msg);
    return error(errc::invalid_input, msg);
  }
};

s3_blob_store::s3_blob_store(s3_options o) {
  if (o.endpoint.empty() || o.bucket.empty())
    throw std::invalid_argument("s3_blob_store: endpoint and bucket are required");
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  if (o.public_endpoint.empty()) o.public_endpoint = o.endpoint;
  while (!o.public_endpoint.empty() && o.public_endpoint.back() == '/')
    o.public_endpoint.pop_back();
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_ = std::make_unique<impl>(std::move(o));
}

s3_blob_store::~s3_blob_store() = default;

asio::awaitable<result<std::string>> s3_blob_store::begin(std::string key) {
  if (!valid_key(key)) co_return error(errc::invalid_input, "invalid blob key");
  http_call call;
  call.method = http_call::verb::post;
  call.url = impl_->object_url(key) + "?uploads=";
  call.headers = {"Content-Type: application/octet-stream"};
  const auto out = co_await impl_->run(std::move(call));
  if (auto r = impl::check(out, "CreateMultipartUpload"); !r) co_return r.err();
  std::string id = xml_text(out.body, "UploadId");
  if (id.empty()) co_return error(errc::unavailable, "S3 CreateMultipartUpload: no UploadId");
  co_return id;
}

asio::awaitable<result<std::string>> s3_blob_store::put_part(std::string key, std::string upload,
                                                             int number, std::uint64_t size,
                                                             byte_source& src) {
  if (!valid_key(key) || number < 1 || number > 10000 || upload.empty())
    co_return error(errc::invalid_input, "invalid blob part");
  auto pipe = std::make_shared<byte_pipe>(impl_->o.buffer_bytes);
  auto call = std::make_shared<http_call>();
  call->method = http_call::verb::put;
  call->url = impl_->object_url(key) + "?partNumber=" + std::to_string(number) +
              "&uploadId=" + uri_encode(upload, false);
  // Signed as-is (curl takes the payload hash from this header): the body is streamed.
  call->headers = {"x-amz-content-sha256: UNSIGNED-PAYLOAD"};
  call->upload = pipe;
  call->upload_size = size;
  auto out = std::make_shared<http_outcome>();
  impl_->start(call, out, pipe);

  std::vector<char> stage(std::min(stage_bytes, impl_->o.buffer_bytes));
  std::uint64_t fed = 0;
  std::optional<error> src_error;
  while (fed < size && !pipe->finished()) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(stage.size(), size - fed));
    auto n = co_await src.read_some(std::span<char>(stage.data(), want));
    if (!n || *n == 0) {
      src_error = n ? error(errc::invalid_input, "the part ended before its declared size")
                    : std::move(n).err();
      break;
    }
    std::size_t off = 0;
    while (off < *n) {
      const std::size_t k = pipe->try_write(stage.data() + off, *n - off);
      off += k;
      if (k > 0) continue;
      if (pipe->finished() || pipe->abandoned()) break;  // S3 answered early (an error)
      co_await pipe->wait(byte_pipe::until::room);
    }
    fed += *n;
  }
  if (src_error)
    pipe->abandon();  // curl aborts: S3 stores no part shorter than its Content-Length
  else
    pipe->close_write();
  co_await pipe->wait(byte_pipe::until::finished);
  if (src_error) co_return std::move(*src_error);
  if (auto r = impl::check(*out, "UploadPart"); !r) co_return r.err();
  if (out->etag.empty()) co_return error(errc::unavailable, "S3 UploadPart: no ETag in the answer");
  co_return out->etag;
}

asio::awaitable<result<void>> s3_blob_store::complete(std::string key, std::string upload,
                                                      std::vector<blob_part> parts) {
  if (!valid_key(key) || upload.empty()) co_return error(errc::invalid_input, "invalid blob key");
  std::string xml = "<CompleteMultipartUpload>";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].number != static_cast<int>(i + 1))
      co_return error(errc::invalid_input, "parts must be numbered 1..n in order");
    xml += "<Part><PartNumber>" + std::to_string(parts[i].number) + "</PartNumber><ETag>\"" +
           parts[i].etag + "\"</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  http_call call;
  call.method = http_call::verb::post;
  call.url = impl_->object_url(key) + "?uploadId=" + uri_encode(upload, false);
  // The payload hash given explicitly: curl 7.88's own hash of a POST body does not match.
  call.headers = {"Content-Type: application/xml",
                  "x-amz-content-sha256: " + crypto::sha256_hex(xml)};
  call.body = std::move(xml);
  const auto out = co_await impl_->run(std::move(call));
  auto r = impl::check(out, "CompleteMultipartUpload");
  if (r || r.err().code != errc::not_found) co_return r;
  // NoSuchUpload: completed already (a merge repeated after a crash) if the object exists.
  http_call head;
  head.method = http_call::verb::head;
  head.url = impl_->object_url(key);
  const auto h = co_await impl_->run(std::move(head));
  if (impl::check(h, "HeadObject")) co_return ok;
  co_return r;
}

asio::awaitable<result<void>> s3_blob_store::abort(std::string key, std::string upload) {
  if (!valid_key(key)) co_return error(errc::invalid_input, "invalid blob key");
  if (upload.empty()) co_return ok;
  http_call call;
  call.method = http_call::verb::del;
  call.url = impl_->object_url(key) + "?uploadId=" + uri_encode(upload, false);
  const auto out = co_await impl_->run(std::move(call));
  auto r = impl::check(out, "AbortMultipartUpload");
  if (!r && r.err().code == errc::not_found) co_return ok;  // gone already (or completed)
  co_return r;
}

asio::awaitable<result<void>> s3_blob_store::read(std::string key, std::uint64_t offset,
                                                  std::uint64_t length, byte_sink& sink) {
  if (!valid_key(key)) co_return error(errc::invalid_input, "invalid blob key");
  if (length == 0) co_return ok;
  auto pipe = std::make_shared<byte_pipe>(impl_->o.buffer_bytes);
  auto call = std::make_shared<http_call>();
  call->method = http_call::verb::get;
  call->url = impl_->object_url(key);
  call->headers = {"Range: bytes=" + std::to_string(offset) + "-" +
                   std::to_string(offset + length - 1)};
  call->download = pipe;
  auto out = std::make_shared<http_outcome>();
  impl_->start(call, out, pipe);

  std::vector<char> stage(std::min(stage_bytes, impl_->o.buffer_bytes));
  std::uint64_t got = 0;
  result<void> sunk = ok;
  for (;;) {
    const bool was_finished = pipe->finished();  // read before: no byte can follow it
    const std::size_t k = pipe->try_read(stage.data(), stage.size());
    if (k > 0) {
      got += k;
      if (got > length) {
        pipe->abandon();
        sunk = error(errc::unavailable, "S3 GetObject returned more than the range");
        break;
      }
      sunk = co_await sink.write(std::string_view(stage.data(), k));
      if (!sunk) {
        pipe->abandon();  // the client left: stop the transfer
        break;
      }
      continue;
    }
    if (was_finished) break;
    co_await pipe->wait(byte_pipe::until::data);
  }
  co_await pipe->wait(byte_pipe::until::finished);
  if (!sunk) co_return sunk;
  if (out->status == 416) co_return error(errc::invalid_input, "range outside the object");
  if (auto r = impl::check(*out, "GetObject"); !r) co_return r;
  if (got != length)
    co_return error(errc::unavailable, "S3 GetObject returned " + std::to_string(got) + " of " +
                                           std::to_string(length) + " bytes");
  co_return ok;
}

asio::awaitable<result<void>> s3_blob_store::remove(std::string key) {
  if (!valid_key(key)) co_return error(errc::invalid_input, "invalid blob key");
  http_call call;
  call.method = http_call::verb::del;
  call.url = impl_->object_url(key);
  const auto out = co_await impl_->run(std::move(call));
  auto r = impl::check(out, "DeleteObject");
  if (!r && r.err().code == errc::not_found) co_return ok;
  co_return r;
}

asio::awaitable<result<void>> s3_blob_store::ping() {
  http_call call;
  call.method = http_call::verb::head;
  call.url = impl_->o.endpoint + "/" + uri_encode(impl_->o.bucket, false);
  call.timeout_ms = 3000;
  const auto out = co_await impl_->run(std::move(call));
  // Not through check(): that logs every failed request, and the caller pings every few
  // seconds (it logs the changes of state instead).
  // curl's generic text ("Couldn't connect to server"), not its message: that names the
  // endpoint, and /readyz is public.
  if (out.code != CURLE_OK)
    co_return error(errc::unavailable, std::string("unreachable: ") + curl_easy_strerror(out.code));
  if (out.status == 404) co_return error(errc::not_found, "no bucket " + impl_->o.bucket);
  co_return impl::check(out, "HeadBucket");
}

std::string s3_blob_store::presign(const std::string& key, int ttl_s, std::int64_t now_s,
                                   std::vector<std::pair<std::string, std::string>> query) const {
  const auto& o = impl_->o;
  const std::string date = amz_time(now_s, "%Y%m%d");
  const std::string stamp = amz_time(now_s, "%Y%m%dT%H%M%SZ");
  const std::string scope = date + "/" + o.region + "/s3/aws4_request";
  auto host = std::string_view(o.public_endpoint);
  host.remove_prefix(host.find("://") + 3);
  host = host.substr(0, host.find('/'));
  query.emplace_back("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  query.emplace_back("X-Amz-Credential", o.access_key + "/" + scope);
  query.emplace_back("X-Amz-Date", stamp);
  query.emplace_back("X-Amz-Expires", std::to_string(std::clamp(ttl_s, 1, 7 * 86400)));
  query.emplace_back("X-Amz-SignedHeaders", "host");
  std::vector<std::pair<std::string, std::string>> enc;
  for (const auto& [k, v] : query) enc.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string qs;
  for (const auto& [k, v] : enc) qs += (qs.empty() ? "" : "&") + k + "=" + v;
  const std::string path = "/" + uri_encode(o.bucket, false) + "/" + uri_encode(key, true);
  const std::string canonical =
      "GET\n" + path + "\n" + qs + "\nhost:" + std::string(host) + "\n\nhost\nUNSIGNED-PAYLOAD";
  const std::string to_sign =
      "AWS4-HMAC-SHA256\n" + stamp + "\n" + scope + "\n" + crypto::sha256_hex(canonical);
  std::string k = crypto::hmac_sha256("AWS4" + o.secret_key, date);
  k = crypto::hmac_sha256(k, o.region);
  k = crypto::hmac_sha256(k, "s3");
  k = crypto::hmac_sha256(k, "aws4_request");
  const std::string sig = crypto::to_hex(crypto::hmac_sha256(k, to_sign));
  return o.public_endpoint + path + "?" + qs + "&X-Amz-Signature=" + sig;
}

std::optional<std::string> s3_blob_store::presign_get(const std::string& key, int ttl_s,
                                                      const std::string& filename,
                                                      const std::string& content_type) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return presign(key, ttl_s, now,
                 {{"response-content-disposition",
                   "attachment; filename*=UTF-8''" + uri_encode(filename, false)},
                  {"response-content-type", content_type}});
}

}  // namespace chat4all
