#include "core/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <sodium.h>

#include <array>
#include <mutex>
#include <span>
#include <stdexcept>

namespace chat4all::crypto {
namespace {

constexpr char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// -1 for characters outside the base64url alphabet.
constexpr std::array<std::int8_t, 256> make_b64url_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(b64url_alphabet[i])] = i;
  return t;
}
constexpr auto b64url_table = make_b64url_table();

[[noreturn]] void openssl_failure(const char* what) {
  throw std::runtime_error(std::string("openssl: ") + what + " failed");
}

}  // namespace

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw std::runtime_error("libsodium: sodium_init failed");
  });
}

namespace {

// OpenSSL 3 looks the algorithm up in its provider store on every EVP_Digest/HMAC call that
// names it through EVP_sha256() (~0.3 µs of a ~0.5 µs one-shot digest of a short message,
// measured here). The implementations are fetched once, and each thread keeps one context.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return m != nullptr ? m : EVP_sha256();
  }();
  return md;
}

struct md_ctx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  md_ctx() {
    if (ctx == nullptr) openssl_failure("EVP_MD_CTX_new");
  }
  ~md_ctx() { EVP_MD_CTX_free(ctx); }
  md_ctx(const md_ctx&) = delete;
  md_ctx& operator=(const md_ctx&) = delete;
};

// SHA-256 of the concatenation of `parts` into `out` (32 bytes), with this thread's context.
void sha256_parts(std::span<const std::string_view> parts, unsigned char* out) {
  thread_local md_ctx c;
  unsigned int len = 0;
  bool ok = EVP_DigestInit_ex(c.ctx, sha256_md(), nullptr) == 1;
  for (auto p : parts) ok = ok && EVP_DigestUpdate(c.ctx, p.data(), p.size()) == 1;
  if (!ok || EVP_DigestFinal_ex(c.ctx, out, &len) != 1 || len != sha256_size)
    openssl_failure("SHA-256 digest");
}

// An HMAC context per thread, keyed with the last key it was given (services use one key).
struct mac_ctx {
  EVP_MAC_CTX* ctx = nullptr;
  std::string key;
  bool keyed = false;
  mac_ctx() {
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr || (ctx = EVP_MAC_CTX_new(mac)) == nullptr) openssl_failure("EVP_MAC");
  }
  ~mac_ctx() { EVP_MAC_CTX_free(ctx); }
  mac_ctx(const mac_ctx&) = delete;
  mac_ctx& operator=(const mac_ctx&) = delete;
};

}  // namespace

std::string sha256(std::string_view data) {
  std::string out(sha256_size, '\0');
  sha256_parts({&data, 1}, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string sha256_hex(std::string_view data) {
  return to_hex(sha256(data));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  thread_local mac_ctx m;
  std::string out(sha256_size, '\0');
  std::size_t len = 0;
  int ok = 1;
  if (!m.keyed || m.key != key) {
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                                 OSSL_PARAM_construct_end()};
    // A zero-length key must still pass a non-null pointer.
    static const unsigned char empty = 0;
    const auto* k = key.empty() ? &empty : reinterpret_cast<const unsigned char*>(key.data());
    ok = EVP_MAC_init(m.ctx, k, key.size(), params);
    m.key.assign(key);
    m.keyed = ok == 1;
  } else {
    ok = EVP_MAC_init(m.ctx, nullptr, 0, nullptr);  // same key: reset the state only
  }
  if (ok != 1 ||
      EVP_MAC_update(m.ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) !=
          1 ||
      EVP_MAC_final(m.ctx, reinterpret_cast<unsigned char*>(out.data()), &len, out.size()) != 1 ||
      len != sha256_size) {
    m.keyed = false;
    openssl_failure("HMAC");
  }
  return out;
}

std::uint64_t hash64(std::string_view data) {
  return hash64(std::span<const std::string_view>(&data, 1));
}

std::uint64_t hash64(std::span<const std::string_view> parts) {
  unsigned char d[sha256_size];
  sha256_parts(parts, d);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | d[i];
  return v;
}

struct sha256_stream::impl {
  md_ctx c;
  impl() { reset(); }
  void reset() {
    if (EVP_DigestInit_ex(c.ctx, sha256_md(), nullptr) != 1) openssl_failure("EVP_DigestInit_ex");
  }
};

sha256_stream::sha256_stream() : impl_(std::make_unique<impl>()) {}
sha256_stream::~sha256_stream() = default;
sha256_stream::sha256_stream(sha256_stream&&) noexcept = default;
sha256_stream& sha256_stream::operator=(sha256_stream&&) noexcept = default;

void sha256_stream::update(std::string_view data) {
  if (EVP_DigestUpdate(impl_->c.ctx, data.data(), data.size()) != 1)
    openssl_failure("EVP_DigestUpdate");
}

std::string sha256_stream::finish() {
  std::string out(sha256_size, '\0');
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->c.ctx, reinterpret_cast<unsigned char*>(out.data()), &len) != 1)
    openssl_failure("EVP_DigestFinal_ex");
  impl_->reset();
  return out;
}

struct digest_stream::impl {
  md_ctx c;
  const EVP_MD* md = nullptr;
  explicit impl(const EVP_MD* m) : md(m) {
    if (EVP_DigestInit_ex(c.ctx, md, nullptr) != 1) openssl_failure("EVP_DigestInit_ex");
  }
};

digest_stream::digest_stream(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
digest_stream::~digest_stream() = default;
digest_stream::digest_stream(digest_stream&&) noexcept = default;
digest_stream& digest_stream::operator=(digest_stream&&) noexcept = default;

std::optional<digest_stream> digest_stream::create(std::string_view algorithm) {
  const EVP_MD* md = algorithm == "sha1"     ? EVP_sha1()
                     : algorithm == "sha256" ? EVP_sha256()
                                             : nullptr;
  if (md == nullptr) return std::nullopt;
  return digest_stream(std::make_unique<impl>(md));
}

void digest_stream::update(std::string_view data) {
  if (EVP_DigestUpdate(impl_->c.ctx, data.data(), data.size()) != 1)
    openssl_failure("EVP_DigestUpdate");
}

std::string digest_stream::finish() {
  std::string out(static_cast<std::size_t>(EVP_MD_get_size(impl_->md)), '\0');
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->c.ctx, reinterpret_cast<unsigned char*>(out.data()), &len) != 1)
    openssl_failure("EVP_DigestFinal_ex");
  out.resize(len);
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string url(text);
  for (char& c : url) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
    else if (c == '-' || c == '_')
      return std::nullopt;
  }
  return base64url_decode(url);
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.resize(bytes.size() * 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = digits[b >> 4];
    out[2 * i + 1] = digits[b & 0x0f];
  }
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  const auto at = [&](std::size_t j) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[j]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += b64url_alphabet[v >> 18 & 63];
    out += b64url_alphabet[v >> 12 & 63];
    out += b64url_alphabet[v >> 6 & 63];
    out += b64url_alphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = at(i) << 16;
    out += b64url_alphabet[v >> 18 & 63];
    out += b64url_alphabet[v >> 12 & 63];
  } else if (rest == 2) {
    const std::uint32_t v = at(i) << 16 | at(i + 1) << 8;
    out += b64url_alphabet[v >> 18 & 63];
    out += b64url_alphabet[v >> 12 & 63];
    out += b64url_alphabet[v >> 6 & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = b64url_table[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = acc << 6 | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xff);
      acc &= (1u << bits) - 1;
    }
  }
  // Leftover bits must be zero, or two texts would decode to the same bytes.
  if (acc != 0) return std::nullopt;
  return out;
}

std::string random_bytes(std::size_t n) {
  ensure_sodium();
  std::string out(n, '\0');
  if (n > 0) randombytes_buf(out.data(), n);
  return out;
}

std::string random_token(std::size_t n) {
  return base64url_encode(random_bytes(n));
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace chat4all::crypto
