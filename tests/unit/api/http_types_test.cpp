#include "api/http_types.hpp"

#include <gtest/gtest.h>

#include "api/http_util.hpp"

namespace chat4all::api {
namespace {

request make_request() {
  request req{http::verb::get, "/x", 11};
  return req;
}

TEST(http_types, status_for_maps_every_errc) {
  EXPECT_EQ(status_for(errc::invalid_input), http::status::bad_request);
  EXPECT_EQ(status_for(errc::unauthenticated), http::status::unauthorized);
  EXPECT_EQ(status_for(errc::forbidden), http::status::forbidden);
  EXPECT_EQ(status_for(errc::not_found), http::status::not_found);
  EXPECT_EQ(status_for(errc::conflict), http::status::conflict);
  EXPECT_EQ(status_for(errc::too_large), http::status::payload_too_large);
  EXPECT_EQ(status_for(errc::unsupported_media), http::status::unsupported_media_type);
  EXPECT_EQ(status_for(errc::rate_limited), http::status::too_many_requests);
  EXPECT_EQ(status_for(errc::unavailable), http::status::service_unavailable);
  EXPECT_EQ(status_for(errc::timeout), http::status::service_unavailable);
  EXPECT_EQ(status_for(errc::internal), http::status::internal_server_error);
}

TEST(http_types, error_body_is_exactly_the_spec_shape) {
  auto req = make_request();
  error e{errc::invalid_input, "bad \"payload\""};
  e.details.push_back({"payload.content", "must not be empty"});
  auto res = error_response(req, e);
  EXPECT_EQ(res.result(), http::status::bad_request);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(res.body(), R"({"error":{"code":"invalid_input","message":"bad \"payload\"","details":)"
                        R"([{"field":"payload.content","reason":"must not be empty"}]}})");
  EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
  EXPECT_TRUE(res.keep_alive());

  auto plain = error_response(req, error{errc::not_found, "no"});
  EXPECT_EQ(plain.body(), R"({"error":{"code":"not_found","message":"no"}})");
}

TEST(http_types, auth_and_retry_headers) {
  auto req = make_request();
  auto u = error_response(req, error{errc::unauthenticated, "expired", "token_expired"});
  EXPECT_EQ(u.result(), http::status::unauthorized);
  EXPECT_EQ(u[http::field::www_authenticate], "Bearer");
  EXPECT_EQ(u.body(), R"({"error":{"code":"token_expired","message":"expired"}})");

  auto r = error_response(req, error{errc::rate_limited, "slow down"}, 7);
  EXPECT_EQ(r[http::field::retry_after], "7");
  auto a = error_response(req, error{errc::unavailable, "db down"});
  EXPECT_EQ(a.result(), http::status::service_unavailable);
  EXPECT_EQ(a[http::field::retry_after], "1");
  EXPECT_EQ(error_response(req, error{errc::forbidden, "no"}).count(http::field::retry_after), 0u);
}

TEST(http_types, json_response_follows_request_keep_alive) {
  request req{http::verb::get, "/x", 11};
  req.keep_alive(false);
  auto res = json_response(req, http::status::created, R"({"id":1})");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(res.result(), http::status::created);
  EXPECT_EQ(res[http::field::content_length], "8");
}

TEST(http_types, context_param_and_query_lookup) {
  auto req = make_request();
  request_context ctx{req,          "rid", "/x", {{"id", "5"}}, {{"limit", "10"}, {"limit", "20"}},
                      std::nullopt, "",    ""};
  EXPECT_EQ(ctx.param("id"), "5");
  EXPECT_EQ(ctx.param("missing"), "");
  ASSERT_TRUE(ctx.query_param("limit"));
  EXPECT_EQ(*ctx.query_param("limit"), "10");
  EXPECT_FALSE(ctx.query_param("offset"));
}

TEST(http_util, request_id_rules) {
  EXPECT_EQ(sanitize_request_id("abc-DEF_1.2"), "abc-DEF_1.2");
  EXPECT_EQ(sanitize_request_id(""), "");
  EXPECT_EQ(sanitize_request_id("has space"), "");
  EXPECT_EQ(sanitize_request_id("x\r\ny"), "");
  EXPECT_EQ(sanitize_request_id(std::string(128, 'a')), std::string(128, 'a'));
  EXPECT_EQ(sanitize_request_id(std::string(129, 'a')), "");
  std::uint64_t state = 42;
  std::string a = next_request_id(state), b = next_request_id(state);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(sanitize_request_id(a), a);
}

TEST(http_util, traceparent_and_bearer_parsing) {
  EXPECT_EQ(trace_id_from("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(trace_id_from("00-00000000000000000000000000000000-b7ad6b7169203331-01"), "");
  EXPECT_EQ(trace_id_from("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), "");
  EXPECT_EQ(trace_id_from("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"), "");
  EXPECT_EQ(trace_id_from("garbage"), "");

  EXPECT_EQ(bearer_token("Bearer abc.def"), "abc.def");
  EXPECT_EQ(bearer_token("bearer  tok "), "tok");
  EXPECT_FALSE(bearer_token(""));
  EXPECT_FALSE(bearer_token("Basic dXNlcjpwYXNz"));
  EXPECT_FALSE(bearer_token("Bearer "));
  EXPECT_FALSE(bearer_token("Bearer a b"));
  EXPECT_FALSE(bearer_token("Bearerabc"));

  // WebSocket upgrades: ?token= first, else a "bearer.<token>" subprotocol entry.
  EXPECT_EQ(upgrade_token("token=a.b.c", ""), "a.b.c");
  EXPECT_EQ(upgrade_token("x=1&token=a%2Eb", "bearer.zzz"), "a.b");
  EXPECT_EQ(upgrade_token("", "chat4all.v1, bearer.h.p.s"), "h.p.s");
  EXPECT_EQ(upgrade_token("token=", " bearer.t ,chat4all.v1"), "t");
  EXPECT_FALSE(upgrade_token("", "chat4all.v1"));
  EXPECT_FALSE(upgrade_token("tok=1", "bearer."));
  EXPECT_FALSE(upgrade_token("", ""));
}

TEST(http_util, listen_address_parsing) {
  boost::asio::io_context ioc;
  auto ep = resolve_listen("127.0.0.1:8080", ioc);
  EXPECT_EQ(ep.address().to_string(), "127.0.0.1");
  EXPECT_EQ(ep.port(), 8080);
  EXPECT_TRUE(resolve_listen("[::1]:0", ioc).address().is_v6());
  EXPECT_EQ(resolve_listen(":9000", ioc).address().to_string(), "0.0.0.0");
  EXPECT_EQ(resolve_listen("localhost:1", ioc).port(), 1);
  EXPECT_THROW(resolve_listen("127.0.0.1", ioc), std::invalid_argument);
  EXPECT_THROW(resolve_listen("127.0.0.1:99999", ioc), std::invalid_argument);
  EXPECT_THROW(resolve_listen("127.0.0.1:http", ioc), std::invalid_argument);
}

}  // namespace
}  // namespace chat4all::api
