#pragma once
// Password hashing with Argon2id (libsodium crypto_pwhash), stored in the self-describing
// PHC string form "$argon2id$v=19$m=...,t=...,p=1$salt$hash" so limits can change later.
//
// Cost: each call takes as long as the limits say (~50–100 ms with auth defaults) and uses
// `memlimit_kib` of memory: never call these on an I/O thread; offload them.
// Thread-safety: safe from any thread concurrently.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace chat4all {

// Hashes `password` with a fresh random salt. `opslimit` >= 1, `memlimit_kib` >= 8 (libsodium
// minimums; auth_config.argon2_opslimit / argon2_memlimit_kib). Throws std::invalid_argument
// for limits out of range and std::runtime_error when the memory cannot be allocated.
std::string hash_password(std::string_view password, std::uint64_t opslimit,
                          std::size_t memlimit_kib);

// True when `password` matches `encoded` (a string from hash_password). False for a wrong
// password and for a malformed or unsupported `encoded`; never throws for bad input.
bool verify_password(std::string_view password, std::string_view encoded);

// True when `encoded` was not made by hash_password with these limits (other limits, another
// algorithm, or malformed): rehash the password at the next successful login.
bool needs_rehash(std::string_view encoded, std::uint64_t opslimit, std::size_t memlimit_kib);

}  // namespace chat4all
