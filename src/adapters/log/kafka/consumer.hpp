#pragma once
// The log_consumer of kafka_log: one librdkafka KafkaConsumer in a consumer group, driven
// by a thread of its own (every librdkafka call of this consumer runs there, so a waiting
// poll or a synchronous commit never holds an I/O thread). See kafka_log.hpp for the
// contract.

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "adapters/log/kafka/client.hpp"
#include "adapters/log/kafka/kafka_log.hpp"

namespace chat4all::log_kafka {

struct consumer_probe;

class consumer final : public log_consumer {
 public:
  // Subscribes to `topic` (unprefixed) in `group` (unprefixed); the group is joined on the
  // first poll. Throws std::invalid_argument when librdkafka rejects the configuration.
  // `probe` (optional) lets the health monitor read this consumer's assignment and lag.
  consumer(const kafka_options& opts, const std::string& topic, const std::string& group,
           std::shared_ptr<const std::atomic<bool>> log_stopped,
           std::shared_ptr<consumer_probe> probe = nullptr);
  // Closes the consumer: leaves the group without committing anything more.
  ~consumer() override;
  consumer(const consumer&) = delete;
  consumer& operator=(const consumer&) = delete;

  boost::asio::awaitable<result<std::vector<log_entry>>> poll(
      std::size_t max_entries, std::chrono::milliseconds max_wait) override;
  boost::asio::awaitable<result<void>> commit(const std::vector<log_entry>& processed) override;

 private:
  using positions = std::map<std::int32_t, std::int64_t>;  // partition -> next offset
  result<std::vector<log_entry>> poll_now(std::size_t max_entries,
                                          std::chrono::milliseconds max_wait);
  result<void> commit_now(const positions& next);

  std::string topic_;  // full name
  std::shared_ptr<const std::atomic<bool>> log_stopped_;
  client_ptr rk_;
  // Cooperative-sticky and never assigned a partition: librdkafka 2.0.2 aborts when such a
  // consumer is destroyed (its issue #4312, fixed in 2.3.0), so the destructor then leaves
  // the handle to the process exit instead (worker thread only).
  bool cooperative_ = false;
  bool ever_assigned_ = false;
  boost::asio::thread_pool worker_{1};
  std::shared_ptr<consumer_probe> probe_;
};

}  // namespace chat4all::log_kafka
