#include "adapters/log/embedded/topic.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <system_error>

#include "adapters/log/embedded/record_format.hpp"

namespace chat4all::log_embedded {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view segment_suffix = ".log";
constexpr std::string_view offset_prefix = "consumer-";
constexpr std::string_view offset_suffix = ".offset";
constexpr std::string_view tmp_suffix = ".tmp";
constexpr std::size_t base_digits = 20;

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

bool parse_i64(std::string_view s, std::int64_t& out) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && out >= 0;
}

bool read_small_file(const fs::path& p, std::string& out) {
  unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char buf[64];
  const ssize_t n = ::pread(fd.get(), buf, sizeof buf, 0);
  if (n < 0) return false;
  out.assign(buf, static_cast<std::size_t>(n));
  return true;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

std::string encode_name(std::string_view name) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(name.size());
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-' || (c == '.' && i > 0);
    if (keep) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  return out;
}

std::string decode_name(std::string_view s) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return {};
    const int hi = nibble(s[i + 1]), lo = nibble(s[i + 2]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) reset(std::exchange(o.fd_, -1));
  return *this;
}

void unique_fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

void poll_waiter::fire() {
  std::unique_ptr<completion<>> c;
  {
    std::lock_guard lk(m_);
    c = std::move(c_);
  }
  if (c) c->complete();
}

void sync_dir(const fs::path& dir) {
  unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) throw_errno("fsync directory " + dir.string());
}

topic::topic(fs::path dir, bool fsync) : dir_(std::move(dir)), fsync_(fsync) {}

fs::path topic::segment_path(std::int64_t base) const {
  char name[base_digits + 1];
  std::snprintf(name, sizeof name, "%020lld", static_cast<long long>(base));
  return dir_ / (std::string(name) + std::string(segment_suffix));
}

void topic::open() {
  std::call_once(open_once_, [this] { open_once(); });
}

void topic::open_once() {
  const bool created = fs::create_directories(dir_);
  if (created && fsync_) sync_dir(dir_.parent_path());
  std::vector<std::int64_t> bases;
  std::map<std::string, std::int64_t> committed;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    const std::string_view n = name;
    if (n.ends_with(tmp_suffix)) {
      fs::remove(entry.path());  // an offset file whose rename never happened
    } else if (n.size() == base_digits + segment_suffix.size() && n.ends_with(segment_suffix)) {
      std::int64_t base = 0;
      if (parse_i64(n.substr(0, base_digits), base)) bases.push_back(base);
    } else if (n.starts_with(offset_prefix) && n.ends_with(offset_suffix)) {
      const std::string group = decode_name(
          n.substr(offset_prefix.size(), n.size() - offset_prefix.size() - offset_suffix.size()));
      std::string text;
      std::int64_t off = 0;
      // An unreadable offset file means "start from the beginning": consumers are idempotent.
      if (!group.empty() && read_small_file(entry.path(), text) && parse_i64(text, off)) {
        committed[group] = off;
      } else if (!group.empty()) {
        committed[group] = 0;
      }
    }
  }
  std::sort(bases.begin(), bases.end());
  if (bases.empty()) bases.push_back(0);

  const std::int64_t last = bases.back();
  const fs::path path = segment_path(last);
  unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) throw_errno("open " + path.string());

  // Recovery: keep the longest prefix of well-formed records with consecutive offsets.
  segment_reader reader(fd.get());
  std::int64_t expected = last;
  std::uint64_t good_end = 0;
  segment_reader::status st;
  frame_view f;
  while ((st = reader.next(f)) == segment_reader::status::ok && f.offset == expected) {
    ++expected;
    good_end = reader.position();
  }
  if (st == segment_reader::status::io_error) {
    errno = reader.last_errno();
    throw_errno("read " + path.string());
  }
  if (st != segment_reader::status::eof) {
    if (::ftruncate(fd.get(), static_cast<off_t>(good_end)) != 0) {
      throw_errno("truncate " + path.string());
    }
  }
  // Records written by a process killed before its fsync are in the page cache: make them
  // durable before anyone reads them.
  if (fsync_) {
    if (::fdatasync(fd.get()) != 0) throw_errno("fdatasync " + path.string());
    sync_dir(dir_);
  }

  active_fd = std::move(fd);
  active_base = last;
  active_size = good_end;
  next_offset = expected;

  std::lock_guard lk(mu);
  segments = std::move(bases);
  durable_end = expected;
  for (auto& [g, off] : committed) off = std::clamp(off, segments.front(), expected);
  groups = std::move(committed);
}

std::int64_t topic::register_group(const std::string& group) {
  std::lock_guard lk(mu);
  auto [it, inserted] = groups.try_emplace(group, segments.front());
  it->second = std::max(it->second, segments.front());
  return it->second;
}

result<void> topic::commit(const std::string& group, std::int64_t offset) {
  std::vector<std::int64_t> doomed;
  {
    std::lock_guard commit_lock(commit_mu_);
    const std::string base = std::string(offset_prefix) + encode_name(group);
    const fs::path final_path = dir_ / (base + std::string(offset_suffix));
    const fs::path tmp_path = dir_ / (base + std::string(offset_suffix) + std::string(tmp_suffix));
    const std::string text = std::to_string(offset) + "\n";
    unique_fd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd || !write_all(fd.get(), text.data(), text.size())) {
      return error(errc::unavailable, "cannot write " + tmp_path.string());
    }
    fd.reset();
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
      return error(errc::unavailable, "cannot rename " + tmp_path.string());
    }
    std::lock_guard lk(mu);
    groups[group] = offset;
    std::int64_t min = offset;
    for (const auto& [g, off] : groups) min = std::min(min, off);
    // A segment is entirely consumed when the next one starts at or below `min`; the last
    // (active) segment is never deleted.
    std::size_t n = 0;
    while (n + 1 < segments.size() && segments[n + 1] <= min) ++n;
    doomed.assign(segments.begin(), segments.begin() + static_cast<std::ptrdiff_t>(n));
    segments.erase(segments.begin(), segments.begin() + static_cast<std::ptrdiff_t>(n));
  }
  // A failed unlink leaves the file in place; the next open lists it again and a later
  // commit retries, so there is nothing to report to the consumer here.
  for (const std::int64_t base : doomed) ::unlink(segment_path(base).c_str());
  return ok;
}

void topic::publish_durable(std::int64_t end) {
  std::vector<std::shared_ptr<poll_waiter>> woken;
  {
    std::lock_guard lk(mu);
    durable_end = end;
    woken.swap(waiters);
  }
  for (auto& w : woken) w->fire();
}

void topic::add_segment(std::int64_t base) {
  std::lock_guard lk(mu);
  segments.push_back(base);
}

void topic::wake_all() {
  std::vector<std::shared_ptr<poll_waiter>> woken;
  {
    std::lock_guard lk(mu);
    woken.swap(waiters);
  }
  for (auto& w : woken) w->fire();
}

}  // namespace chat4all::log_embedded
