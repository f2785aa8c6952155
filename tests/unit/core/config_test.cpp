#include "core/config_loader.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <unistd.h>

#include "core/ids.hpp"

namespace chat4all {
namespace {

using env_t = std::map<std::string, std::string>;

// The checkout root, found from this file's path (tests/unit/core/config_test.cpp).
std::filesystem::path source_root() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The message of the config_error that `f` throws ("" if it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

std::string toml_error(std::string_view text, const env_t& env = {}) {
  return error_of([&] { (void)load_config_from_string(text, env, "test.toml"); });
}

std::string env_error(const env_t& env) {
  return error_of([&] { (void)load_config(std::nullopt, env); });
}

TEST(config, defaults_without_file_or_env) {
  const config c = load_config(std::nullopt, {});
  EXPECT_EQ(format_config(c, false), format_config(config{}, false));
  EXPECT_EQ(c.role, "all");
  EXPECT_EQ(c.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.auth.argon2_memlimit_kib, 64u * 1024);
}

TEST(config, file_values) {
  const config c = load_config_from_string(R"(
role = "api"
seed_demo_users = true
[server]
listen = "[::1]:9000"
threads = 0
max_body_bytes = 1048576
[storage]
data_dir = "/tmp/x"
sqlite_synchronous = "full"
[log]
fsync = false
segment_bytes = 8388608
[auth]
jwt_secret = "0123456789abcdef0123456789abcdef"
argon2_opslimit = 3
[limits]
group_max_members = 3
[router]
poll_wait_ms = 0
[logging]
level = "debug"
format = "text"
)",
                                           {});
  EXPECT_EQ(c.role, "api");
  EXPECT_TRUE(c.seed_demo_users);
  EXPECT_EQ(c.server.listen, "[::1]:9000");
  EXPECT_EQ(c.server.threads, 0);
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
  EXPECT_EQ(c.server.idle_timeout_s, 75);  // untouched keys keep their defaults
  EXPECT_EQ(c.storage.data_dir, "/tmp/x");
  EXPECT_EQ(c.storage.sqlite_synchronous, "full");
  EXPECT_FALSE(c.log.fsync);
  EXPECT_EQ(c.log.segment_bytes, 8388608u);
  EXPECT_EQ(c.auth.jwt_secret, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c.auth.argon2_opslimit, 3u);
  EXPECT_EQ(c.limits.group_max_members, 3);
  EXPECT_EQ(c.router.poll_wait_ms, 0);
  EXPECT_EQ(c.logging.level, "debug");
  EXPECT_EQ(c.logging.format, "text");
}

TEST(config, loads_a_file_from_disk) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("chat4all_config_test_" + std::to_string(::getpid()) + ".toml");
  {
    std::ofstream out(path);
    out << "[server]\nthreads = 3\n";
  }
  const config c = load_config(path.string(), {});
  std::filesystem::remove(path);
  EXPECT_EQ(c.server.threads, 3);
  const std::string e = error_of([&] { (void)load_config(path.string(), {}); });
  EXPECT_NE(e.find(path.string()), std::string::npos) << e;
}

TEST(config, env_overrides_file) {
  const env_t env{{"CHAT4ALL_SERVER_LISTEN", "0.0.0.0:80"},
                  {"CHAT4ALL_SERVER_THREADS", "2"},
                  {"CHAT4ALL_STORAGE_DATA_DIR", "/data"},
                  {"CHAT4ALL_AUTH_JWT_SECRET", std::string(40, 's')},
                  {"CHAT4ALL_AUTH_ALLOW_REGISTRATION", "false"},
                  {"CHAT4ALL_LOG_FSYNC", "0"},
                  {"CHAT4ALL_ROLE", "router"},
                  {"CHAT4ALL_SEED_DEMO_USERS", "true"},
                  {"CHAT4ALL_BIN", "/usr/bin/whatever"},  // used by tools: ignored
                  {"CHAT4ALL_CONFIG", "/etc/chat4all.toml"},
                  {"CHAT4ALL_TEST_PG_DSN", "x"},
                  {"PATH", "/usr/bin"},  // not ours: ignored
                  {"chat4all_role", "nonsense"}};
  const config c = load_config_from_string(
      "role = \"api\"\n[server]\nlisten = \"127.0.0.1:1\"\nthreads = 8\nmax_connections = 5\n",
      env);
  EXPECT_EQ(c.server.listen, "0.0.0.0:80");
  EXPECT_EQ(c.server.threads, 2);
  EXPECT_EQ(c.server.max_connections, 5);  // file value, no env override
  EXPECT_EQ(c.storage.data_dir, "/data");
  EXPECT_EQ(c.auth.jwt_secret, std::string(40, 's'));
  EXPECT_FALSE(c.auth.allow_registration);
  EXPECT_FALSE(c.log.fsync);
  EXPECT_EQ(c.role, "router");
  EXPECT_TRUE(c.seed_demo_users);
}

TEST(config, every_key_can_be_set_from_its_env_variable) {
  for (const auto& k : config_keys()) {
    // The default value, written as an env value, must load and give the defaults back.
    std::string v = k.default_value;
    if (k.type == "string") v = v.substr(1, v.size() - 2);
    const config c = load_config(std::nullopt, {{k.env, v}});
    EXPECT_EQ(format_config(c, false), format_config(config{}, false)) << k.env;
  }
}

TEST(config, unknown_key_names_the_key_and_suggests) {
  std::string e = toml_error("[server]\nlistn = \"127.0.0.1:1\"\n");
  EXPECT_NE(e.find("unknown key \"server.listn\""), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean server.listen?"), std::string::npos) << e;
  EXPECT_NE(e.find("test.toml:2"), std::string::npos) << e;

  e = toml_error("[server]\ndata_dir = \"/x\"\n");  // right key, wrong table
  EXPECT_NE(e.find("server.data_dir"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean storage.data_dir?"), std::string::npos) << e;

  e = toml_error("listen = \"127.0.0.1:1\"\n");  // top level
  EXPECT_NE(e.find("unknown key \"listen\""), std::string::npos) << e;
  EXPECT_NE(e.find("server.listen"), std::string::npos) << e;

  e = toml_error("[server]\ncompletely_unrelated = 1\n");
  EXPECT_NE(e.find("server.completely_unrelated"), std::string::npos) << e;
  EXPECT_EQ(e.find("did you mean"), std::string::npos) << e;

  e = toml_error("[server.tls]\ncert = \"x\"\n");
  EXPECT_NE(e.find("server.tls"), std::string::npos) << e;
}

TEST(config, unknown_table_is_an_error) {
  std::string e = toml_error("[servr]\nthreads = 1\n");
  EXPECT_NE(e.find("unknown table [servr]"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean [server]?"), std::string::npos) << e;
  e = toml_error("[kafka]\nbrokers = \"x\"\n");
  EXPECT_NE(e.find("[kafka]"), std::string::npos) << e;
  e = toml_error("server = 5\n");
  EXPECT_NE(e.find("server must be a table"), std::string::npos) << e;
  e = toml_error("[[server]]\nthreads = 1\n");
  EXPECT_NE(e.find("server must be a table"), std::string::npos) << e;
}

TEST(config, bad_types_and_values_name_the_key) {
  struct bad_case {
    std::string toml;
    std::string key;
  };
  const std::vector<bad_case> cases = {
      {"[server]\nthreads = \"abc\"", "server.threads must be an integer between 0 and 256"},
      {"[server]\nthreads = 257", "server.threads must be an integer between 0 and 256"},
      {"[server]\nthreads = -1", "server.threads"},
      {"[server]\nthreads = 1.5", "server.threads"},
      {"[server]\nthreads = true", "server.threads"},
      {"[server]\nlisten = \"localhost\"", "server.listen must be host:port"},
      {"[server]\nlisten = \"127.0.0.1:65536\"", "server.listen"},
      {"[server]\nlisten = \"127.0.0.1:\"", "server.listen"},
      {"[server]\nlisten = \":8080\"", "server.listen"},
      {"[server]\nlisten = \"[::1:8080\"", "server.listen"},
      {"[server]\nlisten = 8080", "server.listen"},
      {"[server]\nmax_body_bytes = 0", "server.max_body_bytes"},
      {"[server]\nmax_header_bytes = 10", "server.max_header_bytes"},
      {"role = \"worker\"", "role must be one of all, api, router"},
      {"seed_demo_users = \"yes\"", "seed_demo_users must be true or false"},
      {"[storage]\nsqlite_synchronous = \"off\"", "storage.sqlite_synchronous must be one of"},
      {"[storage]\ndata_dir = \"\"", "storage.data_dir"},
      {"[log]\nsegment_bytes = 0", "log.segment_bytes"},
      {"[log]\nfsync = 1", "log.fsync"},
      {"[auth]\njwt_secret = \"short\"", "auth.jwt_secret must be empty or at least 32 bytes"},
      {"[auth]\nissuer = \"\"", "auth.issuer"},
      {"[auth]\naccess_ttl_s = 0", "auth.access_ttl_s"},
      {"[auth]\nargon2_memlimit_kib = 4", "auth.argon2_memlimit_kib"},
      {"[auth]\ntoken_cache_entries = 0", "auth.token_cache_entries"},
      {"[limits]\ngroup_max_members = 2",
       "limits.group_max_members must be an integer between 3 and 1000"},
      {"[limits]\ngroup_max_members = 1001", "limits.group_max_members"},
      {"[router]\nbatch_size = 0", "router.batch_size"},
      {"[router]\nmax_retries = 11", "router.max_retries must be an integer between 0 and 10"},
      {"[router]\nretry_initial_ms = 0", "router.retry_initial_ms"},
      {"[router]\nfail_store_message_ids = \"not-a-uuid\"",
       "router.fail_store_message_ids must be empty or comma-separated message ids"},
      {"[router]\nfail_store_message_ids = \"6f1c1a52-3d6f-4a8e-9d3b-5b8f2f1e2a10,\"",
       "router.fail_store_message_ids"},
      {"[logging]\nlevel = \"verbose\"",
       "logging.level must be one of trace, debug, info, warn, error"},
      {"[logging]\nformat = \"xml\"", "logging.format must be one of json, text"},
  };
  for (const auto& c : cases) {
    const std::string e = toml_error(c.toml);
    EXPECT_NE(e.find(c.key), std::string::npos) << c.toml << "\n  -> " << e;
    EXPECT_TRUE(e.starts_with("config: ")) << e;
  }
  EXPECT_NE(toml_error("[server]\nthreads = \"abc\"").find("got \"abc\""), std::string::npos);
}

TEST(config, router_retry_and_fault_injection_keys) {
  const config d;
  EXPECT_EQ(d.router.retry_initial_ms, 1000);
  EXPECT_EQ(d.router.max_retries, 3);
  EXPECT_TRUE(d.router.fail_store_message_ids.empty());
  const config c = load_config_from_string(
      "[router]\nretry_initial_ms = 10\nmax_retries = 0\n",
      {{"CHAT4ALL_ROUTER_FAIL_STORE_MESSAGE_IDS",
        "6f1c1a52-3d6f-4a8e-9d3b-5b8f2f1e2a10, 6F1C1A52-3D6F-4A8E-9D3B-5B8F2F1E2A11"}},
      "t.toml");
  EXPECT_EQ(c.router.retry_initial_ms, 10);
  EXPECT_EQ(c.router.max_retries, 0);
  const auto ids = parse_uuid_list(c.router.fail_store_message_ids);
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->size(), 2u);
  EXPECT_EQ((*ids)[1].str(), "6f1c1a52-3d6f-4a8e-9d3b-5b8f2f1e2a11");
  EXPECT_TRUE(parse_uuid_list("") && parse_uuid_list("")->empty());
  EXPECT_FALSE(parse_uuid_list(","));
  EXPECT_FALSE(parse_uuid_list(" "));
}

TEST(config, secrets_are_not_echoed_in_errors) {
  const std::string e = toml_error("[auth]\njwt_secret = \"hunter2\"");
  EXPECT_NE(e.find("auth.jwt_secret"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
  const std::string e2 = env_error({{"CHAT4ALL_AUTH_JWT_SECRET", "hunter2"}});
  EXPECT_NE(e2.find("CHAT4ALL_AUTH_JWT_SECRET"), std::string::npos) << e2;
  EXPECT_EQ(e2.find("hunter2"), std::string::npos) << e2;
  config c;
  c.auth.jwt_secret = std::string(32, 'k');
  EXPECT_EQ(format_config(c).find(c.auth.jwt_secret), std::string::npos);
}

TEST(config, bad_env_value_names_the_variable) {
  std::string e = env_error({{"CHAT4ALL_SERVER_THREADS", "abc"}});
  EXPECT_NE(e.find("CHAT4ALL_SERVER_THREADS"), std::string::npos) << e;
  EXPECT_NE(e.find("server.threads"), std::string::npos) << e;
  EXPECT_NE(e.find("got \"abc\""), std::string::npos) << e;
  EXPECT_FALSE(env_error({{"CHAT4ALL_SERVER_THREADS", "1 "}}).empty());
  EXPECT_FALSE(env_error({{"CHAT4ALL_SERVER_THREADS", ""}}).empty());
  EXPECT_FALSE(env_error({{"CHAT4ALL_SERVER_THREADS", "99999999999999999999"}}).empty());
  EXPECT_FALSE(env_error({{"CHAT4ALL_LOG_FSYNC", "maybe"}}).empty());
  EXPECT_FALSE(env_error({{"CHAT4ALL_ROLE", "ALL"}}).empty());
  EXPECT_FALSE(env_error({{"CHAT4ALL_SERVER_LISTEN", ""}}).empty());
  // The file is validated before env applies: a bad file value fails even when overridden.
  EXPECT_FALSE(toml_error("[server]\nthreads = 999", {{"CHAT4ALL_SERVER_THREADS", "1"}}).empty());
}

TEST(config, unknown_env_variable_is_an_error) {
  const std::string e = env_error({{"CHAT4ALL_SERVER_LISTN", "x"}});
  EXPECT_NE(e.find("CHAT4ALL_SERVER_LISTN"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean CHAT4ALL_SERVER_LISTEN?"), std::string::npos) << e;
  EXPECT_FALSE(env_error({{"CHAT4ALL_KAFKA_BROKERS", "x"}}).empty());
  EXPECT_TRUE(is_ignored_env_var("CHAT4ALL_BIN"));
  EXPECT_TRUE(is_ignored_env_var("CHAT4ALL_CONFIG"));
  EXPECT_FALSE(is_ignored_env_var("CHAT4ALL_ROLE"));
}

TEST(config, malformed_toml_names_the_file_and_line) {
  const std::string e = toml_error("[server]\nthreads = = 1\n");
  EXPECT_NE(e.find("test.toml:2"), std::string::npos) << e;
  EXPECT_FALSE(toml_error("[server]\nthreads = 1\nthreads = 2\n").empty());  // duplicate
}

TEST(config, format_config_round_trips) {
  config c;
  c.role = "router";
  c.server.listen = "0.0.0.0:1";
  c.storage.data_dir = "/path with \"quotes\" and \\ backslash";
  c.auth.jwt_secret = std::string(33, 'z');
  c.auth.argon2_opslimit = 4294967295ULL;
  c.log.fsync = false;
  const std::string text = format_config(c, false);
  EXPECT_EQ(format_config(load_config_from_string(text, {}), false), text);
}

// Lines "key = value" of a TOML file, as "table.key", so a test can see which keys it sets.
std::set<std::string> keys_in(const std::string& toml) {
  std::set<std::string> out;
  std::istringstream in(toml);
  std::string line, table;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      table = line.substr(1, line.find(']') - 1);
      continue;
    }
    const std::string key = line.substr(0, line.find(' '));
    out.insert(table.empty() ? key : table + "." + key);
  }
  return out;
}

TEST(config, example_file_sets_every_key_to_its_default) {
  const auto path = source_root() / "config" / "chat4all.example.toml";
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  const config c = load_config(path.string(), {});
  EXPECT_EQ(format_config(c, false), format_config(config{}, false));
  const auto keys = keys_in(read_file(path));
  for (const auto& k : config_keys()) EXPECT_TRUE(keys.count(k.key)) << k.key << " missing";
  EXPECT_EQ(keys.size(), config_keys().size());
}

TEST(config, documentation_lists_every_key) {
  const std::string doc = read_file(source_root() / "docs" / "configuration.md");
  ASSERT_FALSE(doc.empty());
  for (const auto& k : config_keys()) {
    EXPECT_NE(doc.find("`" + k.key + "`"), std::string::npos) << k.key;
    EXPECT_NE(doc.find("`" + k.env + "`"), std::string::npos) << k.env;
  }
}

TEST(config, describe_lists_every_key) {
  const std::string d = describe_config_keys();
  EXPECT_EQ(config_keys().size(), 88u);  // one per field of chat4all::config
  for (const auto& k : config_keys()) EXPECT_NE(d.find(k.key + " ("), std::string::npos) << k.key;
}

}  // namespace
}  // namespace chat4all
