#pragma once
// Small cryptographic helpers over OpenSSL (digests, HMAC) and libsodium (randomness,
// constant-time comparison). Byte strings are carried in std::string / std::string_view.
//
// Thread-safety: every function is safe to call from any thread concurrently; sha256_stream
// objects are not shared between threads.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace chat4all::crypto {

inline constexpr std::size_t sha256_size = 32;

// Initialises libsodium once per process (idempotent, thread-safe). Every helper here that
// needs libsodium calls it; call it early at startup to fail fast. Throws std::runtime_error
// when libsodium cannot initialise (no usable entropy source).
void ensure_sodium();

// SHA-256 of `data` as 32 raw bytes.
std::string sha256(std::string_view data);
// SHA-256 of `data` as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);
// HMAC-SHA-256 of `data` keyed with `key`, as 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);

// A stable 64-bit content hash: the first 8 bytes of SHA-256(data), read big-endian. Equal
// across processes, machines and releases (safe to persist), unlike std::hash.
std::uint64_t hash64(std::string_view data);
// hash64 of the concatenation of `parts` (without building it).
std::uint64_t hash64(std::span<const std::string_view> parts);

// Incremental SHA-256 for data that arrives in pieces (uploads). Movable, not copyable.
class sha256_stream {
 public:
  sha256_stream();
  ~sha256_stream();
  sha256_stream(sha256_stream&&) noexcept;
  sha256_stream& operator=(sha256_stream&&) noexcept;
  sha256_stream(const sha256_stream&) = delete;
  sha256_stream& operator=(const sha256_stream&) = delete;

  void update(std::string_view data);
  // The digest (32 raw bytes) of everything passed to update(); the stream is then reset
  // and can hash new data.
  std::string finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Incremental digest by algorithm name ("sha1", "sha256"), for protocols that let the client
// choose (tus checksum extension). Movable, not copyable.
class digest_stream {
 public:
  // nullopt for an unsupported algorithm name.
  static std::optional<digest_stream> create(std::string_view algorithm);
  ~digest_stream();
  digest_stream(digest_stream&&) noexcept;
  digest_stream& operator=(digest_stream&&) noexcept;
  void update(std::string_view data);
  std::string finish();  // raw digest

 private:
  struct impl;
  explicit digest_stream(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// Standard base64 (RFC 4648 §4, '+' '/' and optional '=' padding) decoding; nullopt when
// malformed.
std::optional<std::string> base64_decode(std::string_view text);

// Lowercase hex of raw bytes.
std::string to_hex(std::string_view bytes);

// Base64url (RFC 4648 §5) without padding, as used by JWT.
std::string base64url_encode(std::string_view bytes);
// Strict decoding: nullopt on any character outside [A-Za-z0-9_-] (padding '=' included),
// an impossible length, or non-zero trailing bits (so each byte string has one encoding).
std::optional<std::string> base64url_decode(std::string_view text);

// `n` bytes from the operating system's CSPRNG (libsodium randombytes_buf).
std::string random_bytes(std::size_t n);
// `n` random bytes encoded with base64url: opaque tokens (refresh tokens, secrets).
std::string random_token(std::size_t n = 32);

// Compares two byte strings in time that depends only on their lengths (lengths are not
// treated as secret). Use for MACs, signatures and token hashes.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace chat4all::crypto
