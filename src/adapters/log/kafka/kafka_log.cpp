#include "adapters/log/kafka/kafka_log.hpp"

#include <stdexcept>

#include "adapters/log/kafka/consumer.hpp"
#include "adapters/log/kafka/health.hpp"
#include "adapters/log/kafka/producer.hpp"

namespace chat4all {

kafka_log::kafka_log(kafka_options opts, obs::metrics_registry* metrics)
    : producer_(std::make_unique<log_kafka::producer>(std::move(opts), metrics)) {
  if (producer_->options().health_interval_ms < 0) {
    throw std::invalid_argument("kafka_log: health_interval_ms must be >= 0");
  }
  if (producer_->options().health_interval_ms > 0) {
    // A client of its own: the producer's is replaced after a fatal error.
    const auto& o = producer_->options();
    auto props = log_kafka::common_config(o);
    for (const auto& [k, v] : o.producer_config) props[k] = v;  // e.g. TLS settings
    props["client.id"] = o.client_id + "-health";
    health_ = std::make_unique<log_kafka::health_monitor>(
        log_kafka::make_client(log_kafka::make_conf(props, "health"), false), o, metrics);
  }
}

kafka_log::~kafka_log() {
  health_.reset();  // uses the producer's client: stopped first
  producer_.reset();
}

boost::asio::awaitable<result<void>> kafka_log::append(std::string topic,
                                                       std::vector<log_record> records) {
  return producer_->append(std::move(topic), std::move(records));
}

std::unique_ptr<log_consumer> kafka_log::subscribe(std::string topic, std::string group) {
  if (topic.empty() || group.empty()) {
    throw std::invalid_argument("kafka_log::subscribe: empty topic or group name");
  }
  // The topic must exist before the consumer's first metadata request, or the consumer
  // would only notice it at its next periodic metadata refresh.
  if (auto r = producer_->ensure_topic(topic); !r) {
    throw std::runtime_error("kafka_log::subscribe: " + r.err().message);
  }
  return std::make_unique<log_kafka::consumer>(producer_->options(), topic, group,
                                               producer_->stopped_flag(),
                                               health_ ? health_->watch(topic, group) : nullptr);
}

void kafka_log::stop() {
  if (health_) health_->stop();
  producer_->stop();
}

result<void> kafka_log::ensure_topics(const std::vector<std::string>& topics) {
  for (const auto& t : topics) {
    if (auto r = producer_->ensure_topic(t); !r) return r;
  }
  return ok;
}

result<void> kafka_log::delete_topics(const std::vector<std::string>& topics) {
  return producer_->delete_topics(topics);
}

kafka_health kafka_log::health() const {
  if (!health_) {
    kafka_health h;
    h.last_error = "kafka health refresh disabled (health_interval_ms = 0)";
    return h;
  }
  return health_->snapshot();
}

const kafka_options& kafka_log::options() const noexcept {
  return producer_->options();
}

std::uint64_t kafka_log::producer_restarts() const noexcept {
  return producer_->restarts();
}

void kafka_log::raise_fatal_error_for_test(const std::string& reason) {
  producer_->raise_fatal_error_for_test(reason);
}

}  // namespace chat4all
