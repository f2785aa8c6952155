#pragma once
// The durable event log port. Adapters: embedded_log (segment files with group commit),
// kafka_log (librdkafka, idempotent producer, acks=all).
//
// append() completes only when every record is durable (fsync'd / acknowledged by the
// in-sync replicas). Concurrent appends are batched by the adapter (group commit): never
// one fsync or one broker round trip per call. Order is preserved per key.
// Errors: unavailable (retryable) when the log cannot be written.

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace chat4all {

struct log_record {
  std::string key;    // partitioning key (conversation id)
  std::string value;  // opaque bytes
  // W3C trace context of the request that produced the record, may be empty. kafka_log
  // carries it as the record header `traceparent`; the embedded log does not keep it (a
  // message's log record also has it inside the value).
  std::string traceparent = {};
};

struct log_entry {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
  std::string traceparent = {};  // the `traceparent` header (kafka_log), else empty
};

// One consumer in a consumer group. Not thread-safe: one coroutine polls it.
class log_consumer {
 public:
  virtual ~log_consumer() = default;
  // Up to `max_entries` entries after the committed position, waiting up to `max_wait` for
  // the first one; an empty vector on timeout. Entries of a partition come in offset order.
  virtual boost::asio::awaitable<result<std::vector<log_entry>>> poll(
      std::size_t max_entries, std::chrono::milliseconds max_wait) = 0;
  // Commits the position after the last of `processed` entries (per partition). Call only
  // after their effects are stored: after a crash, consumption restarts from the last commit.
  virtual boost::asio::awaitable<result<void>> commit(const std::vector<log_entry>& processed) = 0;
};

class event_log {
 public:
  virtual ~event_log() = default;
  virtual boost::asio::awaitable<result<void>> append(std::string topic,
                                                      std::vector<log_record> records) = 0;
  virtual std::unique_ptr<log_consumer> subscribe(std::string topic, std::string group) = 0;
  // Stops background work; pending appends complete with `unavailable`.
  virtual void stop() = 0;
};

}  // namespace chat4all
