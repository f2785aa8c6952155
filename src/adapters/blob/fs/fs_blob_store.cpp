#include "adapters/blob/fs/fs_blob_store.hpp"

#include <boost/asio/thread_pool.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "core/crypto.hpp"
#include "core/offload.hpp"
#include "core/thread_name.hpp"

namespace chat4all {
namespace fs = std::filesystem;

namespace {

bool valid_key(std::string_view key) {
  if (key.empty() || key.front() == '/' || key.find("..") != std::string_view::npos) return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == '/';
    if (!ok) return false;
  }
  return true;
}

std::string part_name(int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "part-%06d", n);
  return buf;
}

error io_error(const std::string& what, int err) {
  return error(errc::unavailable, what + ": " + std::strerror(err));
}

// Closes the descriptor on scope exit.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

struct fs_blob_store::impl {
  fs::path root;
  asio::thread_pool pool;
  std::size_t buffer_bytes;

  impl(std::string r, int threads, std::size_t buf)
      : root(std::move(r)),
        pool(static_cast<std::size_t>(std::max(threads, 1))),
        buffer_bytes(buf) {
    name_pool_threads(pool, static_cast<std::size_t>(std::max(threads, 1)), "c4a-blob");
  }
  ~impl() { pool.join(); }

  // The part sizes of a completed object, from its index.
  static result<std::vector<std::uint64_t>> load_index(const fs::path& dir) {
    std::ifstream in(dir / "index");
    if (!in) return error(errc::not_found, "no such object");
    std::vector<std::uint64_t> sizes;
    std::uint64_t s = 0;
    while (in >> s) sizes.push_back(s);
    return sizes;
  }
};

fs_blob_store::fs_blob_store(std::string root, int threads, std::size_t buffer_bytes)
    : impl_(std::make_unique<impl>(std::move(root), threads, buffer_bytes)) {
  std::error_code ec;
  fs::create_directories(impl_->root, ec);
  if (ec)
    throw std::runtime_error("fs_blob_store: cannot create " + impl_->root.string() + ": " +
                             ec.message());
}

fs_blob_store::~fs_blob_store() = default;

asio::awaitable<result<std::string>> fs_blob_store::begin(std::string key) {
  if (!valid_key(key)) co_return error(errc::invalid_input, "invalid blob key");
  const fs::path dir = impl_->root / key;
  auto mk = [dir]() -> result<std::string> {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return error(errc::unavailable, "cannot create " + dir.string() + ": " + ec.message());
    return std::string("fs");
  };
  co_return co_await offload(impl_->pool.get_executor(), std::move(mk));
}

asio::awaitable<result<std::string>> fs_blob_store::put_part(std::string key, std::string upload,
                                                             int number, std::uint64_t size,
                                                             byte_source& src) {
  if (!valid_key(key) || number < 1) co_return error(errc::invalid_input, "invalid blob part");
  const fs::path dir = impl_->root / key;
  const fs::path final_path = dir / part_name(number);
  const fs::path tmp_path =
      dir / (part_name(number) + ".tmp-" + crypto::to_hex(crypto::random_bytes(6)));
  auto open_tmp = [tmp_path]() -> int {
    const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    return fd >= 0 ? fd : -errno;  // errno belongs to the worker thread
  };
  fd_guard fd{co_await offload(impl_->pool.get_executor(), std::move(open_tmp))};
  if (fd.fd < 0) {
    const int err = -fd.fd;
    co_return err == ENOENT ? error(errc::not_found, "no such upload in the blob store")
                            : io_error("open " + tmp_path.string(), err);
  }
  auto discard = [tmp_path]() {
    std::error_code ec;
    fs::remove(tmp_path, ec);
  };

  std::vector<char> buf(impl_->buffer_bytes);
  std::uint64_t done = 0;
  while (done < size) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - done));
    // Fill the buffer as far as the source gives before one write: fewer thread hops.
    std::size_t have = 0;
    while (have < want) {
      auto n = co_await src.read_some(std::span<char>(buf.data() + have, want - have));
      if (!n || *n == 0) {
        co_await offload(impl_->pool.get_executor(), discard);
        if (!n) co_return std::move(n).err();
        co_return error(errc::invalid_input, "the part ended before its declared size");
      }
      have += *n;
    }
    auto write_all = [fd = fd.fd, data = buf.data(), have]() -> int {
      std::size_t off = 0;
      while (off < have) {
        ssize_t w = ::write(fd, data + off, have - off);
        if (w < 0) {
          if (errno == EINTR) continue;
          return errno;
        }
        off += static_cast<std::size_t>(w);
      }
      return 0;
    };
    if (int err = co_await offload(impl_->pool.get_executor(), write_all); err != 0) {
      co_await offload(impl_->pool.get_executor(), discard);
      co_return io_error("write " + tmp_path.string(), err);
    }
    done += have;
  }
  auto seal = [fd = fd.fd, tmp_path, final_path]() -> int {
    if (::fdatasync(fd) != 0) return errno;
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) return errno;
    return 0;
  };
  if (int err = co_await offload(impl_->pool.get_executor(), seal); err != 0) {
    co_await offload(impl_->pool.get_executor(), discard);
    co_return io_error("store part " + final_path.string(), err);
  }
  co_return std::string();
}

asio::awaitable<result<void>> fs_blob_store::complete(std::string key, std::string upload,
                                                      std::vector<blob_part> parts) {
  if (!valid_key(key)) co_return error(errc::invalid_input, "invalid blob key");
  const fs::path dir = impl_->root / key;
  auto write_index = [dir, parts = std::move(parts)]() -> result<void> {
    std::string text;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].number != static_cast<int>(i + 1))
        return error(errc::invalid_input, "parts must be numbered 1..n in order");
      std::error_code ec;
      const auto sz = fs::file_size(dir / part_name(parts[i].number), ec);
      if (ec)
        return error(errc::not_found, "part " + std::to_string(parts[i].number) + " is missing");
      if (sz != parts[i].size)
        return error(errc::invalid_input,
                     "part " + std::to_string(parts[i].number) + " has an unexpected size");
      text += std::to_string(sz);
      text += '\n';
    }
    const auto tmp = dir / "index.tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << text;
      out.flush();
      if (!out) return error(errc::unavailable, "cannot write " + tmp.string());
    }
    std::error_code ec;
    fs::rename(tmp, dir / "index", ec);
    if (ec) return error(errc::unavailable, "cannot write the index: " + ec.message());
    return ok;
  };
  co_return co_await offload(impl_->pool.get_executor(), std::move(write_index));
}

asio::awaitable<result<void>> fs_blob_store::abort(std::string key, std::string upload) {
  co_return co_await remove(std::move(key));
}

asio::awaitable<result<void>> fs_blob_store::remove(std::string key) {
  if (!valid_key(key)) co_return error(errc::invalid_input, "invalid blob key");
  const fs::path dir = impl_->root / key;
  auto rm = [dir]() -> result<void> {
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) return error(errc::unavailable, "cannot remove " + dir.string() + ": " + ec.message());
    return ok;
  };
  co_return co_await offload(impl_->pool.get_executor(), std::move(rm));
}

asio::awaitable<result<void>> fs_blob_store::ping() {
  auto check = [root = impl_->root]() -> result<void> {
    if (::access(root.c_str(), W_OK | X_OK) != 0)
      return error(errc::unavailable,
                   "cannot write " + root.string() + ": " + std::strerror(errno));
    return ok;
  };
  co_return co_await offload(impl_->pool.get_executor(), std::move(check));
}

asio::awaitable<result<void>> fs_blob_store::read(std::string key, std::uint64_t offset,
                                                  std::uint64_t length, byte_sink& sink) {
  if (!valid_key(key)) co_return error(errc::invalid_input, "invalid blob key");
  const fs::path dir = impl_->root / key;
  auto load = [dir]() { return impl::load_index(dir); };
  auto sizes = co_await offload(impl_->pool.get_executor(), std::move(load));
  if (!sizes) co_return std::move(sizes).err();
  std::uint64_t total = 0;
  for (auto s : *sizes) total += s;
  if (offset > total || length > total - offset)
    co_return error(errc::invalid_input, "range outside the object");

  std::vector<char> buf(impl_->buffer_bytes);
  std::uint64_t part_start = 0;
  for (std::size_t i = 0; i < sizes->size() && length > 0; ++i) {
    const std::uint64_t psize = (*sizes)[i];
    if (offset >= part_start + psize) {
      part_start += psize;
      continue;
    }
    const fs::path path = dir / part_name(static_cast<int>(i + 1));
    auto open_part = [path]() {
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      return fd >= 0 ? fd : -errno;
    };
    fd_guard fd{co_await offload(impl_->pool.get_executor(), std::move(open_part))};
    if (fd.fd < 0) co_return io_error("open " + path.string(), -fd.fd);
    std::uint64_t pos = offset - part_start;
    while (pos < psize && length > 0) {
      const auto want =
          static_cast<std::size_t>(std::min<std::uint64_t>({buf.size(), psize - pos, length}));
      auto pread_some = [fd = fd.fd, data = buf.data(), want, pos]() -> ssize_t {
        ssize_t n;
        do n = ::pread(fd, data, want, static_cast<off_t>(pos));
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
      };
      const ssize_t n = co_await offload(impl_->pool.get_executor(), pread_some);
      if (n <= 0) co_return io_error("read " + path.string(), n < 0 ? static_cast<int>(-n) : EIO);
      auto w = co_await sink.write(std::string_view(buf.data(), static_cast<std::size_t>(n)));
      if (!w) co_return w;
      pos += static_cast<std::uint64_t>(n);
      offset += static_cast<std::uint64_t>(n);
      length -= static_cast<std::uint64_t>(n);
    }
    part_start += psize;
  }
  co_return ok;
}

std::optional<std::string> fs_blob_store::presign_get(const std::string&, int, const std::string&,
                                                      const std::string&) {
  return std::nullopt;
}

}  // namespace chat4all
