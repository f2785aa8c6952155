#include "fixture.hpp"

namespace chat4all::testing {

using conversation_rules = domain_fixture;

TEST_F(conversation_rules, private_needs_exactly_one_other_member) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  create_conversation_request req{conversation_type::private_chat, {a.id}, "", ""};
  auto self_only = run(conversations.create(a, req));
  ASSERT_FALSE(self_only);
  EXPECT_EQ(self_only.err().code, errc::invalid_input);

  req.member_ids = {b.id, c.id};
  auto three = run(conversations.create(a, req));
  ASSERT_FALSE(three);
  EXPECT_EQ(three.err().code, errc::invalid_input);
}

TEST_F(conversation_rules, creator_included_duplicates_merged_and_pair_reused) {
  auto a = user("alice"), b = user("bob");
  create_conversation_request req{conversation_type::private_chat, {b.id, b.id}, "", ""};
  auto first = run(conversations.create(a, req));
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->conv.member_ids, (std::vector<user_id>{a.id, b.id}));

  // The same pair from the other side returns the existing conversation.
  create_conversation_request back{conversation_type::private_chat, {a.id}, "", ""};
  auto second = run(conversations.create(b, back));
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->conv.id, first->conv.id);
}

TEST_F(conversation_rules, group_size_limits) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  create_conversation_request two{conversation_type::group, {b.id}, "g", ""};
  auto small = run(conversations.create(a, two));
  ASSERT_FALSE(small);
  EXPECT_EQ(small.err().code, errc::invalid_input);

  create_conversation_request ok3{conversation_type::group, {b.id, c.id}, "g", ""};
  auto g = run(conversations.create(a, ok3));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->conv.member_ids.size(), 3u);

  create_conversation_request big{conversation_type::group, {}, "big", ""};
  for (int i = 0; i < 101; ++i) big.member_ids.push_back(1000 + i);
  auto too_big = run(conversations.create(a, big));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.err().code, errc::invalid_input);
}

TEST_F(conversation_rules, unknown_members_are_listed) {
  auto a = user("alice"), b = user("bob");
  create_conversation_request req{conversation_type::group, {b.id, 777, 778}, "g", ""};
  auto r = run(conversations.create(a, req));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_input);
  EXPECT_EQ(r.err().details.size(), 2u);
}

TEST_F(conversation_rules, name_length_is_bounded) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  create_conversation_request req{
      conversation_type::group, {b.id, c.id}, std::string(101, 'n'), ""};
  auto r = run(conversations.create(a, req));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_input);
}

TEST_F(conversation_rules, history_and_read_need_membership) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto conv = run(conversations.create(a, {conversation_type::private_chat, {b.id}, "", ""}));
  ASSERT_TRUE(conv);
  history_query q;
  q.conversation = conv->conv.id;
  auto h = run(conversations.history(c, q));
  ASSERT_FALSE(h);
  EXPECT_EQ(h.err().code, errc::forbidden);
  auto r = run(conversations.mark_read(c, conv->conv.id, std::nullopt));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::forbidden);
  q.conversation = 9999;
  auto unknown = run(conversations.history(a, q));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.err().code, errc::not_found);
}

}  // namespace chat4all::testing
