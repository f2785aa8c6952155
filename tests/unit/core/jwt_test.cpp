#include "core/jwt.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "core/crypto.hpp"

namespace chat4all {
namespace {

namespace json = boost::json;

const std::string secret = "0123456789abcdef0123456789abcdef";  // 32 bytes
constexpr std::int64_t now = 1700000000;

jwt_claims sample() {
  jwt_claims c;
  c.sub = 42;
  c.scope = "messages:write";
  c.jti = "j-1";
  c.iat = now;
  c.exp = now + 900;
  c.iss = "chat4all";
  return c;
}

// A token built from raw header and claims JSON, signed with HMAC-SHA-256 over the
// first two parts: lets a test say anything a forger could.
std::string forge(std::string_view header, std::string_view claims, std::string_view key) {
  std::string t = crypto::base64url_encode(header) + "." + crypto::base64url_encode(claims);
  return t + "." + crypto::base64url_encode(crypto::hmac_sha256(key, t));
}

std::string claims_json(std::int64_t exp = now + 900) {
  return R"({"sub":"42","user_id":42,"iat":)" + std::to_string(now) + R"(,"exp":)" +
         std::to_string(exp) + R"(,"scope":"s","jti":"j","iss":"chat4all"})";
}

constexpr std::string_view hs256 = R"({"alg":"HS256","typ":"JWT"})";

void expect_invalid(const result<jwt_claims>& r) {
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unauthenticated);
  EXPECT_EQ(r.err().api_code, "invalid_token");
}

TEST(jwt, sign_verify_round_trip) {
  const std::string t = jwt::sign(sample(), secret);
  const auto r = jwt::verify(t, secret, now, "chat4all");
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->sub, 42);
  EXPECT_EQ(r->scope, "messages:write");
  EXPECT_EQ(r->jti, "j-1");
  EXPECT_EQ(r->iat, now);
  EXPECT_EQ(r->exp, now + 900);
  EXPECT_EQ(r->iss, "chat4all");
}

TEST(jwt, token_is_standard_compact_hs256) {
  const std::string t = jwt::sign(sample(), secret);
  const auto d1 = t.find('.'), d2 = t.rfind('.');
  ASSERT_NE(d1, d2);
  EXPECT_EQ(t.substr(0, d1), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
  const auto claims = crypto::base64url_decode(t.substr(d1 + 1, d2 - d1 - 1));
  ASSERT_TRUE(claims);
  const json::object o = json::parse(*claims).as_object();
  EXPECT_EQ(o.at("sub"), "42");  // RFC 7519: sub is a string
  EXPECT_EQ(o.at("user_id"), 42);
  EXPECT_EQ(o.at("iat"), now);
  EXPECT_EQ(o.at("exp"), now + 900);
  EXPECT_EQ(o.at("scope"), "messages:write");
  EXPECT_EQ(o.at("jti"), "j-1");
  EXPECT_EQ(o.at("iss"), "chat4all");
  EXPECT_EQ(crypto::base64url_decode(t.substr(d2 + 1))->size(), 32u);
}

TEST(jwt, verifies_a_token_from_another_implementation) {
  // Other key order, no typ, only sub: what a different library may produce.
  const std::string t =
      forge(R"({"alg":"HS256"})",
            R"({"iss":"chat4all","exp":1700000900,"iat":1700000000,"sub":"7"})", secret);
  const auto r = jwt::verify(t, secret, now, "chat4all");
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->sub, 7);
  EXPECT_EQ(r->scope, "");
}

TEST(jwt, jwt_io_example_signature_matches) {
  // The HS256 example of jwt.io, signed with "your-256-bit-secret".
  const std::string signing_input =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ";
  EXPECT_EQ(crypto::base64url_encode(crypto::hmac_sha256("your-256-bit-secret", signing_input)),
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
}

TEST(jwt, tampered_payload_is_invalid) {
  const std::string t = jwt::sign(sample(), secret);
  const auto d1 = t.find('.'), d2 = t.rfind('.');
  jwt_claims other = sample();
  other.sub = 1;
  const std::string t2 = jwt::sign(other, secret);
  const std::string spliced =
      t.substr(0, d1) + t2.substr(t2.find('.'), t2.rfind('.') - t2.find('.')) + t.substr(d2);
  expect_invalid(jwt::verify(spliced, secret, now, "chat4all"));
  std::string flipped = t;
  flipped[d1 + 5] = flipped[d1 + 5] == 'A' ? 'B' : 'A';
  expect_invalid(jwt::verify(flipped, secret, now, "chat4all"));
  std::string bad_sig = t;
  bad_sig[d2 + 3] = bad_sig[d2 + 3] == 'A' ? 'B' : 'A';
  expect_invalid(jwt::verify(bad_sig, secret, now, "chat4all"));
}

TEST(jwt, any_single_character_change_is_rejected) {
  const std::string t = jwt::sign(sample(), secret);
  for (std::size_t i = 0; i < t.size(); ++i) {
    for (const char c : std::string_view("A_-.0z=")) {
      if (t[i] == c) continue;
      std::string m = t;
      m[i] = c;
      ASSERT_FALSE(jwt::verify(m, secret, now, "chat4all")) << i << " " << c;
    }
  }
}

TEST(jwt, wrong_secret_is_invalid) {
  const std::string t = jwt::sign(sample(), secret);
  expect_invalid(jwt::verify(t, "another-secret-another-secret-xx", now, "chat4all"));
}

TEST(jwt, alg_none_and_other_algs_are_rejected) {
  const std::string c = claims_json();
  const std::string unsigned_token = crypto::base64url_encode(R"({"alg":"none","typ":"JWT"})") +
                                     "." + crypto::base64url_encode(c) + ".";
  expect_invalid(jwt::verify(unsigned_token, secret, now, "chat4all"));
  expect_invalid(jwt::verify(forge(R"({"alg":"none"})", c, secret), secret, now, "chat4all"));
  expect_invalid(jwt::verify(forge(R"({"alg":"HS512"})", c, secret), secret, now, "chat4all"));
  expect_invalid(jwt::verify(forge(R"({"alg":"RS256"})", c, secret), secret, now, "chat4all"));
  expect_invalid(jwt::verify(forge(R"({"alg":"hs256"})", c, secret), secret, now, "chat4all"));
  expect_invalid(jwt::verify(forge(R"({"typ":"JWT"})", c, secret), secret, now, "chat4all"));
  expect_invalid(
      jwt::verify(forge(R"({"alg":"HS256","crit":["exp"]})", c, secret), secret, now, "chat4all"));
  expect_invalid(
      jwt::verify(forge(R"({"alg":"HS256","typ":"JWE"})", c, secret), secret, now, "chat4all"));
  ASSERT_TRUE(jwt::verify(forge(hs256, c, secret), secret, now, "chat4all"));
}

TEST(jwt, expired_token) {
  jwt_claims c = sample();
  c.exp = now;
  const auto r = jwt::verify(jwt::sign(c, secret), secret, now, "chat4all");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unauthenticated);
  EXPECT_EQ(r.err().api_code, "token_expired");
  EXPECT_STREQ(r.err().name(), "token_expired");
  c.exp = now + 1;
  EXPECT_TRUE(jwt::verify(jwt::sign(c, secret), secret, now, "chat4all"));
  // Expiry is only reported for a genuine token.
  c.exp = now - 10;
  expect_invalid(jwt::verify(jwt::sign(c, secret), "x", now, "chat4all"));
}

TEST(jwt, wrong_issuer) {
  const std::string t = jwt::sign(sample(), secret);
  expect_invalid(jwt::verify(t, secret, now, "someone-else"));
  expect_invalid(jwt::verify(t, secret, now, ""));
}

TEST(jwt, not_before_in_the_future) {
  const std::string c = R"({"sub":"1","iat":1,"exp":1800000000,"iss":"chat4all","nbf":)" +
                        std::to_string(now + 60) + "}";
  expect_invalid(jwt::verify(forge(hs256, c, secret), secret, now, "chat4all"));
}

TEST(jwt, malformed_tokens) {
  const std::string t = jwt::sign(sample(), secret);
  expect_invalid(jwt::verify("", secret, now, "chat4all"));
  expect_invalid(jwt::verify("abc", secret, now, "chat4all"));
  expect_invalid(jwt::verify("a.b", secret, now, "chat4all"));
  expect_invalid(jwt::verify("a.b.c.d", secret, now, "chat4all"));
  expect_invalid(jwt::verify(t + ".", secret, now, "chat4all"));
  expect_invalid(jwt::verify(t + ".x", secret, now, "chat4all"));
  expect_invalid(jwt::verify("..", secret, now, "chat4all"));
  expect_invalid(jwt::verify("!!!" + t.substr(t.find('.')), secret, now, "chat4all"));
  expect_invalid(jwt::verify(t.substr(0, t.rfind('.') + 1) + "@@@", secret, now, "chat4all"));
  expect_invalid(jwt::verify(t + "=", secret, now, "chat4all"));
}

TEST(jwt, malformed_claims_even_when_signed) {
  const auto bad = [](std::string claims) {
    expect_invalid(jwt::verify(forge(hs256, claims, secret), secret, now, "chat4all"));
  };
  bad("not json");
  bad("[1,2]");
  bad(R"({"iat":1,"exp":1800000000,"iss":"chat4all"})");                        // no sub
  bad(R"({"sub":42,"iat":1,"exp":1800000000,"iss":"chat4all"})");               // sub number
  bad(R"({"sub":"4x","iat":1,"exp":1800000000,"iss":"chat4all"})");             // sub text
  bad(R"({"sub":"4","user_id":5,"iat":1,"exp":1800000000,"iss":"chat4all"})");  // disagree
  bad(R"({"sub":"4","iat":1,"iss":"chat4all"})");                               // no exp
  bad(R"({"sub":"4","iat":1,"exp":"1800000000","iss":"chat4all"})");            // exp string
  bad(R"({"sub":"4","iat":1,"exp":1.8e9,"iss":"chat4all"})");                   // exp float
  bad(R"({"sub":"4","iat":1,"exp":1800000000,"iss":"chat4all","scope":7})");    // scope type
}

}  // namespace
}  // namespace chat4all
