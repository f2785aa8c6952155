#pragma once
// On-disk framing of embedded log records and a sequential reader of segment files.
//
// A record (little-endian):
//   [u32 length][u32 crc32c][i64 offset][u32 key length][key][value]
// `length` counts the bytes after the crc field (offset, key length, key, value); the crc
// covers exactly those bytes. A segment file is a sequence of records with consecutive
// offsets starting at the segment's base offset (its file name).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chat4all::log_embedded {

inline constexpr std::size_t frame_prefix_bytes = 8;                        // length + crc
inline constexpr std::size_t frame_header_bytes = frame_prefix_bytes + 12;  // + offset + klen
// Upper bound of one record (key + value + header). Larger appends are rejected; a larger
// length field on disk is corruption.
inline constexpr std::size_t max_frame_bytes = 64u * 1024 * 1024;

inline std::size_t frame_size(std::size_t key_bytes, std::size_t value_bytes) {
  return frame_header_bytes + key_bytes + value_bytes;
}

// Appends one framed record to `out`.
void append_frame(std::string& out, std::int64_t offset, std::string_view key,
                  std::string_view value);

struct frame_view {
  std::int64_t offset = 0;
  std::string_view key;    // valid until the reader's next call
  std::string_view value;  // idem
};

// Reads the records of one segment file sequentially with pread (the file may be growing;
// bytes once written never change). Not thread-safe; does not own the descriptor.
class segment_reader {
 public:
  enum class status {
    ok,        // `out` holds the next record
    eof,       // clean end of file: no byte after the last record
    torn,      // a partial record at the end of the file (an interrupted write)
    corrupt,   // bad length or checksum
    io_error,  // pread failed (errno is kept in last_errno())
  };

  explicit segment_reader(int fd, std::uint64_t position = 0);
  status next(frame_view& out);
  // File position just after the last record returned (where a torn tail starts).
  std::uint64_t position() const { return buffer_pos_ + head_; }
  int last_errno() const { return errno_; }

 private:
  // Makes at least `n` bytes available at head_; false at end of file or on error.
  bool fill(std::size_t n);

  int fd_;
  std::vector<char> buf_;
  std::uint64_t buffer_pos_;  // file position of buf_[0]
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
  int errno_ = 0;
};

}  // namespace chat4all::log_embedded
