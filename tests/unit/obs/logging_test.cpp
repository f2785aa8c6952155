#include "obs/logging.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <sstream>
#include <string>

namespace chat4all::log {
namespace {

constexpr timestamp_us kTs = 1'700'000'000'123'000;  // 2023-11-14T22:13:20.123Z

TEST(logging, json_line_has_fixed_keys_in_order) {
  context ctx{"req-1", "0af7651916cd43dd8448eb211c80319c"};
  std::string line = format_json(kTs, level::info, "chat4all", "api", &ctx, "hello",
                                 {{"n", 3}, {"ok", true}, {"name", "x"}});
  EXPECT_EQ(line,
            "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\",\"service\":\"chat4all\","
            "\"role\":\"api\",\"msg\":\"hello\",\"request_id\":\"req-1\","
            "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"n\":3,\"ok\":true,"
            "\"name\":\"x\"}");
}

TEST(logging, json_escaping_keeps_the_line_valid) {
  std::string nasty = "quote\" backslash\\ nl\n cr\r tab\t bell\x07 del\x7f";
  std::string line = format_json(kTs, level::warn, "s", "r", nullptr, nasty, {{nasty, nasty}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find(R"(quote\" backslash\\ nl\n cr\r tab\t bell\u0007 del\u007f)"),
            std::string::npos);
  auto v = boost::json::parse(line);
  EXPECT_EQ(v.at("msg").as_string(), nasty);
  EXPECT_EQ(v.at(nasty).as_string(), nasty);
  EXPECT_EQ(v.at("level").as_string(), "warn");
}

TEST(logging, invalid_utf8_becomes_replacement_character) {
  std::string s = "ok \xC3\xA9 bad \xFF\xC3 overlong \xC0\xAF end \xE2\x82\xAC";
  std::string out;
  append_json_string(out, s);
  EXPECT_EQ(out, "\"ok \xC3\xA9 bad \\ufffd\\ufffd overlong \\ufffd\\ufffd end \xE2\x82\xAC\"");
  EXPECT_NO_THROW(boost::json::parse(out));
}

TEST(logging, field_types_and_reserved_keys) {
  std::string line = format_json(kTs, level::error, "s", "r", nullptr, "m",
                                 {{"i", -5},
                                  {"u", 7u},
                                  {"d", 1.5},
                                  {"inf", 1.0 / 0.0},
                                  {"null", nullptr},
                                  {"msg", "shadow"},
                                  {"s", std::string("str")}});
  auto v = boost::json::parse(line).as_object();
  EXPECT_EQ(v.at("i").as_int64(), -5);
  EXPECT_EQ(v.at("u").to_number<std::uint64_t>(), 7u);
  EXPECT_DOUBLE_EQ(v.at("d").as_double(), 1.5);
  EXPECT_TRUE(v.at("inf").is_null());
  EXPECT_TRUE(v.at("null").is_null());
  EXPECT_EQ(v.at("msg").as_string(), "m");
  EXPECT_EQ(v.at("field.msg").as_string(), "shadow");
  EXPECT_EQ(v.at("s").as_string(), "str");
}

TEST(logging, text_format_is_one_readable_line) {
  context ctx{"rid", ""};
  std::string line = format_text(kTs, level::info, "chat4all", "all", &ctx, "two\nlines",
                                 {{"route", "GET /x"}, {"status", 200}, {"word", "plain"}});
  EXPECT_EQ(line,
            "2023-11-14T22:13:20.123Z INFO  chat4all/all two lines request_id=rid "
            "route=\"GET /x\" status=200 word=plain");
}

TEST(logging, init_installs_logger_with_level_and_format) {
  std::ostringstream out;
  init_logging(logging_config{"info", "json"}, "chat4all", "api", out);
  EXPECT_FALSE(enabled(level::debug));
  EXPECT_TRUE(enabled(level::info));
  debug("hidden");
  info(context{"r1", ""}, "shown", {{"k", "v"}});
  flush();
  std::string text = out.str();
  ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  auto v = boost::json::parse(text).as_object();
  EXPECT_EQ(v.at("msg").as_string(), "shown");
  EXPECT_EQ(v.at("service").as_string(), "chat4all");
  EXPECT_EQ(v.at("role").as_string(), "api");
  EXPECT_EQ(v.at("request_id").as_string(), "r1");
  EXPECT_EQ(v.at("k").as_string(), "v");

  std::ostringstream text_out;
  init_logging(logging_config{"debug", "text"}, "svc", "router", text_out);
  debug("now visible");
  flush();
  EXPECT_NE(text_out.str().find("DEBUG svc/router now visible"), std::string::npos);

  EXPECT_THROW(init_logging(logging_config{"loud", "json"}, "s", "r", out), std::invalid_argument);
  EXPECT_THROW(init_logging(logging_config{"info", "xml"}, "s", "r", out), std::invalid_argument);
  // Leave a logger that does not point at the streams above, which die with this test.
  init_logging(logging_config{"error", "json"}, "chat4all", "test");
}

}  // namespace
}  // namespace chat4all::log
