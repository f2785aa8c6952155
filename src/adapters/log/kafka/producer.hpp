#pragma once
// The producer side of kafka_log (its pimpl): one idempotent librdkafka producer, its poller
// thread (delivery reports), the topic cache and the admin worker. See kafka_log.hpp for
// the contract.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/log/kafka/client.hpp"
#include "adapters/log/kafka/kafka_log.hpp"

struct rd_kafka_topic_s;

namespace chat4all::obs {
class counter;
class gauge;
}  // namespace chat4all::obs

namespace chat4all::log_kafka {

class producer {
 public:
  producer(kafka_options opts, obs::metrics_registry* metrics);
  ~producer();  // stop()
  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;

  boost::asio::awaitable<result<void>> append(std::string topic, std::vector<log_record> records);
  // Blocking: creates or checks a topic (unprefixed name) unless already known.
  result<void> ensure_topic(const std::string& topic);
  result<void> delete_topics(const std::vector<std::string>& topics);
  void stop();

  const kafka_options& options() const noexcept { return opts_; }
  // The librdkafka client (for the health monitor's metadata and offset requests).
  rd_kafka_s* client() const noexcept { return rk_.get(); }
  // Shared with consumers: true once stop() was called.
  std::shared_ptr<const std::atomic<bool>> stopped_flag() const { return stopped_; }

  // Called from librdkafka's delivery-report callback (the poller thread).
  void on_delivery(int err) noexcept;

 private:
  rd_kafka_topic_s* find_topic(const std::string& topic) const;
  void poll_loop();

  const kafka_options opts_;
  client_ptr rk_;
  std::shared_ptr<std::atomic<bool>> stopped_ = std::make_shared<std::atomic<bool>>(false);
  // Held shared while records are handed to librdkafka, exclusively by stop(): after stop()
  // took it once, no record enters the producer queue any more.
  std::shared_mutex produce_mu_;
  std::once_flag stop_once_;

  mutable std::mutex topics_mu_;
  // Unprefixed names known to exist -> librdkafka topic handle (destroyed before rk_).
  std::map<std::string, rd_kafka_topic_s*> topics_;

  boost::asio::thread_pool admin_{1};  // blocking Admin API calls awaited by append()
  std::atomic<bool> poller_run_{true};
  std::thread poller_;

  // Rate limit of the delivery-failure log line (poller thread only).
  std::chrono::steady_clock::time_point last_failure_log_{};
  std::uint64_t failures_unlogged_ = 0;

  obs::gauge* queue_depth_ = nullptr;
  obs::counter* delivery_errors_ = nullptr;
};

}  // namespace chat4all::log_kafka
