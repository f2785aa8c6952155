#include "app/upload_client.hpp"

#include <boost/json.hpp>

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include "core/crypto.hpp"

namespace chat4all::app {
namespace {
namespace json = boost::json;
namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;

struct reply {
  long status = 0;  // 0: no answer (network error)
  std::string body;
  std::string error;  // curl's message when status == 0
  json::value json() const {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    return ec ? json::value() : v;
  }
  // The server's error message, or the transport error.
  std::string why() const {
    if (status == 0) return error;
    auto v = json();
    if (v.is_object())
      if (auto* e = v.as_object().if_contains("error"); e && e->is_object())
        if (auto* m = e->as_object().if_contains("message"); m && m->is_string())
          return "HTTP " + std::to_string(status) + ": " + std::string(m->as_string());
    return "HTTP " + std::to_string(status);
  }
};

std::size_t collect(char* p, std::size_t s, std::size_t n, void* u) {
  static_cast<std::string*>(u)->append(p, s * n);
  return s * n;
}

// Draws the bar (a terminal) or a line per 10 % (a pipe) on stderr.
class progress {
 public:
  explicit progress(std::uint64_t total) : total_(total), tty_(::isatty(2) != 0) {}
  void set(std::uint64_t done) {
    const auto now = clk::now();
    if (tty_ && done != total_ && now - drawn_ < std::chrono::milliseconds(100)) return;
    const double pct =
        total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done - base_) / secs / (1 << 20) : 0;
    if (tty_) {
      const int width = 30, fill = static_cast<int>(pct / 100 * width);
      std::fprintf(stderr, "\r[%s%s] %5.1f%%  %.1f/%.1f MiB  %.1f MiB/s ",
                   std::string(static_cast<std::size_t>(fill), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - fill), '.').c_str(), pct,
                   static_cast<double>(done) / (1 << 20), static_cast<double>(total_) / (1 << 20),
                   rate);
      if (done == total_) std::fputc('\n', stderr);
    } else if (static_cast<int>(pct / 10) > last_decile_) {
      last_decile_ = static_cast<int>(pct / 10);
      std::fprintf(stderr, "uploaded %.0f%% (%.1f MiB/s)\n", pct, rate);
    }
    drawn_ = now;
  }
  void restart_rate(std::uint64_t done) {
    base_ = done;
    start_ = clk::now();
  }

 private:
  std::uint64_t total_, base_ = 0;
  bool tty_;
  int last_decile_ = -1;
  clk::time_point start_ = clk::now(), drawn_{};
};

class client {
 public:
  explicit client(std::string base) : base_(std::move(base)), h_(curl_easy_init()) {
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
  }
  ~client() { curl_easy_cleanup(h_); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  std::string token;
  long long max_rate = 0;

  reply call(const char* method, const std::string& path, const std::string& body = {}) {
    std::vector<std::string> headers = {"Content-Type: application/json"};
    prepare(method, path, headers);
    curl_easy_setopt(h_, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    if (std::string_view(method) == "GET") curl_easy_setopt(h_, CURLOPT_HTTPGET, 1L);
    return perform(headers);
  }

  // PUTs [offset, offset + len) of `fd`; `on_sent` gets the bytes sent so far.
  template <class F>
  reply put(const std::string& path, int fd, std::uint64_t offset, std::uint64_t len, F on_sent) {
    std::vector<std::string> headers = {"Content-Type: application/octet-stream", "Expect:"};
    prepare("PUT", path, headers);
    struct source {
      int fd;
      std::uint64_t pos, end;
    } src{fd, offset, offset + len};
    curl_easy_setopt(h_, CURLOPT_UPLOAD, 1L);
    if (max_rate > 0)
      curl_easy_setopt(h_, CURLOPT_MAX_SEND_SPEED_LARGE, static_cast<curl_off_t>(max_rate));
    curl_easy_setopt(h_, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(len));
    curl_easy_setopt(h_, CURLOPT_READDATA, &src);
    curl_easy_setopt(
        h_, CURLOPT_READFUNCTION,
        +[](char* p, std::size_t s, std::size_t n, void* u) -> std::size_t {
          auto* in = static_cast<source*>(u);
          const auto want = std::min<std::uint64_t>(s * n, in->end - in->pos);
          if (want == 0) return 0;
          const ssize_t got = ::pread(in->fd, p, want, static_cast<off_t>(in->pos));
          if (got <= 0) return CURL_READFUNC_ABORT;
          in->pos += static_cast<std::uint64_t>(got);
          return static_cast<std::size_t>(got);
        });
    curl_easy_setopt(h_, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h_, CURLOPT_XFERINFODATA, &on_sent);
    curl_easy_setopt(
        h_, CURLOPT_XFERINFOFUNCTION,
        +[](void* u, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) -> int {
          (*static_cast<F*>(u))(static_cast<std::uint64_t>(ulnow));
          return 0;
        });
    return perform(headers);
  }

 private:
  void prepare(const char* method, const std::string& path, std::vector<std::string>& headers) {
    curl_easy_reset(h_);
    url_ = base_ + path;
    curl_easy_setopt(h_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(h_, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h_, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h_, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h_, CURLOPT_LOW_SPEED_TIME, 60L);
    if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
  }
  reply perform(const std::vector<std::string>& headers) {
    reply r;
    char err[CURL_ERROR_SIZE] = {0};
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_setopt(h_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h_, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h_, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h_, CURLOPT_WRITEDATA, &r.body);
    const CURLcode rc = curl_easy_perform(h_);
    if (rc == CURLE_OK)
      curl_easy_getinfo(h_, CURLINFO_RESPONSE_CODE, &r.status);
    else
      r.error = err[0] ? err : curl_easy_strerror(rc);
    curl_easy_setopt(h_, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(list);
    return r;
  }

  std::string base_, url_;
  CURL* h_;
};

int fail(const std::string& what) {
  std::cerr << "upload: " << what << '\n';
  return 1;
}

fs::path state_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return fs::path(x) / "chat4all" / "uploads";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/tmp") / ".cache" / "chat4all" / "uploads";
}

std::string file_sha256(int fd, std::uint64_t size) {
  crypto::sha256_stream sha;
  std::vector<char> buf(1 << 20);
  progress bar(size);
  std::uint64_t done = 0;
  std::cerr << "hashing\n";
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    sha.update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    done += static_cast<std::uint64_t>(n);
    bar.set(done);
  }
  return crypto::to_hex(sha.finish());
}

std::vector<int> int_list(const json::value& v, const char* key) {
  std::vector<int> out;
  if (v.is_object())
    if (auto* a = v.as_object().if_contains(key); a && a->is_array())
      for (const auto& x : a->as_array())
        if (x.is_int64()) out.push_back(static_cast<int>(x.as_int64()));
  return out;
}

std::string text(const json::value& v, const char* key) {
  if (v.is_object())
    if (auto* s = v.as_object().if_contains(key); s && s->is_string())
      return std::string(s->as_string());
  return {};
}

}  // namespace

int upload_file(upload_options o) {
  const int fd = ::open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot open " + o.file);
  struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return fail(o.file + " is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0) return fail(o.file + " is empty");

  curl_global_init(CURL_GLOBAL_DEFAULT);
  client api(o.url);
  api.max_rate = o.max_rate;
  if (!o.token.empty()) {
    api.token = o.token;
  } else {
    if (o.user.empty())
      return fail("give --token, or --user (password from --password, CHAT4ALL_PASSWORD or stdin)");
    if (o.password.empty())
      if (const char* p = std::getenv("CHAT4ALL_PASSWORD")) o.password = p;
    if (o.password.empty()) std::getline(std::cin, o.password);
    json::object body{{"username", o.user}, {"password", o.password}};
    auto r = api.call("POST", "/auth/token", json::serialize(body));
    if (r.status != 200) return fail("login failed: " + r.why());
    api.token = text(r.json(), "access_token");
  }

  const std::string abs = fs::absolute(o.file).string();
  const fs::path state =
      state_dir() /
      crypto::sha256_hex(o.url + "|" + std::to_string(o.conversation) + "|" + abs + "|" +
                         std::to_string(size) + "|" + std::to_string(st.st_mtime))
          .substr(0, 32);
  std::string upload_id, sha;
  std::uint64_t chunk = 0;
  std::vector<int> missing;
  if (std::ifstream in(state); in && (in >> upload_id >> sha)) {
    auto r = api.call("GET", "/v1/files/" + upload_id + "/status");
    const auto v = r.json();
    const std::string status = text(v, "status");
    if (r.status == 200 &&
        (status == "UPLOADING" || status == "MERGING" || status == "COMPLETED")) {
      missing = int_list(v, "missing_chunks");
      chunk = v.as_object().at("chunk_size").to_number<std::uint64_t>();
      std::cerr << "resuming upload " << upload_id << ": " << missing.size() << " of "
                << v.as_object().at("total_chunks").to_number<int>() << " chunks to send\n";
    } else {
      std::cerr << "the earlier upload " << upload_id << " cannot be resumed ("
                << (r.status == 200 ? status : r.why()) << "); starting again\n";
      upload_id.clear();
    }
  }
  if (upload_id.empty()) {
    sha = file_sha256(fd, size);
    json::object body{{"conversation_id", o.conversation},
                      {"filename", fs::path(o.file).filename().string()},
                      {"file_size", size},
                      {"mime_type", o.mime_type},
                      {"checksum_sha256", sha}};
    if (o.chunk_size) body["chunk_size"] = *o.chunk_size;
    auto r = api.call("POST", "/v1/files/initiate", json::serialize(body));
    if (r.status != 201) return fail("initiate: " + r.why());
    const auto v = r.json();
    upload_id = text(v, "upload_id");
    chunk = v.as_object().at("chunk_size").to_number<std::uint64_t>();
    const int total = v.as_object().at("total_chunks").to_number<int>();
    for (int n = 1; n <= total; ++n) missing.push_back(n);
    std::error_code ec;
    fs::create_directories(state.parent_path(), ec);
    // Written aside then renamed: a run killed here leaves either no state or a whole one.
    const fs::path tmp = state.parent_path() / ("." + state.filename().string() + ".tmp");
    bool written = false;
    {
      std::ofstream f(tmp);
      written = static_cast<bool>(f << upload_id << ' ' << sha << '\n' << std::flush);
    }
    if (written) fs::rename(tmp, state, ec);
    if (!written || ec) {  // the upload goes on; only an automatic resume is lost
      std::cerr << "upload: cannot save the resume state in " << state.string() << " ("
                << (ec ? ec.message() : "write failed") << "); a rerun will start over\n";
      fs::remove(tmp, ec);
    }
  }

  // Send what is missing; on repeated failures ask the server again (it knows best).
  const int total = static_cast<int>((size + chunk - 1) / chunk);
  progress bar(size);
  auto chunk_len = [&](int n) {
    return std::min<std::uint64_t>(chunk, size - static_cast<std::uint64_t>(n - 1) * chunk);
  };
  for (int round = 0; !missing.empty(); ++round) {
    if (round == 10) return fail("giving up after 10 rounds; run the command again to resume");
    std::uint64_t have = size;
    for (int n : missing) have -= chunk_len(n);
    bar.restart_rate(have);
    bar.set(have);
    for (int n : missing) {
      const std::uint64_t len = chunk_len(n);
      reply r;
      for (int attempt = 0; attempt < 5; ++attempt) {
        auto sent = [&](std::uint64_t k) { bar.set(have + std::min(k, len)); };
        r = api.put("/v1/files/" + upload_id + "/chunks/" + std::to_string(n), fd,
                    static_cast<std::uint64_t>(n - 1) * chunk, len, sent);
        if (r.status == 200) break;
        if (r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429)
          return fail("chunk " + std::to_string(n) + ": " + r.why());
        std::cerr << "\nchunk " << n << ": " << r.why() << "; retrying\n";
        std::this_thread::sleep_for(std::chrono::seconds(1 << attempt));
      }
      if (r.status != 200) break;  // ask the server what it has
      have += len;
      bar.set(have);
    }
    auto s = api.call("GET", "/v1/files/" + upload_id + "/status");
    if (s.status != 200) return fail("status: " + s.why());
    missing = int_list(s.json(), "missing_chunks");
    if (text(s.json(), "status") != "UPLOADING") break;
  }

  auto c = api.call("POST", "/v1/files/" + upload_id + "/complete");
  if (c.status != 202) return fail("complete: " + c.why());
  std::cerr << "merging " << total << " chunks\n";
  for (int i = 0; i < 1200; ++i) {
    auto s = api.call("GET", "/v1/files/" + upload_id + "/status");
    const auto v = s.json();
    const std::string status = text(v, "status");
    if (s.status == 200 && (status == "COMPLETED" || status == "FAILED" || status == "EXPIRED")) {
      std::error_code ec;
      fs::remove(state, ec);
      if (status != "COMPLETED") return fail("the upload is " + status + ": " + text(v, "reason"));
      json::object out{{"file_id", text(v, "file_id")},
                       {"upload_id", upload_id},
                       {"sha256", text(v, "sha256")},
                       {"size", size}};
      std::cout << json::serialize(out) << std::endl;
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return fail("the merge did not finish within 10 minutes; run the command again to check");
}

}  // namespace chat4all::app
