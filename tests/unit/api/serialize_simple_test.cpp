#include <gtest/gtest.h>

#include <boost/beast/http/write.hpp>
#include <sstream>
#include <string>

#include "api/http_util.hpp"

namespace chat4all::api {
namespace {

// What Beast's own serializer writes for the same message.
std::string beast_bytes(const response& res) {
  std::ostringstream os;
  os << res;
  return os.str();
}

response make(http::status st, unsigned version, std::string body, bool keep_alive) {
  response res{st, version};
  res.set(http::field::content_type, "application/json");
  res.set("X-Request-ID", "r-123");
  res.insert("Set-Cookie", "a=1");
  res.insert("Set-Cookie", "b=2");  // a repeated field keeps its place and order
  res.set("X-Custom-Header", "value with spaces");
  res.body() = std::move(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

TEST(serialize_simple, writes_exactly_what_beast_writes) {
  const std::string json = R"({"status":"accepted","message_id":"0190","conversation_id":7})";
  for (unsigned version : {10u, 11u}) {
    for (bool keep : {true, false}) {
      for (auto st : {http::status::accepted, http::status::ok, http::status::not_found,
                      http::status::service_unavailable, http::status::no_content}) {
        const auto res = make(st, version, st == http::status::no_content ? "" : json, keep);
        std::string out = "kept:";
        ASSERT_TRUE(serialize_simple(res, out, 16 * 1024));
        EXPECT_EQ(out, "kept:" + beast_bytes(res))
            << "status " << static_cast<unsigned>(st) << " HTTP/" << version << " keep " << keep;
      }
    }
  }
}

TEST(serialize_simple, a_custom_reason_and_an_unknown_status_are_written_as_beast_does) {
  auto res = make(http::status::ok, 11, "{}", true);
  res.reason("Fine Indeed");
  std::string out;
  ASSERT_TRUE(serialize_simple(res, out, 1024));
  EXPECT_EQ(out, beast_bytes(res));
  EXPECT_EQ(out.rfind("HTTP/1.1 200 Fine Indeed\r\n", 0), 0u);

  response odd{static_cast<http::status>(299), 11};
  odd.body() = "x";
  odd.prepare_payload();
  std::string out2;
  ASSERT_TRUE(serialize_simple(odd, out2, 1024));
  EXPECT_EQ(out2, beast_bytes(odd));
}

TEST(serialize_simple, leaves_other_shapes_to_beast_and_the_buffer_untouched) {
  std::string out = "untouched";
  auto big = make(http::status::ok, 11, std::string(2000, 'x'), true);
  EXPECT_FALSE(serialize_simple(big, out, 1999));  // body over the limit
  auto chunked = make(http::status::ok, 11, "{}", true);
  chunked.chunked(true);
  EXPECT_FALSE(serialize_simple(chunked, out, 1024));
  response no_length{http::status::ok, 11};
  no_length.body() = "{}";
  EXPECT_FALSE(serialize_simple(no_length, out, 1024));  // no Content-Length
  EXPECT_EQ(out, "untouched");
}

}  // namespace
}  // namespace chat4all::api
