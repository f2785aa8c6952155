#include "core/jwt.hpp"

#include <boost/json.hpp>

#include <charconv>

#include "core/crypto.hpp"

namespace chat4all::jwt {
namespace {

namespace json = boost::json;

error invalid(std::string why) {
  return error(errc::unauthenticated, "invalid token: " + std::move(why), "invalid_token");
}

const std::string& encoded_header() {
  static const std::string h = crypto::base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  return h;
}

// Parses base64url(JSON object); nullopt when either layer is malformed.
std::optional<json::object> decode_object(std::string_view part) {
  auto raw = crypto::base64url_decode(part);
  if (!raw) return std::nullopt;
  json::error_code ec;
  json::value v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// An integral JSON number as int64 (JSON allows 1.0 but tokens we accept carry integers).
std::optional<std::int64_t> as_int64(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v->get_uint64());
  return std::nullopt;
}

std::optional<std::int64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Optional string claim: absent is "", present must be a string.
bool string_claim(const json::object& o, std::string_view name, std::string& out) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return true;
  if (!v->is_string()) return false;
  out.assign(v->get_string().data(), v->get_string().size());
  return true;
}

}  // namespace

std::string sign(const jwt_claims& c, std::string_view secret) {
  json::object o;
  o["sub"] = std::to_string(c.sub);
  o["user_id"] = c.sub;
  o["iat"] = c.iat;
  o["exp"] = c.exp;
  o["scope"] = c.scope;
  o["jti"] = c.jti;
  o["iss"] = c.iss;
  std::string token = encoded_header();
  token += '.';
  token += crypto::base64url_encode(json::serialize(o));
  const std::string mac = crypto::hmac_sha256(secret, token);
  token += '.';
  token += crypto::base64url_encode(mac);
  return token;
}

result<jwt_claims> verify(std::string_view token, std::string_view secret, std::int64_t now_s,
                          std::string_view expected_iss) {
  const auto d1 = token.find('.');
  if (d1 == std::string_view::npos) return invalid("expected three dot-separated parts");
  const auto d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return invalid("expected three dot-separated parts");
  const std::string_view header_part = token.substr(0, d1);
  const std::string_view claims_part = token.substr(d1 + 1, d2 - d1 - 1);
  const std::string_view sig_part = token.substr(d2 + 1);

  const auto header = decode_object(header_part);
  if (!header) return invalid("header is not base64url JSON object");
  const json::value* alg = header->if_contains("alg");
  // Only HS256: accepting the header's choice ("none", RS256 with our secret as a public
  // key...) is the classic JWT forgery.
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256")
    return invalid("unsupported alg");
  if (const json::value* typ = header->if_contains("typ");
      typ != nullptr && (!typ->is_string() || typ->get_string() != "JWT"))
    return invalid("unsupported typ");
  if (header->contains("crit")) return invalid("unsupported crit header");

  const auto sig = crypto::base64url_decode(sig_part);
  if (!sig || sig->size() != crypto::sha256_size) return invalid("malformed signature");
  const std::string expected = crypto::hmac_sha256(secret, token.substr(0, d2));
  if (!crypto::constant_time_equal(*sig, expected)) return invalid("bad signature");

  const auto claims = decode_object(claims_part);
  if (!claims) return invalid("claims are not a base64url JSON object");
  jwt_claims c;
  // sub (string) and user_id (number) carry the same id; either may be absent, not both.
  const json::value* sub = claims->if_contains("sub");
  const json::value* user_id = claims->if_contains("user_id");
  if (sub == nullptr && user_id == nullptr) return invalid("no sub");
  if (sub != nullptr) {
    if (!sub->is_string()) return invalid("sub is not a string");
    const auto s = parse_decimal(std::string_view(sub->get_string()));
    if (!s) return invalid("sub is not a user id");
    c.sub = *s;
  }
  if (user_id != nullptr) {
    const auto u = as_int64(user_id);
    if (!u) return invalid("user_id is not an integer");
    if (sub != nullptr && *u != c.sub) return invalid("sub and user_id differ");
    c.sub = *u;
  }
  const auto iat = as_int64(claims->if_contains("iat"));
  const auto exp = as_int64(claims->if_contains("exp"));
  if (!iat || !exp) return invalid("iat and exp must be integers");
  c.iat = *iat;
  c.exp = *exp;
  if (!string_claim(*claims, "scope", c.scope) || !string_claim(*claims, "jti", c.jti) ||
      !string_claim(*claims, "iss", c.iss))
    return invalid("scope, jti and iss must be strings");
  if (c.iss != expected_iss) return invalid("wrong issuer");
  if (const json::value* nbf = claims->if_contains("nbf")) {
    const auto n = as_int64(nbf);
    if (!n) return invalid("nbf is not an integer");
    if (*n > now_s) return invalid("not valid yet");
  }
  if (c.exp <= now_s) return error(errc::unauthenticated, "token expired", "token_expired");
  return c;
}

}  // namespace chat4all::jwt
