// chat4all-bench: the Chat4All load test suite (SPEC §9). Modes: api | ws | upload | all.
// Exit status: 0 every target met; 1 a target missed (or a loss found); 2 usage or setup error.

#include <sys/resource.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/json/serialize.hpp>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <thread>

#include "modes.hpp"
#include "report_html.hpp"
#include "spawn.hpp"

#ifndef CHAT4ALL_VERSION
#define CHAT4ALL_VERSION "dev"
#endif

namespace bench = chat4all::bench;
using namespace std::chrono;

namespace {

std::uint64_t parse_size(const std::string& s) {
  std::size_t pos = 0;
  const auto v = std::stoull(s, &pos);
  std::string suffix = s.substr(pos);
  if (suffix.empty()) return v;
  switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
    case 'K':
      return v << 10;
    case 'M':
      return v << 20;
    case 'G':
      return v << 30;
  }
  throw std::invalid_argument("bad size '" + s + "' (use e.g. 512K, 10M, 1G)");
}

void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

void print_phase(const bench::phase_result& p) {
  std::cout << "\n== " << p.name << ": " << p.status;
  if (!p.note.empty()) std::cout << " (" << p.note << ")";
  std::cout << '\n';
  if (p.status == "skipped") return;
  for (const auto& s : p.data.series) {
    const auto& h = s.total;
    std::printf(
        "   %-14s n=%-9s p50 %8.2f ms  p90 %8.2f ms  p99 %8.2f ms  p99.9 %8.2f ms  max %8.2f ms\n",
        s.name.c_str(), bench::thousands(static_cast<double>(h.count())).c_str(),
        h.percentile(0.5) / 1e6, h.percentile(0.9) / 1e6, h.percentile(0.99) / 1e6,
        h.percentile(0.999) / 1e6, static_cast<double>(h.max()) / 1e6);
  }
  for (const auto& [k, v] : p.data.errors)
    std::cout << "   error " << k << ": " << bench::thousands(static_cast<double>(v)) << '\n';
  for (const auto& t : p.targets)
    std::printf("   [%s] %s: %.3f (target %s %.3f %s)\n", t.passed ? " ok " : "MISS",
                t.name.c_str(), t.actual, t.op.c_str(), t.expected, t.unit.c_str());
  std::cout << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"chat4all-bench: load tests for a Chat4All server (SPEC §9)"};
  cli.require_subcommand(1);
  std::string url = "http://127.0.0.1:8080", spawn, out;
  int server_threads = 0, threads = 2;
  bool progress = false, quick = false, keep_data = false, baseline = false;
  double cooldown_s = 5;
  bench::targets tg;
  std::optional<double> target_msgs;
  bench::api_options api;
  std::string endpoint = "both";
  int batch_connections = 16;
  double duration_s = 10, verify_timeout_s = 60;
  int users = 100, conversations = 200, group_size = 5;
  double group_ratio = 0.25;
  bench::ws_options ws;
  std::string ws_via = "ws";
  std::string ws_listeners = "all";
  double ws_duration_s = 10;
  int ws_users_per = 5;
  bench::upload_options up;
  std::string upload_size = "100M", chunk_size = "10M";

  cli.add_option("--url", url, "server to test (http://host:port)")->capture_default_str();
  cli.add_option("--spawn", spawn,
                 "start this chat4all binary on a free port with a temp data dir");
  cli.add_option("--server-threads", server_threads, "--spawn: server.threads (0 = one per core)");
  cli.add_flag("--keep-server-data", keep_data, "--spawn: keep the temporary data directory");
  cli.add_option("--threads", threads, "load generator io_context threads")->capture_default_str();
  cli.add_option("--out", out, "output directory (default bench-results/<timestamp>)");
  cli.add_flag("--progress", progress,
               "print the progress line even when stdout is not a terminal");
  cli.add_flag("--quick", quick,
               "seconds-long smoke run with small numbers (still verifies zero loss)");
  cli.add_option("--cooldown-s", cooldown_s, "pause between phases of `all`")
      ->capture_default_str();
  cli.add_flag(
      "--baseline", baseline,
      "api only: the server is a do-nothing baseline (e.g. nginx answering 202): no users, "
      "no conversations, no verification");
  cli.add_option("--target-msgs-per-s", target_msgs,
                 "closed-loop ingestion target, 0 disables (default 166667; 0 with --quick)");
  cli.add_option("--target-p99-ms", tg.api_p99_ms, "api p99 target")->capture_default_str();
  cli.add_option("--target-ws-p99-ms", tg.ws_p99_ms, "ws notification p99 target")
      ->capture_default_str();
  cli.add_option("--target-chunk-s", tg.chunk_max_s, "upload: slowest chunk target")
      ->capture_default_str();
  cli.add_option("--min-success", tg.min_success, "share of requests that must succeed")
      ->capture_default_str();
  // api
  cli.add_option("--endpoint", endpoint, "api: single | batch | both")->capture_default_str();
  cli.add_option("--batch-size", api.batch_size, "api: messages per batch request")
      ->capture_default_str();
  cli.add_option("--rate", api.rate, "api: offered messages/s (open loop); 0 = closed loop")
      ->capture_default_str();
  cli.add_option("--connections", api.connections, "api: keep-alive connections (single)")
      ->capture_default_str();
  cli.add_option("--batch-connections", batch_connections, "api: connections (batch)")
      ->capture_default_str();
  cli.add_option("--duration-s", duration_s, "api: seconds of load per endpoint")
      ->capture_default_str();
  cli.add_option("--message-bytes", api.message_bytes, "text content size")->capture_default_str();
  std::string message_ids = "v7";
  cli.add_option("--message-ids", message_ids,
                 "message ids the clients choose: v7 (time-ordered UUIDs), v4 (random UUIDs) "
                 "or sequential (a counter)")
      ->check(CLI::IsMember({"v7", "v4", "sequential"}))
      ->capture_default_str();
  cli.add_option("--users", users, "api: users registered up front")->capture_default_str();
  cli.add_option("--conversations", conversations, "api: conversations created up front")
      ->capture_default_str();
  cli.add_option("--group-ratio", group_ratio, "share of group conversations")
      ->capture_default_str();
  cli.add_option("--group-size", group_size, "members per group")->capture_default_str();
  cli.add_option("--verify-timeout-s", verify_timeout_s,
                 "bounded wait for the router before counting losses")
      ->capture_default_str();
  // ws
  cli.add_option("--ws-connections", ws.connections, "ws: concurrent connections")
      ->capture_default_str();
  cli.add_option("--ws-per-user", ws_users_per, "ws: connections per user (server cap 10)")
      ->capture_default_str();
  cli.add_option("--ws-connect-rate", ws.connect_rate, "ws: new connections per second")
      ->capture_default_str();
  cli.add_option("--ws-senders", ws.senders, "ws: connections that send")->capture_default_str();
  cli.add_option("--ws-rate", ws.rate,
                 "ws: messages/s over all senders (open loop); 0 = closed loop (--ws-window)")
      ->capture_default_str();
  cli.add_option("--ws-batch", ws.batch,
                 "ws: messages per frame (1 = action send, more = action send_batch)")
      ->capture_default_str();
  cli.add_option("--ws-window", ws.window,
                 "ws: closed loop: frames each sender keeps unacknowledged at most")
      ->capture_default_str();
  cli.add_option("--ws-listeners", ws_listeners,
                 "ws: connections that listen: all, others (not the senders) or none (every "
                 "connection unsubscribes from its conversations: the send path alone)")
      ->capture_default_str();
  cli.add_option("--ws-via", ws_via, "ws: senders use ws (action send) or rest")
      ->capture_default_str();
  cli.add_option("--ws-duration-s", ws_duration_s, "ws: seconds of traffic")->capture_default_str();
  // upload
  cli.add_option("--uploads", up.uploads, "upload: concurrent uploads")->capture_default_str();
  cli.add_option("--upload-size", upload_size, "upload: bytes per file (K/M/G)")
      ->capture_default_str();
  cli.add_option("--chunk-size", chunk_size, "upload: chunk size (5M..64M)")->capture_default_str();

  auto* api_cmd = cli.add_subcommand("api", "message ingestion over REST (single and batch)");
  auto* ws_cmd = cli.add_subcommand("ws", "WebSocket connections and notification latency");
  auto* upload_cmd = cli.add_subcommand("upload", "concurrent chunked uploads");
  auto* all_cmd = cli.add_subcommand("all", "the whole suite in sequence with cool-downs");
  for (auto* s : {api_cmd, ws_cmd, upload_cmd, all_cmd}) s->fallthrough();
  CLI11_PARSE(cli, argc, argv);

  raise_fd_limit();
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  if (quick) {
    auto unset = [&](const char* name) { return cli.get_option(name)->count() == 0; };
    if (unset("--duration-s")) duration_s = 2;
    if (unset("--users")) users = 6;
    if (unset("--conversations")) conversations = 6;
    if (unset("--connections")) api.connections = 8;
    if (unset("--batch-connections")) batch_connections = 4;
    if (unset("--batch-size")) api.batch_size = 20;
    if (unset("--cooldown-s")) cooldown_s = 1;
    if (unset("--verify-timeout-s")) verify_timeout_s = 30;
    if (unset("--ws-connections")) ws.connections = 20;
    if (unset("--ws-senders")) ws.senders = 5;
    if (unset("--ws-rate")) ws.rate = 50;
    if (unset("--ws-connect-rate")) ws.connect_rate = 100;
    if (unset("--ws-duration-s")) ws_duration_s = 2;
    if (unset("--uploads")) up.uploads = 2;
    if (unset("--upload-size")) upload_size = "12M";
    if (unset("--chunk-size")) chunk_size = "5M";
  }
  tg.msgs_per_s = target_msgs ? *target_msgs : (quick ? 0 : 166667);

  if (out.empty()) {
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    out = std::string("bench-results/") + stamp;
  }
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) {
    std::cerr << "cannot create --out " << out << ": " << ec.message() << '\n';
    return 2;
  }

  std::unique_ptr<bench::spawned_server> server;
  bench::common_options common;
  bench::run_result run;
  try {
    if (!spawn.empty()) {
      std::map<std::string, std::string> env{
          {"CHAT4ALL_LOGGING_LEVEL", "warn"},
          {"CHAT4ALL_SERVER_THREADS", std::to_string(server_threads)},
          // Registration speed only (setup, not the measured path): a cheaper argon2id.
          {"CHAT4ALL_AUTH_ARGON2_OPSLIMIT", "1"},
          {"CHAT4ALL_AUTH_ARGON2_MEMLIMIT_KIB", "8192"}};
      server = std::make_unique<bench::spawned_server>(spawn, env, out + "/server.log", keep_data);
      url = server->url();
      std::cout << "spawned " << spawn << " at " << url << " (log: " << out << "/server.log)\n";
    }
    common.addr = bench::server_address::parse(url);
  } catch (const std::exception& e) {
    std::cerr << "chat4all-bench: " << e.what() << '\n';
    return 2;
  }
  common.threads = threads;
  common.tty = ::isatty(STDOUT_FILENO) != 0;
  common.progress = progress || common.tty;
  {
    std::random_device rd;
    char tag[16];
    std::snprintf(tag, sizeof tag, "%08x", rd());
    common.tag = tag;
  }
  run.tool_version = CHAT4ALL_VERSION;
  run.command_line = command_line;
  run.url = url;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  run.host = host;
  run.cpus = std::thread::hardware_concurrency();
  run.started_unix_s = bench::unix_now();

  bench::fixture_options pop;
  pop.users = users;
  pop.conversations = conversations;
  pop.group_ratio = group_ratio;
  pop.group_size = group_size;
  pop.tag = common.tag;
  bench::verify_options ver;
  ver.timeout = milliseconds(static_cast<long long>(verify_timeout_s * 1000));
  api.duration = milliseconds(static_cast<long long>(duration_s * 1000));
  api.population = pop;
  api.verify = ver;
  api.baseline = baseline;
  ws.duration = milliseconds(static_cast<long long>(ws_duration_s * 1000));
  ws.per_user = ws_users_per;
  ws.via_rest = ws_via == "rest";
  ws.population = pop;
  ws.verify = ver;
  ws.message_bytes = api.message_bytes;
  api.message_ids = *bench::parse_id_kind(message_ids);
  ws.message_ids = api.message_ids;

  const bool all = all_cmd->parsed();
  int exit_code = 0;
  try {
    up.size = parse_size(upload_size);
    up.chunk = parse_size(chunk_size);
    if (endpoint != "single" && endpoint != "batch" && endpoint != "both")
      throw std::invalid_argument("--endpoint must be single, batch or both");
    if (ws_via != "ws" && ws_via != "rest")
      throw std::invalid_argument("--ws-via must be ws or rest");
    if (ws_listeners == "all")
      ws.listeners = bench::ws_listeners::all;
    else if (ws_listeners == "others")
      ws.listeners = bench::ws_listeners::others;
    else if (ws_listeners == "none")
      ws.listeners = bench::ws_listeners::none;
    else
      throw std::invalid_argument("--ws-listeners must be all, others or none");
    if (ws.batch < 1) throw std::invalid_argument("--ws-batch must be at least 1");
    if (ws.window < 1) throw std::invalid_argument("--ws-window must be at least 1");
    if (ws.rate < 0) throw std::invalid_argument("--ws-rate must be 0 (closed loop) or more");
    if (ws.via_rest && (ws.batch > 1 || ws.rate == 0))
      throw std::invalid_argument(
          "--ws-batch > 1 and --ws-rate 0 need --ws-via ws (the api mode measures REST)");
    auto cool = [&] {
      if (!run.phases.empty() && cooldown_s > 0) {
        std::cout << "cooling down " << cooldown_s << " s\n" << std::flush;
        std::this_thread::sleep_for(milliseconds(static_cast<long long>(cooldown_s * 1000)));
      }
    };
    auto add = [&](bench::phase_result p) {
      print_phase(p);
      run.phases.push_back(std::move(p));
    };
    if (all || api_cmd->parsed()) {
      if (endpoint != "batch") {
        auto o = api;
        o.batch = false;
        if (quick && cli.get_option("--rate")->count() == 0) o.rate = 300;
        add(bench::run_api(common, o, tg));
      }
      if (endpoint != "single") {
        cool();
        auto o = api;
        o.batch = true;
        o.connections = batch_connections;
        if (quick && cli.get_option("--rate")->count() == 0) o.rate = 2000;
        add(bench::run_api(common, o, tg));
      }
    }
    if (all || ws_cmd->parsed()) {
      cool();
      add(bench::run_ws(common, ws, tg));
    }
    if (all || upload_cmd->parsed()) {
      cool();
      add(bench::run_upload(common, up, tg));
    }
  } catch (const std::exception& e) {
    std::cerr << "chat4all-bench: " << e.what() << '\n';
    exit_code = 2;
  }

  if (server) {
    const int rc = server->stop();
    if (rc != 0)
      std::cerr << "chat4all-bench: the spawned server exited with status " << rc << '\n';
  }
  const auto doc = bench::run_json(run);
  const auto json_path = out + "/result.json";
  const auto html_path = out + "/report.html";
  std::ofstream(json_path) << boost::json::serialize(doc) << '\n';
  std::ofstream(html_path) << bench::render_html_report(doc);
  std::cout << "\nresult: " << json_path << "\nreport: " << html_path << '\n';
  if (exit_code) return exit_code;
  if (!run.passed()) {
    std::cout << "chat4all-bench: FAILED (a target was missed)\n";
    return 1;
  }
  std::cout << "chat4all-bench: passed\n";
  return 0;
}
