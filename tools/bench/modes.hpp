#pragma once
// The load modes of chat4all-bench. Each returns one phase_result (status "passed",
// "failed" or "skipped") with its targets checked; none throws for a missed target.

#include <chrono>
#include <string>

#include "fixture.hpp"
#include "results.hpp"
#include "runner.hpp"

namespace chat4all::bench {

struct targets {
  double msgs_per_s = 166667;  // closed-loop ingestion (SPEC §9); 0 disables
  double api_p99_ms = 200;
  double ws_p99_ms = 100;
  double chunk_max_s = 5;      // every chunk (SPEC: per 10 MB chunk)
  double min_success = 0.99;   // share of requests answered with success
  double min_delivery = 0.99;  // share of expected WS notifications received
};

struct api_options {
  bool batch = false;
  int batch_size = 100;
  double rate = 0;  // messages/s; 0 = closed loop (each connection as fast as it can)
  int connections = 64;
  std::chrono::milliseconds duration{10000};
  int message_bytes = 100;
  id_kind message_ids = id_kind::v7;
  bool baseline = false;  // do-nothing server: no setup, no verification, any 202 counts
  fixture_options population;
  verify_options verify;
};

// Which WebSocket connections listen to their conversations (the others `unsubscribe` from
// every one right after the greeting: an ingest-only integration that pushes and does not
// listen).
enum class ws_listeners { all, others, none };  // others: every connection but the senders

struct ws_options {
  int connections = 1000;
  int per_user = 5;           // connections per user (server cap: 10)
  double connect_rate = 500;  // new connections per second (ramp)
  int senders = 50;
  double rate = 1000;  // messages/s over all senders; 0 = closed loop (see window)
  int batch = 1;       // messages per frame: 1 = action `send`, more = `send_batch`
  int window = 4;      // closed loop: frames a sender keeps unacknowledged at most
  ws_listeners listeners = ws_listeners::all;
  bool via_rest = false;  // senders use POST /v1/messages instead of WS `send`
  std::chrono::milliseconds duration{10000};
  std::chrono::milliseconds drain{5000};  // wait for the last notifications
  int message_bytes = 100;
  id_kind message_ids = id_kind::v7;
  fixture_options population;
  verify_options verify;
};

struct upload_options {
  int uploads = 10;
  std::uint64_t size = 100ull << 20;
  std::uint64_t chunk = 10ull << 20;
  std::chrono::milliseconds complete_timeout{120000};
};

phase_result run_api(const common_options& c, const api_options& o, const targets& t);
phase_result run_ws(const common_options& c, const ws_options& o, const targets& t);
phase_result run_upload(const common_options& c, const upload_options& o, const targets& t);

// Builds one message object (the body of POST /v1/messages and an item of a batch).
std::string message_json(const id128& id, std::int64_t conversation, std::string_view content);
// "bench <ts>:" + filler up to `bytes` (the sender's wall clock in ns, read by WS receivers).
std::string message_content(std::int64_t wall_ns, int bytes);
std::int64_t content_timestamp(std::string_view content);  // -1 when absent

}  // namespace chat4all::bench
