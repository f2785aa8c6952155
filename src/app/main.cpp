// chat4all: serve | user add NAME | migrate | upload FILE --conversation N | version.

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "app/application.hpp"
#include "app/upload_client.hpp"
#include "core/config_loader.hpp"

#ifndef CHAT4ALL_VERSION
#define CHAT4ALL_VERSION "dev"
#endif

int main(int argc, char** argv) {
  CLI::App cli{"Chat4All messaging server"};
  cli.require_subcommand(1);

  std::optional<std::string> config_path, listen, data_dir, role;
  bool seed_demo = false;
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--config", config_path, "TOML configuration file");
    sub->add_option("--data-dir", data_dir, "data directory (storage.data_dir)");
  };

  auto* serve = cli.add_subcommand("serve", "run the server");
  add_common(serve);
  serve->add_option("--listen", listen, "host:port to listen on (server.listen)");
  serve->add_option("--role", role, "all | api | router | relay | merger | gc");
  serve->add_flag("--seed-demo-users", seed_demo,
                  "create users alice, bob, carol, dave (password demo-password)");

  auto* user = cli.add_subcommand("user", "manage users");
  user->require_subcommand(1);
  auto* user_add = user->add_subcommand("add", "create a user; the password is read from stdin");
  std::string username;
  user_add->add_option("NAME", username, "username")->required();
  add_common(user_add);

  auto* mig = cli.add_subcommand("migrate", "apply database migrations");
  add_common(mig);
  cli.add_subcommand("version", "print the version");

  auto* upload = cli.add_subcommand(
      "upload", "upload a file to a conversation (progress bar; run again to resume)");
  chat4all::app::upload_options up;
  upload->add_option("FILE", up.file, "the file")->required();
  upload->add_option("--conversation", up.conversation, "conversation id")->required();
  upload->add_option("--url", up.url, "server base URL")->capture_default_str();
  upload->add_option("--token", up.token, "access token (or --user)");
  upload->add_option("--user", up.user,
                     "username (password: --password, CHAT4ALL_PASSWORD or stdin)");
  upload->add_option("--password", up.password, "password");
  upload->add_option("--chunk-size", up.chunk_size, "chunk size in bytes (server default)");
  upload->add_option("--max-rate", up.max_rate, "bytes per second (0 = no limit)");
  upload->add_option("--mime-type", up.mime_type, "declared media type")->capture_default_str();

  CLI11_PARSE(cli, argc, argv);

  if (cli.got_subcommand("upload")) return chat4all::app::upload_file(std::move(up));

  if (cli.got_subcommand("version")) {
    std::cout << "chat4all " << CHAT4ALL_VERSION << '\n';
    return 0;
  }

  chat4all::config cfg;
  try {
    // Flags win over the environment, which wins over the file; all go through the same
    // validation.
    auto env = chat4all::process_environment();
    if (listen) env["CHAT4ALL_SERVER_LISTEN"] = *listen;
    if (data_dir) env["CHAT4ALL_STORAGE_DATA_DIR"] = *data_dir;
    if (role) env["CHAT4ALL_ROLE"] = *role;
    if (seed_demo) env["CHAT4ALL_SEED_DEMO_USERS"] = "true";
    cfg = chat4all::load_config(config_path, env);
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 2;
  }

  try {
    if (cli.got_subcommand("serve")) return chat4all::app::serve(cfg);
    if (cli.got_subcommand("migrate")) return chat4all::app::migrate(cfg);
    if (user->got_subcommand("add")) {
      std::string password;
      std::getline(std::cin, password);
      if (!password.empty() && password.back() == '\r') password.pop_back();
      return chat4all::app::add_user(cfg, username, password);
    }
  } catch (const std::exception& e) {
    std::cerr << "fatal: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
