// POST /auth/register, /auth/token, /auth/refresh, /auth/revoke; GET /auth/me.

#include <boost/beast/http/field.hpp>

#include "api/handlers.hpp"
#include "api/json_input.hpp"
#include "api/json_output.hpp"
#include "api/route_table.hpp"

namespace chat4all::api {
namespace json = boost::json;
using boost::asio::awaitable;

namespace {

json::object token_json(const token_pair& t) {
  json::object o;
  o["access_token"] = t.access_token;
  o["token_type"] = "Bearer";
  o["expires_in"] = t.expires_in;
  o["refresh_token"] = t.refresh_token;
  o["scope"] = t.scope;
  return o;
}

bool is_form(const request& req) {
  auto ct = req[http::field::content_type];
  return std::string_view(ct.data(), ct.size()).starts_with("application/x-www-form-urlencoded");
}

// Login throttling (SPEC §8): failed attempts counted per username and per client IP over a
// minute; at the limit, further attempts get 429 without their password being checked (a
// guessing attacker learns nothing, and pays no Argon2 hash of ours). Counter errors (Redis
// down) let logins through: an outage of the counters must not lock everyone out.
class login_throttle {
 public:
  login_throttle(api_services& s, const std::string& username, const std::string& ip)
      : c_(s.limits),
        user_limit_(s.cfg.auth.login_failures_per_user),
        ip_limit_(s.cfg.auth.login_failures_per_ip),
        user_key_("login-failures:user:" + username),
        ip_key_("login-failures:ip:" + ip) {}

  // True when either count already reached its limit.
  awaitable<bool> blocked() {
    co_return co_await reached(user_key_, user_limit_) || co_await reached(ip_key_, ip_limit_);
  }
  awaitable<void> failed() {
    if (user_limit_ > 0) co_await add(user_key_, 1);
    if (ip_limit_ > 0) co_await add(ip_key_, 1);
  }
  static constexpr int window_s = 60;

 private:
  awaitable<bool> reached(const std::string& key, int limit) {
    if (limit <= 0) co_return false;
    co_return co_await add(key, 0) >= limit;
  }
  // The count after adding `n`; 0 without counters or when they fail.
  awaitable<std::int64_t> add(const std::string& key, std::int64_t n) {
    if (c_ == nullptr) co_return 0;
    auto r = co_await c_->add(key, n, std::chrono::seconds(window_s));
    co_return r ? *r : 0;
  }

  counters* c_;
  int user_limit_, ip_limit_;
  std::string user_key_, ip_key_;
};

// The token request body as a JSON object, whether it came as JSON or as a form.
result<json::object> token_body(const request& req) {
  if (!is_form(req)) return parse_json_body(req);
  json::object o;
  for (auto& [k, v] : parse_query(req.body())) o[k] = v;
  return o;
}

awaitable<response> do_register(api_services& s, request_context& ctx) {
  if (!s.cfg.auth.allow_registration)
    co_return error_response(
        ctx.req, error{errc::forbidden, "registration is disabled", "registration_disabled"});
  auto body = parse_json_body(ctx.req);
  if (!body) co_return error_response(ctx.req, body.err());
  field_reader f(*body);
  auto username = f.string("username", true, 256);
  auto password = f.string("password", true, 1024);
  if (!f.ok()) co_return error_response(ctx.req, f.failure());
  auto u = co_await s.auth.register_user(std::move(*username), std::move(*password));
  if (!u) co_return error_response(ctx.req, u.err());
  co_return json_reply(ctx, http::status::created, user_json(*u));
}

awaitable<response> do_token(api_services& s, request_context& ctx) {
  auto body = token_body(ctx.req);
  if (!body) co_return error_response(ctx.req, body.err());
  field_reader f(*body);
  auto grant = f.string("grant_type", false, 64);
  std::optional<std::string> username, password;
  if (!grant || *grant == "password") {
    username = f.string("username", true, 256);
    password = f.string("password", true, 1024);
  } else if (*grant == "client_credentials") {
    username = f.string("client_id", true, 256);
    password = f.string("client_secret", true, 1024);
  } else {
    f.fail("grant_type", "must be password or client_credentials");
  }
  if (!f.ok()) co_return error_response(ctx.req, f.failure());
  login_throttle throttle(s, *username, ctx.remote_ip);
  if (co_await throttle.blocked()) {
    co_return error_response(
        ctx.req,
        error{errc::rate_limited, "too many failed logins; retry later", "login_throttled"},
        login_throttle::window_s);
  }
  auto t = co_await s.auth.login(std::move(*username), std::move(*password));
  if (!t) {
    if (t.err().code == errc::unauthenticated) co_await throttle.failed();
    co_return error_response(ctx.req, t.err());
  }
  co_return json_reply(ctx, http::status::ok, token_json(*t));
}

awaitable<response> do_refresh(api_services& s, request_context& ctx) {
  auto body = token_body(ctx.req);
  if (!body) co_return error_response(ctx.req, body.err());
  field_reader f(*body);
  auto token = f.string("refresh_token", true, 1024);
  if (!f.ok()) co_return error_response(ctx.req, f.failure());
  auto t = co_await s.auth.refresh(std::move(*token));
  if (!t) co_return error_response(ctx.req, t.err());
  co_return json_reply(ctx, http::status::ok, token_json(*t));
}

awaitable<response> do_revoke(api_services& s, request_context& ctx) {
  auto body = token_body(ctx.req);
  if (!body) co_return error_response(ctx.req, body.err());
  field_reader f(*body);
  auto token = f.string("token", true, 4096);
  if (token && token->empty()) f.fail("token", "must not be empty");
  if (!f.ok()) co_return error_response(ctx.req, f.failure());
  auto r = co_await s.auth.revoke(std::move(*token));
  if (!r) co_return error_response(ctx.req, r.err());
  co_return json_reply(ctx, http::status::ok, json::object{{"revoked", true}});
}

awaitable<response> do_me(api_services& s, request_context& ctx) {
  auto u = co_await s.auth.me(*ctx.caller);
  if (!u) co_return error_response(ctx.req, u.err());
  co_return json_reply(ctx, http::status::ok, user_json(*u));
}

}  // namespace

void register_auth_routes(route_table& routes, api_services& s) {
  auto* sp = &s;
  const std::size_t small = 16 * 1024;
  routes.add(http::verb::post, "/auth/register", {"POST /auth/register", small, false},
             [sp](request_context& c) { return do_register(*sp, c); });
  routes.add(http::verb::post, "/auth/token", {"POST /auth/token", small, false},
             [sp](request_context& c) { return do_token(*sp, c); });
  routes.add(http::verb::post, "/auth/refresh", {"POST /auth/refresh", small, false},
             [sp](request_context& c) { return do_refresh(*sp, c); });
  routes.add(http::verb::post, "/auth/revoke", {"POST /auth/revoke", small, false},
             [sp](request_context& c) { return do_revoke(*sp, c); });
  routes.add(http::verb::get, "/auth/me", {"GET /auth/me", 0, true},
             [sp](request_context& c) { return do_me(*sp, c); });
}

}  // namespace chat4all::api
