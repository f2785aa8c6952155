#include "adapters/log/embedded/record_format.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "adapters/log/embedded/crc32c.hpp"

namespace chat4all::log_embedded {
namespace {

constexpr std::size_t read_chunk = 256 * 1024;

void put_u32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

}  // namespace

void append_frame(std::string& out, std::int64_t offset, std::string_view key,
                  std::string_view value) {
  const std::size_t start = out.size();
  out.resize(start + frame_size(key.size(), value.size()));
  char* p = out.data() + start;
  const auto length = static_cast<std::uint32_t>(frame_header_bytes - frame_prefix_bytes +
                                                 key.size() + value.size());
  put_u32(p, length);
  put_u64(p + 8, static_cast<std::uint64_t>(offset));
  put_u32(p + 16, static_cast<std::uint32_t>(key.size()));
  if (!key.empty()) std::memcpy(p + frame_header_bytes, key.data(), key.size());
  if (!value.empty()) std::memcpy(p + frame_header_bytes + key.size(), value.data(), value.size());
  put_u32(p + 4, crc32c_extend(0, p + frame_prefix_bytes, length));
}

segment_reader::segment_reader(int fd, std::uint64_t position)
    : fd_(fd), buf_(read_chunk), buffer_pos_(position) {}

bool segment_reader::fill(std::size_t n) {
  if (tail_ - head_ >= n) return true;
  if (head_ > 0) {
    std::memmove(buf_.data(), buf_.data() + head_, tail_ - head_);
    buffer_pos_ += head_;
    tail_ -= head_;
    head_ = 0;
  }
  if (buf_.size() < n) buf_.resize(n);
  while (tail_ < n) {
    const ssize_t r = ::pread(fd_, buf_.data() + tail_, buf_.size() - tail_,
                              static_cast<off_t>(buffer_pos_ + tail_));
    if (r < 0) {
      if (errno == EINTR) continue;
      errno_ = errno;
      return false;
    }
    if (r == 0) return false;
    tail_ += static_cast<std::size_t>(r);
  }
  return true;
}

segment_reader::status segment_reader::next(frame_view& out) {
  if (!fill(frame_prefix_bytes)) {
    if (errno_ != 0) return status::io_error;
    return head_ == tail_ ? status::eof : status::torn;
  }
  const char* p = buf_.data() + head_;
  const std::uint32_t length = get_u32(p);
  if (length < frame_header_bytes - frame_prefix_bytes ||
      length > max_frame_bytes - frame_prefix_bytes) {
    return status::corrupt;
  }
  if (!fill(frame_prefix_bytes + length)) return errno_ != 0 ? status::io_error : status::torn;
  p = buf_.data() + head_;
  if (crc32c_extend(0, p + frame_prefix_bytes, length) != get_u32(p + 4)) return status::corrupt;
  const std::uint32_t key_bytes = get_u32(p + 16);
  if (key_bytes > length - (frame_header_bytes - frame_prefix_bytes)) return status::corrupt;
  out.offset = static_cast<std::int64_t>(get_u64(p + 8));
  out.key = std::string_view(p + frame_header_bytes, key_bytes);
  out.value = std::string_view(p + frame_header_bytes + key_bytes,
                               length - (frame_header_bytes - frame_prefix_bytes) - key_bytes);
  head_ += frame_prefix_bytes + length;
  return status::ok;
}

}  // namespace chat4all::log_embedded
