#include "api/route_table.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace chat4all::api {
namespace {

boost::asio::awaitable<response> noop(request_context& ctx) {
  co_return json_response(ctx.req, http::status::ok, "{}");
}

class route_table_test : public ::testing::Test {
 protected:
  void SetUp() override {
    table.add(http::verb::post, "/v1/messages", {"send"}, noop);
    table.add(http::verb::post, "/v1/messages:batch", {"batch"}, noop);
    table.add(http::verb::get, "/v1/messages/{message_id}", {"get message"}, noop);
    table.add(http::verb::get, "/v1/conversations/{id}/messages", {}, noop);
    table.add(http::verb::post, "/v1/conversations/{id}/read", {}, noop);
    table.add(http::verb::get, "/v1/files/{file_id}", {}, noop);
    table.add(http::verb::post, "/v1/files/initiate", {}, noop);
    table.add(http::verb::get, "/v1/files/initiate", {"literal wins"}, noop);
    table.add(http::verb::put, "/v1/files/{upload_id}/chunks/{n}", {}, noop);
  }
  route_table table;
};

TEST_F(route_table_test, extracts_path_parameters) {
  auto m = table.match(http::verb::put, "/v1/files/abc/chunks/7");
  ASSERT_EQ(m.kind, match_kind::found);
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(m.params[0], (std::pair<std::string, std::string>{"upload_id", "abc"}));
  EXPECT_EQ(m.params[1], (std::pair<std::string, std::string>{"n", "7"}));
  EXPECT_EQ(m.r->options.name, "PUT /v1/files/{upload_id}/chunks/{n}");
}

TEST_F(route_table_test, colon_literal_is_distinct_from_parameter_route) {
  auto batch = table.match(http::verb::post, "/v1/messages:batch");
  ASSERT_EQ(batch.kind, match_kind::found);
  EXPECT_EQ(batch.r->options.name, "batch");
  EXPECT_TRUE(batch.params.empty());

  auto one = table.match(http::verb::get, "/v1/messages/0b7c1c3e-4d3f-4a8e-9a59-5d2f7f1e2a10");
  ASSERT_EQ(one.kind, match_kind::found);
  EXPECT_EQ(one.r->options.name, "get message");

  // GET on the batch literal: the path exists only for POST.
  auto wrong = table.match(http::verb::get, "/v1/messages:batch");
  EXPECT_EQ(wrong.kind, match_kind::method_not_allowed);
  EXPECT_EQ(wrong.allow, "POST");
  EXPECT_EQ(table.match(http::verb::post, "/v1/messages:other").kind, match_kind::not_found);
}

TEST_F(route_table_test, not_found_versus_method_not_allowed) {
  EXPECT_EQ(table.match(http::verb::get, "/v1/nothing").kind, match_kind::not_found);
  EXPECT_EQ(table.match(http::verb::get, "/v1/conversations/1/messages/extra").kind,
            match_kind::not_found);
  EXPECT_EQ(table.match(http::verb::get, "/v1/messages/").kind, match_kind::not_found);
  auto m = table.match(http::verb::delete_, "/v1/conversations/5/messages");
  EXPECT_EQ(m.kind, match_kind::method_not_allowed);
  EXPECT_EQ(m.allow, "GET");
  auto files = table.match(http::verb::delete_, "/v1/files/initiate");
  EXPECT_EQ(files.kind, match_kind::method_not_allowed);
  EXPECT_EQ(files.allow, "GET, POST");
}

TEST_F(route_table_test, literal_segment_beats_parameter) {
  auto m = table.match(http::verb::get, "/v1/files/initiate");
  ASSERT_EQ(m.kind, match_kind::found);
  EXPECT_EQ(m.r->options.name, "literal wins");
  auto p = table.match(http::verb::get, "/v1/files/f1");
  ASSERT_EQ(p.kind, match_kind::found);
  EXPECT_EQ(p.r->options.name, "GET /v1/files/{file_id}");
}

TEST_F(route_table_test, parameters_are_percent_decoded) {
  auto m = table.match(http::verb::get, "/v1/messages/a%20b%2Fc");
  ASSERT_EQ(m.kind, match_kind::found);
  EXPECT_EQ(m.params[0].second, "a b/c");
}

TEST_F(route_table_test, indexes_are_dense_and_options_kept) {
  route_table t;
  auto& a = t.add(http::verb::get, "/a", {"a", 10, false}, noop);
  auto& b = t.add(http::verb::get, "/b", {}, noop);
  EXPECT_EQ(a.index, 0u);
  EXPECT_EQ(b.index, 1u);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.at(0).options.body_limit, 10u);
  EXPECT_FALSE(t.at(0).options.auth);
  EXPECT_TRUE(t.at(1).options.auth);
}

TEST(route_table, rejects_bad_and_duplicate_patterns) {
  route_table t;
  t.add(http::verb::get, "/v1/x/{id}", {}, noop);
  EXPECT_THROW(t.add(http::verb::get, "/v1/x/{other}", {}, noop), std::invalid_argument);
  EXPECT_NO_THROW(t.add(http::verb::post, "/v1/x/{id}", {}, noop));
  EXPECT_THROW(t.add(http::verb::get, "v1/no-slash", {}, noop), std::invalid_argument);
  EXPECT_THROW(t.add(http::verb::get, "/v1/{bad", {}, noop), std::invalid_argument);
  EXPECT_THROW(t.add(http::verb::get, "/v1/{}", {}, noop), std::invalid_argument);
  EXPECT_THROW(t.add(http::verb::get, "/v1/x{id}", {}, noop), std::invalid_argument);
  EXPECT_THROW(t.add(http::verb::get, "/v1/y", {}, handler{}), std::invalid_argument);
}

TEST(route_table, query_parsing_and_target_split) {
  auto [path, query] = split_target("/v1/c?limit=50&before_seq=10");
  EXPECT_EQ(path, "/v1/c");
  EXPECT_EQ(query, "limit=50&before_seq=10");
  EXPECT_EQ(split_target("/x").second, "");

  auto q = parse_query("a=1&b=x%20y+z&&c&d=%zz&e=%41%");
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"a", "1"}));
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>{"b", "x y z"}));
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>{"c", ""}));
  EXPECT_EQ(q[3], (std::pair<std::string, std::string>{"d", "%zz"}));
  EXPECT_EQ(q[4], (std::pair<std::string, std::string>{"e", "A%"}));
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
}

}  // namespace
}  // namespace chat4all::api
