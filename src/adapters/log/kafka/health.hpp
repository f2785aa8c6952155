#pragma once
// Cluster health of a kafka_log (see kafka_log::health): a thread of its own refreshes,
// every health_interval_ms, the cluster metadata and the lag of the kafka_log's live
// consumers, keeps the result for health() and, when a metrics registry is given, sets
//   chat4all_kafka_brokers_online, chat4all_kafka_under_replicated_partitions,
//   chat4all_kafka_offline_partitions (gauges), chat4all_kafka_health_errors_total (counter),
//   chat4all_kafka_consumer_lag{topic,partition} (gauge; topic without the prefix).
// Every librdkafka call here waits at most request_timeout; none runs on a caller's thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/log/kafka/client.hpp"
#include "adapters/log/kafka/kafka_log.hpp"

struct rd_kafka_s;

namespace chat4all::obs {
class counter;
class gauge;
template <class Series>
class family;
}  // namespace chat4all::obs

namespace chat4all::log_kafka {

// Shared by one consumer and the health monitor. The monitor reads the consumer's
// assignment and committed offsets through `rk` while it holds `mu`; the consumer clears
// `rk` (under `mu`) before it closes, so the handle is never used once closing began.
struct consumer_probe {
  std::mutex mu;
  rd_kafka_s* rk = nullptr;
  std::string topic;  // unprefixed
  std::string group;  // unprefixed
};

class health_monitor {
 public:
  static constexpr std::chrono::milliseconds request_timeout{5000};

  // `rk`: a client of its own for metadata and watermarks (not the producer's, which is
  // replaced after a fatal error). Starts the thread; the first refresh runs at once.
  health_monitor(client_ptr rk, const kafka_options& opts, obs::metrics_registry* metrics);
  ~health_monitor();  // stop()
  health_monitor(const health_monitor&) = delete;
  health_monitor& operator=(const health_monitor&) = delete;

  // A probe for a new consumer of (unprefixed) topic and group; the monitor holds it weakly.
  std::shared_ptr<consumer_probe> watch(const std::string& topic, const std::string& group);
  kafka_health snapshot() const;
  // Idempotent; waits for a refresh in progress (at most a few request timeouts).
  void stop();

 private:
  struct cluster_view;
  void run();
  void refresh();
  result<cluster_view> read_metadata();
  result<std::vector<kafka_partition_lag>> read_lag();
  void publish_lag(const std::vector<kafka_partition_lag>& lag);

  const client_ptr rk_;
  const std::string prefix_;
  const std::chrono::milliseconds interval_;

  std::mutex probes_mu_;
  std::vector<std::weak_ptr<consumer_probe>> probes_;

  mutable std::mutex state_mu_;
  kafka_health state_;
  std::string logged_error_;  // refresh thread only: log lines on changes, not every refresh

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;

  obs::gauge* brokers_online_ = nullptr;
  obs::gauge* under_replicated_ = nullptr;
  obs::gauge* offline_ = nullptr;
  obs::counter* errors_ = nullptr;
  obs::family<obs::gauge>* lag_family_ = nullptr;
  // (unprefixed topic, partition) -> series, every series this monitor ever set (refresh
  // thread only). A series whose partition is no longer assigned here is set to 0: the
  // registry cannot remove series.
  std::map<std::pair<std::string, std::int32_t>, obs::gauge*> lag_series_;
};

}  // namespace chat4all::log_kafka
