#include "core/password.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace chat4all {
namespace {

// Low limits keep the tests fast; production limits come from auth_config.
constexpr std::uint64_t ops = 1;
constexpr std::size_t mem_kib = 8192;

TEST(password, hash_then_verify) {
  const std::string h = hash_password("correct horse battery staple", ops, mem_kib);
  EXPECT_TRUE(h.starts_with("$argon2id$")) << h;
  EXPECT_NE(h.find("m=8192,t=1"), std::string::npos) << h;
  EXPECT_TRUE(verify_password("correct horse battery staple", h));
}

TEST(password, wrong_password_fails) {
  const std::string h = hash_password("secret-1", ops, mem_kib);
  EXPECT_FALSE(verify_password("secret-2", h));
  EXPECT_FALSE(verify_password("", h));
  EXPECT_FALSE(verify_password("secret-1 ", h));
}

TEST(password, salts_differ_and_empty_or_binary_passwords_work) {
  EXPECT_NE(hash_password("same", ops, mem_kib), hash_password("same", ops, mem_kib));
  const std::string h = hash_password("", ops, mem_kib);
  EXPECT_TRUE(verify_password("", h));
  const std::string bin("a\0b", 3);
  const std::string hb = hash_password(bin, ops, mem_kib);
  EXPECT_TRUE(verify_password(bin, hb));
  EXPECT_FALSE(verify_password("a", hb));
}

TEST(password, malformed_encoded_is_a_mismatch) {
  EXPECT_FALSE(verify_password("x", ""));
  EXPECT_FALSE(verify_password("x", "not a hash"));
  EXPECT_FALSE(verify_password("x", "$argon2id$v=19$m=8192,t=1,p=1$AAAA$BBBB"));
  EXPECT_FALSE(verify_password("x", std::string(1000, '$')));
  const std::string h = hash_password("x", ops, mem_kib);
  EXPECT_FALSE(verify_password("x", h.substr(0, h.size() - 2)));
}

TEST(password, needs_rehash_when_limits_change) {
  const std::string h = hash_password("pw", ops, mem_kib);
  EXPECT_FALSE(needs_rehash(h, ops, mem_kib));
  EXPECT_TRUE(needs_rehash(h, ops + 1, mem_kib));
  EXPECT_TRUE(needs_rehash(h, ops, mem_kib * 2));
  EXPECT_TRUE(needs_rehash("garbage", ops, mem_kib));
  EXPECT_TRUE(needs_rehash("$argon2i$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA", ops, mem_kib));
}

TEST(password, rejects_limits_out_of_range) {
  EXPECT_THROW((void)hash_password("pw", 0, mem_kib), std::invalid_argument);
  EXPECT_THROW((void)hash_password("pw", ops, 4), std::invalid_argument);
}

}  // namespace
}  // namespace chat4all
