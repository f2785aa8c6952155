#pragma once
// CRC-32C (Castagnoli), the checksum of embedded log records. The SSE4.2 crc32 instruction
// where the CPU has it (checked at run time), else table-driven (slice-by-8); no dependency.
// Thread-safe (pure function).

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace chat4all::log_embedded {

// Extends `crc` (the CRC of the bytes so far; 0 for none) with `n` bytes at `data`.
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept;
// The table-driven version, whatever the CPU (tests compare the two).
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t n) noexcept;

inline std::uint32_t crc32c(std::string_view s) noexcept {
  return crc32c_extend(0, s.data(), s.size());
}

}  // namespace chat4all::log_embedded
