#include "core/jwt.hpp"
#include "fixture.hpp"

namespace chat4all::testing {

using auth_rules = domain_fixture;

TEST_F(auth_rules, username_and_password_rules) {
  for (const char* bad : {"ab", "has space", "semi;colon", ""}) {
    auto r = run(auth.register_user(bad, "password-123"));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.err().code, errc::invalid_input);
  }
  auto short_pw = run(auth.register_user("alice", "short"));
  ASSERT_FALSE(short_pw);
  EXPECT_EQ(short_pw.err().code, errc::invalid_input);
  ASSERT_TRUE(run(auth.register_user("alice", "password-123")));
  auto taken = run(auth.register_user("alice", "password-123"));
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.err().code, errc::conflict);
}

TEST_F(auth_rules, login_and_authenticate) {
  user("alice");
  auto wrong = run(auth.login("alice", "nope-nope"));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(std::string(wrong.err().name()), "invalid_credentials");
  auto nobody = run(auth.login("nobody", "password-123"));
  ASSERT_FALSE(nobody);
  EXPECT_EQ(std::string(nobody.err().name()), "invalid_credentials");

  auto t = run(auth.login("alice", "password-123"));
  ASSERT_TRUE(t);
  auto p = run(auth.authenticate(t->access_token));
  ASSERT_TRUE(p);
  EXPECT_GT(p->id, 0);
  auto again = run(auth.authenticate(t->access_token));  // cached path
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, p->id);
}

TEST_F(auth_rules, expiry_applies_to_cached_tokens) {
  user("alice");
  auto t = run(auth.login("alice", "password-123"));
  ASSERT_TRUE(t);
  ASSERT_TRUE(run(auth.authenticate(t->access_token)));
  clk.advance_us(std::int64_t{cfg.auth.access_ttl_s + 1} * 1'000'000);
  auto expired = run(auth.authenticate(t->access_token));
  ASSERT_FALSE(expired);
  EXPECT_EQ(std::string(expired.err().name()), "token_expired");
}

TEST_F(auth_rules, refresh_rotates_and_reuse_revokes_the_family) {
  user("alice");
  auto t1 = run(auth.login("alice", "password-123"));
  ASSERT_TRUE(t1);
  auto t2 = run(auth.refresh(t1->refresh_token));
  ASSERT_TRUE(t2);
  EXPECT_NE(t2->refresh_token, t1->refresh_token);
  auto reuse = run(auth.refresh(t1->refresh_token));
  ASSERT_FALSE(reuse);
  EXPECT_EQ(std::string(reuse.err().name()), "invalid_grant");
  auto after = run(auth.refresh(t2->refresh_token));  // family revoked by the reuse
  ASSERT_FALSE(after);
  EXPECT_EQ(std::string(after.err().name()), "invalid_grant");
}

TEST_F(auth_rules, revoked_access_token_is_refused_even_when_cached) {
  user("alice");
  auto t = run(auth.login("alice", "password-123"));
  ASSERT_TRUE(t);
  ASSERT_TRUE(run(auth.authenticate(t->access_token)));
  ASSERT_TRUE(run(auth.revoke(t->access_token)));
  auto r = run(auth.authenticate(t->access_token));
  ASSERT_FALSE(r);
  EXPECT_EQ(std::string(r.err().name()), "token_revoked");

  // A restarted service learns the revocation from the store.
  auth_service fresh(db, db, clk, cfg.auth, blocking.get_executor());
  ASSERT_TRUE(run(fresh.load_revocations()));
  auto r2 = run(fresh.authenticate(t->access_token));
  ASSERT_FALSE(r2);
  EXPECT_EQ(std::string(r2.err().name()), "token_revoked");
}

TEST_F(auth_rules, forged_tokens_are_refused) {
  jwt_claims c;
  c.sub = 1;
  c.iat = clk.now_s();
  c.exp = c.iat + 60;
  c.jti = "x";
  c.iss = "chat4all";
  auto forged = jwt::sign(c, std::string(40, 'z'));
  auto r = run(auth.authenticate(forged));
  ASSERT_FALSE(r);
  EXPECT_EQ(std::string(r.err().name()), "invalid_token");
}

}  // namespace chat4all::testing

namespace chat4all::testing {

TEST_F(auth_rules, revocation_reaches_other_instances_through_the_fanout) {
  user("alice");
  auth_service one(db, db, clk, cfg.auth, blocking.get_executor(), &fan);
  auth_service two(db, db, clk, cfg.auth, blocking.get_executor(), &fan);
  auto t = run(one.login("alice", "password-123"));
  ASSERT_TRUE(t);
  ASSERT_TRUE(run(two.authenticate(t->access_token)));  // cached on instance two
  ASSERT_TRUE(run(one.revoke(t->access_token)));
  auto r = run(two.authenticate(t->access_token));
  ASSERT_FALSE(r);
  EXPECT_EQ(std::string(r.err().name()), "token_revoked");
}

}  // namespace chat4all::testing
