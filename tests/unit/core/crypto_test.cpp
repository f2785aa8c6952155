#include "core/crypto.hpp"

#include <gtest/gtest.h>

#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>

namespace chat4all::crypto {
namespace {

TEST(crypto_sha256, known_vectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string raw = sha256("abc");
  ASSERT_EQ(raw.size(), sha256_size);
  EXPECT_EQ(to_hex(raw), sha256_hex("abc"));
}

TEST(crypto_sha256, stream_equals_one_shot_and_resets) {
  const std::string data(100000, 'x');
  sha256_stream s;
  for (std::size_t i = 0; i < data.size(); i += 777)
    s.update(std::string_view(data).substr(i, 777));
  EXPECT_EQ(s.finish(), sha256(data));
  s.update("abc");
  EXPECT_EQ(to_hex(s.finish()), sha256_hex("abc"));
  sha256_stream moved = std::move(s);
  EXPECT_EQ(moved.finish(), sha256(""));
}

TEST(crypto_hash64, is_first_eight_bytes_of_sha256_big_endian) {
  EXPECT_EQ(hash64("abc"), 0xba7816bf8f01cfeaULL);
  EXPECT_EQ(hash64(""), 0xe3b0c44298fc1c14ULL);
  EXPECT_NE(hash64("a"), hash64("b"));
}

TEST(crypto_hmac, rfc4231_test_case_2) {
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(crypto_hmac, rfc4231_test_case_1_and_empty_key) {
  EXPECT_EQ(to_hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hmac_sha256("", "x").size(), sha256_size);
}

TEST(crypto_hmac, alternating_keys_and_threads_give_the_reference_values) {
  // Each thread keeps an HMAC context keyed with the last key: a key change must re-key it.
  const std::string a = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  const std::string b = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  auto check = [&] {
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")), a);
      EXPECT_EQ(to_hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")), b);
      EXPECT_EQ(to_hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")), b);
    }
  };
  check();
  std::thread t(check);
  t.join();
}

TEST(crypto_hash64, of_parts_equals_of_their_concatenation) {
  const std::string_view parts[] = {"12", "\n", "", "34", "\n", R"({"type":"text"})"};
  EXPECT_EQ(hash64(std::span<const std::string_view>(parts)),
            hash64("12\n34\n{\"type\":\"text\"}"));
  EXPECT_EQ(hash64(std::span<const std::string_view>()), hash64(""));
}

TEST(crypto_base64url, rfc4648_vectors_without_padding) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  // The URL-safe alphabet: '-' and '_' instead of '+' and '/'.
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64url_decode("-_8"), "\xfb\xff");
  EXPECT_EQ(base64url_decode(""), "");
}

TEST(crypto_base64url, round_trips_every_byte_and_length) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); ++n) {
    const std::string in = all.substr(all.size() - n);
    const std::string enc = base64url_encode(in);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos);
    ASSERT_EQ(base64url_decode(enc), in) << n;
  }
}

TEST(crypto_base64url, rejects_invalid_input) {
  EXPECT_FALSE(base64url_decode("Zm9v="));  // padding
  EXPECT_FALSE(base64url_decode("Zg=="));   // padding
  EXPECT_FALSE(base64url_decode("Zm+v"));   // standard alphabet
  EXPECT_FALSE(base64url_decode("Zm/v"));   // standard alphabet
  EXPECT_FALSE(base64url_decode("Zm9 v"));  // whitespace
  EXPECT_FALSE(base64url_decode("Zm9vY"));  // impossible length
  EXPECT_FALSE(base64url_decode("Zh"));     // non-zero trailing bits ("Zg" is canonical)
  EXPECT_FALSE(base64url_decode("Zm9"));    // non-zero trailing bits ("Zm8" is canonical)
  EXPECT_FALSE(base64url_decode("Zm\xc3\xa9"));
  EXPECT_FALSE(base64url_decode(std::string_view("Zm\0v", 4)));
}

TEST(crypto_random, tokens_are_base64url_and_distinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string t = random_token(32);
    EXPECT_EQ(t.size(), 43u);
    const auto raw = base64url_decode(t);
    ASSERT_TRUE(raw);
    EXPECT_EQ(raw->size(), 32u);
    EXPECT_TRUE(seen.insert(t).second);
  }
  EXPECT_EQ(random_bytes(0), "");
  EXPECT_EQ(random_bytes(17).size(), 17u);
}

TEST(crypto_compare, constant_time_equal) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

}  // namespace
}  // namespace chat4all::crypto
