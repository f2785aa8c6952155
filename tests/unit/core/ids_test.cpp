#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/ids.hpp"

namespace chat4all {

TEST(uuid, parses_and_formats_canonical_text) {
  auto u = uuid::parse("123E4567-e89b-12d3-a456-426614174000");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->str(), "123e4567-e89b-12d3-a456-426614174000");
  EXPECT_EQ(uuid::from_raw(u->raw()), *u);
}

TEST(uuid, rejects_malformed_text) {
  EXPECT_FALSE(uuid::parse(""));
  EXPECT_FALSE(uuid::parse("123e4567e89b12d3a456426614174000"));
  EXPECT_FALSE(uuid::parse("123e4567-e89b-12d3-a456-42661417400g"));
  EXPECT_FALSE(uuid::parse("123e4567-e89b-12d3-a456-4266141740000"));
}

TEST(uuid, random_is_version_4_and_distinct) {
  auto a = uuid::random(), b = uuid::random();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.str()[14], '4');
}

TEST(clock, formats_rfc3339_with_millis) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(1'700'000'000'123'456), "2023-11-14T22:13:20.123Z");
}

TEST(errc, retryable_only_for_transient_codes) {
  EXPECT_TRUE(is_retryable(errc::unavailable));
  EXPECT_TRUE(is_retryable(errc::timeout));
  EXPECT_FALSE(is_retryable(errc::conflict));
  std::error_code ec = errc::not_found;
  EXPECT_EQ(ec.message(), "not_found");
}

TEST(result, carries_value_or_error) {
  result<int> a = 5;
  result<int> b = error{errc::conflict, "taken"};
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 5);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.err().code, errc::conflict);
  result<void> c = ok;
  EXPECT_TRUE(c);
}

}  // namespace chat4all
