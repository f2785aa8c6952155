// Contract of the blob_store port (src/domain/ports/blob_store.hpp), run against every adapter:
// fs_blob_store always, s3_blob_store when CHAT4ALL_TEST_S3_ENDPOINT (and _BUCKET, _REGION,
// _ACCESS_KEY, _SECRET_KEY) name a running S3 server — scripts/test.sh starts MinIO with
// scripts/services/minio.sh; without them the s3 instantiation is skipped.
// Parts are 5 MiB (S3's smallest part but the last) plus a short last part.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <curl/curl.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "adapters/blob/fs/fs_blob_store.hpp"
#include "adapters/blob/s3/s3_blob_store.hpp"
#include "core/crypto.hpp"
#include "support/run_sync.hpp"

namespace chat4all {
namespace {

namespace asio = boost::asio;
using testing::run_sync;
constexpr std::uint64_t mib = 1024 * 1024;

// Hands out `data` in pieces of varying size, yielding to the executor between pieces (like a
// socket would), optionally stopping early.
class string_source final : public byte_source {
 public:
  explicit string_source(std::string data, std::size_t stop_at = std::string::npos)
      : data_(std::move(data)), stop_at_(std::min(stop_at, data_.size())) {}
  asio::awaitable<result<std::size_t>> read_some(std::span<char> buf) override {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    const std::size_t piece = 1 + (calls_++ * 7919) % 100'000;
    const std::size_t n = std::min({buf.size(), piece, stop_at_ - pos_});
    std::copy_n(data_.data() + pos_, n, buf.data());
    pos_ += n;
    co_return n;
  }

 private:
  std::string data_;
  std::size_t stop_at_, pos_ = 0, calls_ = 0;
};

class string_sink final : public byte_sink {
 public:
  std::string data;
  std::size_t fail_after = std::string::npos;
  asio::awaitable<result<void>> write(std::string_view bytes) override {
    if (data.size() >= fail_after) co_return error(errc::unavailable, "client went away");
    data.append(bytes);
    co_return ok;
  }
};

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const auto v = rng();
    std::memcpy(s.data() + i, &v, std::min<std::size_t>(8, n - i));
  }
  return s;
}

std::string unique_prefix() {
  return "contract-" + crypto::to_hex(crypto::random_bytes(6)) + "/";
}

struct fs_factory {
  std::filesystem::path dir;
  void set_up() {
    dir = std::filesystem::temp_directory_path() / ("blob-contract-" + unique_prefix());
    dir = dir.string().substr(0, dir.string().size() - 1);
  }
  void tear_down() { std::filesystem::remove_all(dir); }
  std::unique_ptr<blob_store> make() { return std::make_unique<fs_blob_store>(dir.string()); }
  std::string key(std::string_view name) { return "objects/" + std::string(name); }
  bool presigns() const { return false; }
};

struct s3_factory {
  s3_options o;
  std::string prefix;
  static std::string env(const char* name, const char* fallback = "") {
    const char* v = std::getenv(name);
    return v ? v : fallback;
  }
  void set_up() {
    o.endpoint = env("CHAT4ALL_TEST_S3_ENDPOINT");
    if (o.endpoint.empty()) GTEST_SKIP() << "CHAT4ALL_TEST_S3_ENDPOINT not set (no S3 server)";
    o.bucket = env("CHAT4ALL_TEST_S3_BUCKET", "chat4all");
    o.region = env("CHAT4ALL_TEST_S3_REGION", "us-east-1");
    o.access_key = env("CHAT4ALL_TEST_S3_ACCESS_KEY");
    o.secret_key = env("CHAT4ALL_TEST_S3_SECRET_KEY");
    o.transfers = 4;
    prefix = unique_prefix();
  }
  void tear_down() {}
  std::unique_ptr<blob_store> make() { return std::make_unique<s3_blob_store>(o); }
  std::string key(std::string_view name) { return prefix + std::string(name); }
  bool presigns() const { return true; }
};

template <class Factory>
class blob_contract : public ::testing::Test {
 protected:
  void SetUp() override {
    factory.set_up();
    if (IsSkipped()) return;
    store = factory.make();
  }
  void TearDown() override {
    store.reset();
    factory.tear_down();
  }

  result<std::string> put(const std::string& key, const std::string& upload, int n,
                          const std::string& data, std::size_t stop_at = std::string::npos) {
    string_source src(data, stop_at);
    return run_sync(store->put_part(key, upload, n, data.size(), src));
  }
  result<std::string> read(const std::string& key, std::uint64_t off, std::uint64_t len) {
    string_sink sink;
    auto r = run_sync(store->read(key, off, len, sink));
    if (!r) return r.err();
    return sink.data;
  }
  // Uploads `parts` as one object; returns the handle.
  std::string upload(const std::string& key, const std::vector<std::string>& parts) {
    auto h = run_sync(store->begin(key));
    EXPECT_TRUE(h) << h.err().message;
    std::vector<blob_part> list;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      auto tag = put(key, *h, static_cast<int>(i + 1), parts[i]);
      EXPECT_TRUE(tag) << tag.err().message;
      list.push_back({static_cast<int>(i + 1), parts[i].size(), *tag});
    }
    auto c = run_sync(store->complete(key, *h, list));
    EXPECT_TRUE(c) << c.err().message;
    return *h;
  }

  Factory factory;
  std::unique_ptr<blob_store> store;
};

using factories = ::testing::Types<fs_factory, s3_factory>;
TYPED_TEST_SUITE(blob_contract, factories);

TYPED_TEST(blob_contract, parts_assemble_into_one_object_read_by_ranges) {
  const std::string key = this->factory.key("round-trip");
  const std::vector<std::string> parts = {random_bytes(5 * mib, 1), random_bytes(5 * mib, 2),
                                          random_bytes(1000, 3)};
  const std::string whole = parts[0] + parts[1] + parts[2];
  this->upload(key, parts);
  auto all = this->read(key, 0, whole.size());
  ASSERT_TRUE(all) << all.err().message;
  EXPECT_EQ(crypto::sha256_hex(*all), crypto::sha256_hex(whole));
  for (auto [off, len] : {std::pair<std::uint64_t, std::uint64_t>{0, 1},
                          {5 * mib - 10, 20},     // across parts 1 and 2
                          {10 * mib - 1, 1001},   // into the last part, to the end
                          {whole.size() - 1, 1},  // the last byte
                          {3 * mib, 4 * mib}}) {  // a large middle range
    auto r = this->read(key, off, len);
    ASSERT_TRUE(r) << off << "+" << len << ": " << r.err().message;
    EXPECT_EQ(*r, whole.substr(off, len)) << off << "+" << len;
  }
  ASSERT_TRUE(run_sync(this->store->remove(key)));
  EXPECT_EQ(this->read(key, 0, 1).err().code, errc::not_found);
  EXPECT_TRUE(run_sync(this->store->remove(key)));  // idempotent
}

TYPED_TEST(blob_contract, a_source_that_ends_early_stores_nothing_and_a_part_can_be_replaced) {
  const std::string key = this->factory.key("short");
  auto h = run_sync(this->store->begin(key));
  ASSERT_TRUE(h) << h.err().message;
  const std::string first = random_bytes(5 * mib, 4), other = random_bytes(5 * mib, 5);
  auto bad = this->put(key, *h, 1, first, 3 * mib);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code, errc::invalid_input);
  // Not stored: completing with that part fails; then the part is sent again, twice.
  auto tag_a = this->put(key, *h, 1, other);
  ASSERT_TRUE(tag_a) << tag_a.err().message;
  auto tag_b = this->put(key, *h, 1, first);  // replaces part 1
  ASSERT_TRUE(tag_b) << tag_b.err().message;
  const std::string last = random_bytes(10, 6);
  auto tag_c = this->put(key, *h, 2, last);
  ASSERT_TRUE(tag_c);
  ASSERT_TRUE(run_sync(
      this->store->complete(key, *h, {{1, first.size(), *tag_b}, {2, last.size(), *tag_c}})));
  auto r = this->read(key, 0, first.size() + last.size());
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_TRUE(*r == first + last);
  EXPECT_TRUE(run_sync(this->store->remove(key)));
}

TYPED_TEST(blob_contract, abort_drops_the_parts_and_is_idempotent) {
  const std::string key = this->factory.key("aborted");
  auto h = run_sync(this->store->begin(key));
  ASSERT_TRUE(h);
  auto tag = this->put(key, *h, 1, random_bytes(5 * mib, 7));
  ASSERT_TRUE(tag) << tag.err().message;
  ASSERT_TRUE(run_sync(this->store->abort(key, *h)));
  EXPECT_TRUE(run_sync(this->store->abort(key, *h)));
  auto late = this->put(key, *h, 2, random_bytes(100, 8));
  EXPECT_FALSE(late);
  EXPECT_EQ(late.err().code, errc::not_found);
  EXPECT_FALSE(run_sync(this->store->complete(key, *h, {{1, 5 * mib, *tag}})));
  EXPECT_EQ(this->read(key, 0, 1).err().code, errc::not_found);
}

TYPED_TEST(blob_contract, ping_answers_ok_for_a_usable_store) {
  auto r = run_sync(this->store->ping());
  EXPECT_TRUE(r) << r.err().message;
}

TYPED_TEST(blob_contract, unknown_objects_and_a_sink_that_fails) {
  EXPECT_EQ(this->read(this->factory.key("never-written"), 0, 10).err().code, errc::not_found);
  const std::string key = this->factory.key("sink-fails");
  const std::string data = random_bytes(6 * mib, 9);
  this->upload(key, {data.substr(0, 5 * mib), data.substr(5 * mib)});
  string_sink sink;
  sink.fail_after = 300 * 1024;
  auto r = run_sync(this->store->read(key, 0, data.size(), sink));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "client went away");
  EXPECT_LT(sink.data.size(), data.size());
  EXPECT_EQ(sink.data, data.substr(0, sink.data.size()));
  // The store still works after an abandoned transfer.
  auto again = this->read(key, 1, 100);
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(*again, data.substr(1, 100));
  EXPECT_TRUE(run_sync(this->store->remove(key)));
}

// One object's whole life, as a coroutine (a free function: g++ 12 mishandles coroutine lambdas).
asio::awaitable<std::optional<std::string>> upload_and_check(blob_store& store, std::string key,
                                                             unsigned seed) {
  auto h = co_await store.begin(key);
  if (!h) co_return "begin: " + h.err().message;
  const std::string a = random_bytes(5 * mib, seed), b = random_bytes(1234, seed + 100);
  string_source sa(a), sb(b);
  auto ta = co_await store.put_part(key, *h, 1, a.size(), sa);
  auto tb = co_await store.put_part(key, *h, 2, b.size(), sb);
  if (!ta || !tb) co_return std::string("put_part failed");
  std::vector<blob_part> parts;  // not a braced list in co_await: g++ 12 rejects it
  parts.push_back({1, a.size(), *ta});
  parts.push_back({2, b.size(), *tb});
  auto c = co_await store.complete(key, *h, std::move(parts));
  if (!c) co_return "complete: " + c.err().message;
  string_sink sink;
  if (auto r = co_await store.read(key, 0, a.size() + b.size(), sink); !r)
    co_return "read: " + r.err().message;
  if (sink.data != a + b) co_return std::string("content differs");
  if (auto r = co_await store.remove(key); !r) co_return "remove: " + r.err().message;
  co_return std::nullopt;
}

// Several objects at once from several I/O threads: no interference, no deadlock.
TYPED_TEST(blob_contract, concurrent_uploads_from_several_threads) {
  constexpr int objects = 6;
  asio::io_context ioc;
  std::vector<std::future<std::optional<std::string>>> done;
  for (int i = 0; i < objects; ++i)
    done.push_back(asio::co_spawn(
        ioc, upload_and_check(*this->store, this->factory.key("c" + std::to_string(i)), 20 + i),
        asio::use_future));
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back([&] { ioc.run(); });
  for (auto& t : threads) t.join();
  for (auto& f : done) {
    auto problem = f.get();
    EXPECT_FALSE(problem) << *problem;
  }
}

TYPED_TEST(blob_contract, presigned_get_serves_the_object_when_the_adapter_presigns) {
  const std::string key = this->factory.key("presigned file.bin");
  auto url = this->store->presign_get(key, 60, "résumé.bin", "application/pdf");
  if (!this->factory.presigns()) {
    EXPECT_FALSE(url);
    return;
  }
  const std::string data = random_bytes(1000, 11);
  this->upload(key, {data});
  url = this->store->presign_get(key, 60, "résumé.bin", "application/pdf");
  ASSERT_TRUE(url);
  // A plain unsigned GET of the URL, as a browser would do.
  CURL* h = curl_easy_init();
  std::string body, headers;
  auto append = +[](char* p, std::size_t s, std::size_t n, void* u) {
    static_cast<std::string*>(u)->append(p, s * n);
    return s * n;
  };
  curl_easy_setopt(h, CURLOPT_URL, url->c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, append);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &headers);
  ASSERT_EQ(curl_easy_perform(h), CURLE_OK);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  EXPECT_EQ(status, 200) << body;
  EXPECT_TRUE(body == data);
  EXPECT_NE(headers.find("Content-Type: application/pdf"), std::string::npos) << headers;
  EXPECT_NE(headers.find("filename*=UTF-8''r%C3%A9sum%C3%A9.bin"), std::string::npos) << headers;
  // A tampered signature is refused.
  std::string bad = *url;
  bad.back() = bad.back() == '0' ? '1' : '0';
  h = curl_easy_init();
  body.clear();
  curl_easy_setopt(h, CURLOPT_URL, bad.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  ASSERT_EQ(curl_easy_perform(h), CURLE_OK);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  EXPECT_EQ(status, 403);
  EXPECT_TRUE(run_sync(this->store->remove(key)));
}

// Not part of the port's contract but of the s3 adapter's: a store it cannot use is
// "unavailable" (retryable, 503 to clients), never a crash or a hang.
TEST(s3_blob_store_failures, wrong_credentials_and_an_unreachable_endpoint_are_unavailable) {
  s3_factory f;
  f.set_up();
  if (IsSkipped()) return;
  auto o = f.o;
  o.secret_key = "not-the-secret";
  s3_blob_store wrong(o);
  auto h = run_sync(wrong.begin(f.key("denied")));
  ASSERT_FALSE(h);
  EXPECT_EQ(h.err().code, errc::unavailable);
  EXPECT_NE(h.err().message.find("SignatureDoesNotMatch"), std::string::npos) << h.err().message;
  string_source src(random_bytes(100, 1));
  auto p = run_sync(wrong.put_part(f.key("denied"), "some-upload", 1, 100, src));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.err().code, errc::unavailable);

  o = f.o;
  o.endpoint = "http://127.0.0.1:9";  // discard port: nothing listens
  o.connect_timeout_ms = 1000;
  s3_blob_store down(o);
  auto d = run_sync(down.begin(f.key("down")));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.err().code, errc::unavailable);
  // The message reaches API clients (503): it names the operation, not the storage's address
  // (that goes to the server log).
  EXPECT_EQ(d.err().message.find("127.0.0.1"), std::string::npos) << d.err().message;
  EXPECT_NE(d.err().message.find("S3 CreateMultipartUpload"), std::string::npos) << d.err().message;
  string_source src2(random_bytes(6 * mib, 2));
  auto q = run_sync(down.put_part(f.key("down"), "some-upload", 1, 6 * mib, src2));
  ASSERT_FALSE(q);
  EXPECT_EQ(q.err().code, errc::unavailable);
  string_sink sink;
  auto r = run_sync(down.read(f.key("down"), 0, 10, sink));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
}

// ping() (GET /readyz) tells the three ways an S3 store is unusable apart, without naming
// the storage's address.
TEST(s3_blob_store_failures, ping_names_what_is_wrong) {
  s3_factory f;
  f.set_up();
  if (IsSkipped()) return;
  auto o = f.o;
  o.endpoint = "http://127.0.0.1:9";
  s3_blob_store down(o);
  auto d = run_sync(down.ping());
  ASSERT_FALSE(d);
  EXPECT_EQ(d.err().code, errc::unavailable);
  EXPECT_EQ(d.err().message.rfind("unreachable: ", 0), 0u) << d.err().message;
  EXPECT_EQ(d.err().message.find("127.0.0.1"), std::string::npos) << d.err().message;

  o = f.o;
  o.bucket = "no-such-bucket-" + f.prefix.substr(9, 8);
  s3_blob_store nobucket(o);
  auto n = run_sync(nobucket.ping());
  ASSERT_FALSE(n);
  EXPECT_EQ(n.err().code, errc::not_found);
  EXPECT_EQ(n.err().message, "no bucket " + o.bucket);

  o = f.o;
  o.secret_key = "not-the-secret";
  s3_blob_store wrong(o);
  auto w = run_sync(wrong.ping());
  ASSERT_FALSE(w);
  EXPECT_EQ(w.err().code, errc::unavailable);
}

TEST(fs_blob_store_failures, ping_fails_once_the_directory_is_gone) {
  fs_factory f;
  f.set_up();
  auto store = f.make();
  EXPECT_TRUE(run_sync(store->ping()));
  f.tear_down();  // removes the directory (as root, a read-only one would still be writable)
  auto r = run_sync(store->ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
}

}  // namespace
}  // namespace chat4all
