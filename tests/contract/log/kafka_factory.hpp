#pragma once
// Factory of the event_log contract suite for kafka_log, against a real broker:
//   scripts/services/kafka.sh start
//   CHAT4ALL_TEST_KAFKA_BOOTSTRAP=$(scripts/services/kafka.sh bootstrap)
//   build/tests/test_contract_log
// Without CHAT4ALL_TEST_KAFKA_BOOTSTRAP the Kafka instantiation is skipped. Each test gets
// a random topic (and consumer group) prefix and 3 partitions; its topics are deleted at
// the end. Against the 3-node cluster (kafka.sh start cluster) set
// CHAT4ALL_TEST_KAFKA_REPLICATION=3: topics then get RF=3 and min.insync.replicas=2.

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/log/kafka/kafka_log.hpp"

namespace chat4all {

struct kafka_log_factory {
  kafka_log_factory() {
    if (const char* b = std::getenv("CHAT4ALL_TEST_KAFKA_BOOTSTRAP"); b != nullptr) bootstrap = b;
    if (const char* rf = std::getenv("CHAT4ALL_TEST_KAFKA_REPLICATION"); rf != nullptr) {
      replication = std::max(1, std::atoi(rf));
    }
    std::random_device rd;
    static constexpr char hex[] = "0123456789abcdef";
    prefix = "c4a-test-";
    for (int i = 0; i < 12; ++i) prefix += hex[rd() % 16];
    prefix += '-';
  }
  ~kafka_log_factory() {
    if (bootstrap.empty() || topics.empty()) return;
    kafka_log admin(options());
    (void)admin.delete_topics(topics);  // best effort: a leftover topic only costs disk
  }
  kafka_log_factory(const kafka_log_factory&) = delete;
  kafka_log_factory& operator=(const kafka_log_factory&) = delete;

  std::string skip_reason() const {
    if (!bootstrap.empty()) return {};
    return "CHAT4ALL_TEST_KAFKA_BOOTSTRAP is not set: start a broker with "
           "scripts/services/kafka.sh start and pass its address "
           "(scripts/services/kafka.sh bootstrap)";
  }

  kafka_options options() const {
    kafka_options o;
    o.bootstrap = bootstrap;
    o.client_id = "chat4all-contract-test";
    o.topic_prefix = prefix;
    o.partitions = 3;  // several partitions (order per key is checked) but fast to create
    o.replication_factor = replication;
    o.min_insync_replicas = replication > 1 ? 2 : 1;
    o.linger_ms = 1;
    o.stop_flush_timeout_ms = 2000;
    o.session_timeout_ms = 6000;
    return o;
  }

  std::unique_ptr<event_log> open() { return std::make_unique<kafka_log>(options()); }

  std::string topic(std::string_view base) {
    topics.emplace_back(base);
    return std::string(base);
  }

  std::string bootstrap;
  int replication = 1;
  std::string prefix;
  std::vector<std::string> topics;
};

}  // namespace chat4all
