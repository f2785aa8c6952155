#pragma once
// The producer side of kafka_log (its pimpl): one idempotent librdkafka producer, its poller
// thread (delivery reports), the topic cache and the admin worker. See kafka_log.hpp for
// the contract.
//
// An idempotent librdkafka producer that hits a fatal error (e.g. OUT_OF_ORDER_SEQUENCE_NUMBER
// when a whole cluster restarts under load, librdkafka < 2.3) fails every later record: the
// application must make a new one. The next append() does: the failed instance is replaced
// by a new one (new producer id) and closed in the background. Appends in flight on the
// failed instance fail with `unavailable` (their callers retry or use the outbox; the
// router's idempotent store absorbs a record that was written after all).

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
  // Shared with consumers: true once stop() was called.
  std::shared_ptr<const std::atomic<bool>> stopped_flag() const { return stopped_; }
  // librdkafka instances replaced after a fatal error since the start.
  std::uint64_t restarts() const noexcept { return restarts_.load(); }
  // Tests: raises a fatal error in the current librdkafka instance, as its idempotence
  // machinery does (e.g. OUT_OF_ORDER_SEQUENCE_NUMBER after a whole-cluster restart).
  void raise_fatal_error_for_test(const std::string& reason);

  // Called from librdkafka's delivery-report callback (a poller thread).
  void on_delivery(int err) noexcept;

 private:
  // One librdkafka producer instance: its client, topic handles and poller thread.
  struct instance;

  std::shared_ptr<instance> make_instance();
  std::shared_ptr<instance> current() const;
  // After a fatal error of `failed`: a new instance replaces it (unless it was replaced
  // already or the producer is stopped) and `failed` is closed on the admin thread.
  // Returns the current instance, null when stopped.
  std::shared_ptr<instance> replace(const std::shared_ptr<instance>& failed);

  const kafka_options opts_;
  std::shared_ptr<std::atomic<bool>> stopped_ = std::make_shared<std::atomic<bool>>(false);
  // Held shared while records are handed to librdkafka, exclusively by stop() and replace():
  // after stop() took it once, no record enters a producer queue any more; after replace(),
  // none enters the failed instance.
  mutable std::shared_mutex produce_mu_;
  std::shared_ptr<instance> inst_;  // guarded by produce_mu_
  std::once_flag stop_once_;
  std::atomic<std::uint64_t> restarts_{0};
  // Instances made (make_instance runs under produce_mu_ or in the constructor).
  std::uint64_t generations_ = 0;

  // Blocking Admin API calls awaited by append(), and the closing of failed instances.
  boost::asio::thread_pool admin_{1};

  // Rate limit of the delivery-failure log line (guarded by failure_log_mu_: the poller
  // threads of a failed instance and of its replacement may overlap).
  std::mutex failure_log_mu_;
  std::chrono::steady_clock::time_point last_failure_log_{};
  std::uint64_t failures_unlogged_ = 0;

  obs::gauge* queue_depth_ = nullptr;
  obs::counter* delivery_errors_ = nullptr;
  obs::counter* restarts_metric_ = nullptr;
};

}  // namespace chat4all::log_kafka
