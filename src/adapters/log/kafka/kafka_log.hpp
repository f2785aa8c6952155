#pragma once
// kafka_log: the event_log of cluster mode, on Apache Kafka through librdkafka.
//
// Producer: one idempotent producer per kafka_log (enable.idempotence=true, hence acks=all
// and at most 5 in-flight requests per broker with ordering kept across retries), records
// batched by librdkafka (linger_ms, compression). append() hands every record to the
// producer (key = log_record::key, partitioned with murmur2 like the Java client, so one
// conversation stays in one partition and in order) and completes only when the delivery
// report of every record says it was written to all in-sync replicas. Delivery reports are
// served by a dedicated poller thread, which resumes each awaiting coroutine on its own
// executor; no librdkafka call that waits runs on the caller's thread.
//
// Topics: `topic_prefix + name`, created on first use (append, subscribe) or by
// ensure_topics() through the Admin API with the partition count of partitions_by_topic
// (else `partitions`), replication_factor and min.insync.replicas; a topic that exists is
// used as it is (a different partition count is logged as a warning).
//
// Consumers (subscribe): one KafkaConsumer each, group.id = topic_prefix + group,
// cooperative-sticky assignment, auto.offset.reset=earliest, no auto-commit: only commit()
// moves the group's position, so whatever a consumer polled but did not commit is
// redelivered to the next owner of its partition. Every librdkafka call of a consumer
// (poll, commit, close) runs on that consumer's own thread.
//
// Health (health(), and metrics when a registry is given): a thread of the adapter's own
// refreshes, every health_interval_ms, the cluster metadata (brokers online, partitions of
// the adapter's topics that are under-replicated or have no leader) and the lag of every
// live consumer of this kafka_log (high watermark - committed offset, per assigned
// partition). Every request it makes is bounded (5 s); it never runs on the caller's thread.
//
// Thread-safety: append, ensure_topics, subscribe, health and stop may be called from any
// thread.
// A log_consumer is used by one coroutine at a time.
// Lifetime: the kafka_log must outlive its appends (stop() completes them); consumers are
// independent clients and may outlive it (their polls then report `unavailable`).
// Destroying a consumer closes it (leaves the group; blocks for up to a few seconds).
// Errors: append -> invalid_input (empty topic), too_large (a record over the producer's
// message.max.bytes, 1 MB by default), unavailable (stopped; a delivery failed or
// timed out after delivery_timeout_ms; the producer hit a fatal error; the topic could not
// be created; a producer that hit a fatal error is replaced by the next append, so only
// the appends in flight at that moment fail). poll -> unavailable (the log was stopped, or a
// consumer error such as a fatal error or an unknown topic); commit -> unavailable (the broker
// refused it, e.g. the partitions were reassigned meanwhile: their entries will be delivered
// again). The constructor throws std::invalid_argument when librdkafka rejects a setting;
// subscribe() throws std::runtime_error when its topic cannot be created or the consumer
// cannot be made; ensure_topics() returns the error.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "domain/ports/event_log.hpp"

namespace chat4all {
namespace obs {
class metrics_registry;
}

struct kafka_options {
  std::string bootstrap;  // "host:port,host:port"
  std::string client_id = "chat4all";
  std::string topic_prefix;  // prepended to every topic and consumer group name
  int partitions = 100;      // for topics absent from partitions_by_topic
  int replication_factor = 1;
  int min_insync_replicas = 1;
  int linger_ms = 5;
  std::string compression = "lz4";
  std::map<std::string, int> partitions_by_topic;  // unprefixed topic name -> partitions

  // A record not acknowledged within this time fails its append with `unavailable`.
  int delivery_timeout_ms = 30000;
  // How long stop() lets queued records be delivered before failing them.
  int stop_flush_timeout_ms = 5000;
  // Consumer group liveness: a consumer that stops heartbeating for this long loses its
  // partitions to the other members.
  int session_timeout_ms = 10000;
  // Period of the cluster health refresh (metadata and consumer lag; see kafka_log::health).
  // 0 disables it: health() then stays unknown and no health metric is updated.
  int health_interval_ms = 10000;
  // Extra librdkafka properties (override the ones above), e.g. for tests or TLS.
  std::map<std::string, std::string> producer_config;
  std::map<std::string, std::string> consumer_config;
};

// Lag of one partition assigned to one consumer of the kafka_log.
struct kafka_partition_lag {
  std::string topic;  // unprefixed
  std::string group;  // unprefixed
  std::int32_t partition = 0;
  // Records after the group's committed offset: high watermark - committed offset (with
  // nothing committed yet, high - low watermark: the group starts from the earliest).
  std::int64_t lag = 0;
};

// The last health refresh of a kafka_log (for readiness checks and the metrics).
struct kafka_health {
  // True when the last refresh got the cluster metadata. False before the first refresh,
  // when refreshes are disabled (health_interval_ms = 0) or when the last one failed; the
  // partition and lag figures are then those of the last successful refresh.
  bool ok = false;
  std::chrono::steady_clock::time_point refreshed_at{};  // last successful refresh
  std::string last_error;              // of the last failed refresh (metadata or consumer lag)
  std::uint64_t failed_refreshes = 0;  // since the kafka_log started

  int brokers_online = 0;               // brokers in the cluster metadata (0 if unreachable)
  int topics = 0;                       // the adapter's topics (those with topic_prefix)
  int partitions = 0;                   // their partitions
  int under_replicated_partitions = 0;  // of those: in-sync replicas < replicas
  int offline_partitions = 0;           // of those: no leader

  // One entry per partition assigned to a live consumer of this kafka_log.
  std::vector<kafka_partition_lag> consumer_lag;
};

namespace log_kafka {
class producer;
class health_monitor;
}  // namespace log_kafka

class kafka_log final : public event_log {
 public:
  // Creates the producer and starts its poller thread; connects lazily (no broker needs
  // to be up yet).
  explicit kafka_log(kafka_options opts, obs::metrics_registry* metrics = nullptr);
  ~kafka_log() override;  // stop()
  kafka_log(const kafka_log&) = delete;
  kafka_log& operator=(const kafka_log&) = delete;

  boost::asio::awaitable<result<void>> append(std::string topic,
                                              std::vector<log_record> records) override;
  // Creates the topic if needed (blocking Admin API call on the calling thread, bounded by
  // a few seconds) and returns a consumer that joins the group on its first poll.
  std::unique_ptr<log_consumer> subscribe(std::string topic, std::string group) override;
  // Idempotent. Stops the health refresh, waits up to stop_flush_timeout_ms for queued
  // records, then fails the rest (their appends complete with `unavailable`) and joins the
  // poller thread.
  void stop() override;

  // Creates or checks the (unprefixed) topics now, e.g. at start-up. Blocking.
  result<void> ensure_topics(const std::vector<std::string>& topics);
  // Deletes the (unprefixed) topics and their records, e.g. a test's own topics. Blocking.
  // Not while appends to those topics are in progress.
  result<void> delete_topics(const std::vector<std::string>& topics);

  // The numbers of the last health refresh (cheap: a copy; never waits on Kafka).
  kafka_health health() const;

  const kafka_options& options() const noexcept;

  // Producers replaced after a fatal error since the start (see producer.hpp).
  std::uint64_t producer_restarts() const noexcept;
  // Tests: raises a fatal error in the current producer as librdkafka's idempotence
  // machinery does; the next append() replaces the producer.
  void raise_fatal_error_for_test(const std::string& reason);

 private:
  std::unique_ptr<log_kafka::producer> producer_;
  std::unique_ptr<log_kafka::health_monitor> health_;  // null when health_interval_ms = 0
};

}  // namespace chat4all
