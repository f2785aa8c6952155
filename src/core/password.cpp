#include "core/password.hpp"

#include <sodium.h>

#include <stdexcept>
#include <string>

#include "core/crypto.hpp"

namespace chat4all {
namespace {

constexpr std::string_view argon2id_prefix = "$argon2id$";

std::size_t memlimit_bytes(std::size_t memlimit_kib) {
  if (memlimit_kib > crypto_pwhash_argon2id_MEMLIMIT_MAX / 1024)
    throw std::invalid_argument("argon2 memlimit too large");
  return memlimit_kib * 1024;
}

void check_limits(std::uint64_t opslimit, std::size_t memlimit_kib) {
  if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
      opslimit > crypto_pwhash_argon2id_OPSLIMIT_MAX)
    throw std::invalid_argument("argon2 opslimit out of range");
  const std::size_t mem = memlimit_bytes(memlimit_kib);
  if (mem < crypto_pwhash_argon2id_MEMLIMIT_MIN)
    throw std::invalid_argument("argon2 memlimit below 8 KiB");
}

}  // namespace

std::string hash_password(std::string_view password, std::uint64_t opslimit,
                          std::size_t memlimit_kib) {
  crypto::ensure_sodium();
  check_limits(opslimit, memlimit_kib);
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), opslimit,
                            memlimit_bytes(memlimit_kib), crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("argon2id: out of memory");
  return std::string(out);
}

bool verify_password(std::string_view password, std::string_view encoded) {
  crypto::ensure_sodium();
  // libsodium reads a NUL-terminated string of at most STRBYTES - 1 characters.
  if (encoded.size() >= crypto_pwhash_STRBYTES || encoded.find('\0') != std::string_view::npos ||
      !encoded.starts_with(argon2id_prefix))
    return false;
  const std::string str(encoded);
  return crypto_pwhash_str_verify(str.c_str(), password.data(), password.size()) == 0;
}

bool needs_rehash(std::string_view encoded, std::uint64_t opslimit, std::size_t memlimit_kib) {
  crypto::ensure_sodium();
  if (encoded.size() >= crypto_pwhash_STRBYTES || encoded.find('\0') != std::string_view::npos ||
      !encoded.starts_with(argon2id_prefix))
    return true;
  if (memlimit_kib > crypto_pwhash_argon2id_MEMLIMIT_MAX / 1024) return true;
  const std::string str(encoded);
  return crypto_pwhash_argon2id_str_needs_rehash(str.c_str(), opslimit, memlimit_kib * 1024) != 0;
}

}  // namespace chat4all
