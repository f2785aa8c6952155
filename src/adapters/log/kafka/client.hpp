#pragma once
// Shared librdkafka plumbing of the Kafka adapter: client configuration, log and error
// callbacks routed to obs logging, and topic creation through the Admin API.
// librdkafka types are only forward-declared here (its header stays in the .cpp files).

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"

struct rd_kafka_s;
struct rd_kafka_conf_s;

namespace chat4all {
struct kafka_options;
}

namespace chat4all::log_kafka {

using config_map = std::map<std::string, std::string>;

struct conf_deleter {
  void operator()(rd_kafka_conf_s* c) const noexcept;
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_s, conf_deleter>;

struct client_deleter {
  void operator()(rd_kafka_s* rk) const noexcept;  // rd_kafka_destroy
};
using client_ptr = std::unique_ptr<rd_kafka_s, client_deleter>;

// A configuration with `props` set, librdkafka's log and error callbacks routed to obs
// logging (tagged with `role`, e.g. "producer"). Throws std::invalid_argument naming the
// property librdkafka rejected.
conf_ptr make_conf(const config_map& props, const char* role);

// rd_kafka_new for a producer (`consumer` false) or a KafkaConsumer. Takes the
// configuration. Throws std::invalid_argument with librdkafka's reason.
client_ptr make_client(conf_ptr conf, bool consumer);

// Properties shared by producers and consumers (bootstrap, client id, address family).
config_map common_config(const kafka_options& opts);

struct topic_spec {
  std::string name;  // full (prefixed) name
  int partitions = 1;
  int replication_factor = 1;
  int min_insync_replicas = 1;
};
topic_spec spec_for(const kafka_options& opts, const std::string& unprefixed);

// Creates the topic unless it exists, then waits until the cluster metadata shows a leader
// for each of its partitions (so that a consumer subscribing right after sees it).
// Blocking, bounded by `timeout`. Errors: invalid_input (bad name or settings), unavailable
// (no broker answered, or the topic did not become ready in time).
result<void> ensure_topic(rd_kafka_s* rk, const topic_spec& spec,
                          std::chrono::milliseconds timeout);

// Deletes topics (full names); absent ones are ignored. Blocking, bounded by `timeout`.
// Errors: unavailable.
result<void> delete_topics(rd_kafka_s* rk, const std::vector<std::string>& names,
                           std::chrono::milliseconds timeout);

}  // namespace chat4all::log_kafka
