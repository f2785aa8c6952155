#include "adapters/log/kafka/health.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <set>

#include "core/thread_name.hpp"
#include "obs/logging.hpp"
#include "obs/metrics.hpp"

namespace chat4all::log_kafka {

namespace {

struct list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using list_ptr = std::unique_ptr<rd_kafka_topic_partition_list_t, list_deleter>;

struct metadata_deleter {
  void operator()(const rd_kafka_metadata_t* md) const noexcept { rd_kafka_metadata_destroy(md); }
};

int timeout_ms() {
  return static_cast<int>(health_monitor::request_timeout.count());
}

// Queries one offset per partition of `partitions` (full topic name, partition) through
// ListOffsets: `which` is RD_KAFKA_OFFSET_END (high watermark) or RD_KAFKA_OFFSET_BEGINNING
// (low watermark), sent as the special timestamps -1 / -2 of the protocol.
result<std::map<std::pair<std::string, std::int32_t>, std::int64_t>> watermarks(
    rd_kafka_t* rk, const std::set<std::pair<std::string, std::int32_t>>& partitions,
    std::int64_t which) {
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> out;
  if (partitions.empty()) return out;
  list_ptr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& [topic, partition] : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = which;
  }
  if (const auto err = rd_kafka_offsets_for_times(rk, list.get(), timeout_ms()); err) {
    return error(errc::unavailable,
                 std::string("kafka watermark offsets: ") + rd_kafka_err2str(err));
  }
  for (int i = 0; i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR || e.offset < 0) {
      return error(errc::unavailable, std::string("kafka watermark offset of ") + e.topic + "/" +
                                          std::to_string(e.partition) + ": " +
                                          rd_kafka_err2str(e.err));
    }
    out[{e.topic, e.partition}] = e.offset;
  }
  return out;
}

}  // namespace

struct health_monitor::cluster_view {
  int brokers = 0;
  int topics = 0;
  int partitions = 0;
  int under_replicated = 0;
  int offline = 0;
};

health_monitor::health_monitor(client_ptr rk, const kafka_options& opts,
                               obs::metrics_registry* metrics)
    : rk_(std::move(rk)), prefix_(opts.topic_prefix), interval_(opts.health_interval_ms) {
  if (metrics != nullptr) {
    brokers_online_ = &metrics->gauge("chat4all_kafka_brokers_online",
                                      "Kafka brokers in the cluster metadata (0 when the last "
                                      "health refresh reached none)");
    under_replicated_ = &metrics->gauge(
        "chat4all_kafka_under_replicated_partitions",
        "Partitions of this deployment's Kafka topics with fewer in-sync replicas than replicas");
    offline_ = &metrics->gauge("chat4all_kafka_offline_partitions",
                               "Partitions of this deployment's Kafka topics without a leader");
    errors_ = &metrics->counter("chat4all_kafka_health_errors_total",
                                "Kafka health refreshes that failed (metadata or consumer lag)");
    lag_family_ = &metrics->gauge_family(
        "chat4all_kafka_consumer_lag",
        "Records after the committed offset of this process's consumer group, per assigned "
        "partition",
        {"topic", "partition"});
  }
  thread_ = std::thread([this] {
    name_this_thread("c4a-kafka-hlth");
    run();
  });
}

health_monitor::~health_monitor() {
  stop();
}

void health_monitor::stop() {
  {
    std::lock_guard lk(stop_mu_);
    if (stopping_) {
      // Already stopping or stopped: the first caller joins.
      return;
    }
    stopping_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

std::shared_ptr<consumer_probe> health_monitor::watch(const std::string& topic,
                                                      const std::string& group) {
  auto p = std::make_shared<consumer_probe>();
  p->topic = topic;
  p->group = group;
  std::lock_guard lk(probes_mu_);
  std::erase_if(probes_, [](const auto& w) { return w.expired(); });
  probes_.push_back(p);
  return p;
}

kafka_health health_monitor::snapshot() const {
  std::lock_guard lk(state_mu_);
  return state_;
}

void health_monitor::run() {
  std::unique_lock lk(stop_mu_);
  while (!stopping_) {
    lk.unlock();
    refresh();
    lk.lock();
    stop_cv_.wait_for(lk, interval_, [this] { return stopping_; });
  }
}

result<health_monitor::cluster_view> health_monitor::read_metadata() {
  const rd_kafka_metadata_t* raw = nullptr;
  // All topics: one request whatever the number of the adapter's topics.
  if (const auto err = rd_kafka_metadata(rk_.get(), 1, nullptr, &raw, timeout_ms()); err) {
    return error(errc::unavailable, std::string("kafka metadata: ") + rd_kafka_err2str(err));
  }
  std::unique_ptr<const rd_kafka_metadata_t, metadata_deleter> md(raw);
  cluster_view v;
  v.brokers = md->broker_cnt;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    const std::string_view name(t.topic);
    if (!name.starts_with(prefix_)) continue;
    if (prefix_.empty() && name.starts_with("__")) continue;  // internal topics
    ++v.topics;
    for (int p = 0; p < t.partition_cnt; ++p) {
      const auto& part = t.partitions[p];
      ++v.partitions;
      if (part.leader < 0) ++v.offline;
      if (part.isr_cnt < part.replica_cnt) ++v.under_replicated;
    }
  }
  return v;
}

result<std::vector<kafka_partition_lag>> health_monitor::read_lag() {
  std::vector<std::shared_ptr<consumer_probe>> probes;
  {
    std::lock_guard lk(probes_mu_);
    std::erase_if(probes_, [](const auto& w) { return w.expired(); });
    for (const auto& w : probes_) {
      if (auto p = w.lock()) probes.push_back(std::move(p));
    }
  }
  struct committed_offset {
    std::string full_topic;
    kafka_partition_lag lag;
    std::int64_t offset = RD_KAFKA_OFFSET_INVALID;
  };
  std::vector<committed_offset> committed;
  for (const auto& p : probes) {
    {
      std::lock_guard stop_lk(stop_mu_);
      if (stopping_) return error(errc::unavailable, "stopping");
    }
    std::lock_guard lk(p->mu);
    if (p->rk == nullptr) continue;  // closing
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (const auto err = rd_kafka_assignment(p->rk, &raw); err) {
      return error(errc::unavailable,
                   std::string("kafka consumer assignment: ") + rd_kafka_err2str(err));
    }
    list_ptr assigned(raw);
    if (assigned->cnt == 0) continue;  // not in the group yet, or no partition for it
    if (const auto err = rd_kafka_committed(p->rk, assigned.get(), timeout_ms()); err) {
      return error(errc::unavailable,
                   std::string("kafka committed offsets: ") + rd_kafka_err2str(err));
    }
    for (int i = 0; i < assigned->cnt; ++i) {
      const auto& e = assigned->elems[i];
      if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return error(errc::unavailable, std::string("kafka committed offset of ") + e.topic + "/" +
                                            std::to_string(e.partition) + ": " +
                                            rd_kafka_err2str(e.err));
      }
      committed_offset c;
      c.full_topic = e.topic;
      c.lag.topic = c.full_topic.substr(std::min(prefix_.size(), c.full_topic.size()));
      c.lag.group = p->group;
      c.lag.partition = e.partition;
      c.offset = e.offset;  // RD_KAFKA_OFFSET_INVALID when the group committed nothing yet
      committed.push_back(std::move(c));
    }
  }

  std::set<std::pair<std::string, std::int32_t>> all, uncommitted;
  for (const auto& c : committed) {
    all.emplace(c.full_topic, c.lag.partition);
    if (c.offset < 0) uncommitted.emplace(c.full_topic, c.lag.partition);
  }
  auto high = watermarks(rk_.get(), all, RD_KAFKA_OFFSET_END);
  if (!high) return std::move(high).err();
  // Nothing committed: the group starts at the earliest retained record (auto.offset.reset).
  auto low = watermarks(rk_.get(), uncommitted, RD_KAFKA_OFFSET_BEGINNING);
  if (!low) return std::move(low).err();

  std::vector<kafka_partition_lag> out;
  out.reserve(committed.size());
  for (auto& c : committed) {
    const std::pair<std::string, std::int32_t> key{c.full_topic, c.lag.partition};
    const std::int64_t from = c.offset >= 0 ? c.offset : low->at(key);
    c.lag.lag = std::max<std::int64_t>(0, high->at(key) - from);
    out.push_back(std::move(c.lag));
  }
  return out;
}

void health_monitor::publish_lag(const std::vector<kafka_partition_lag>& lag) {
  if (lag_family_ == nullptr) return;
  // Two consumers (of different groups) on one partition share its series: the larger lag.
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> worst;
  for (const auto& l : lag) {
    auto [it, fresh] = worst.try_emplace({l.topic, l.partition}, l.lag);
    if (!fresh) it->second = std::max(it->second, l.lag);
  }
  for (auto& [key, series] : lag_series_) {
    if (!worst.contains(key)) series->set(0);  // no longer assigned here
  }
  for (const auto& [key, value] : worst) {
    auto& series = lag_series_[key];
    if (series == nullptr) series = &lag_family_->with({key.first, std::to_string(key.second)});
    series->set(static_cast<double>(value));
  }
}

void health_monitor::refresh() {
  // This client never produces: serving its event queue (error callbacks) keeps it empty.
  rd_kafka_poll(rk_.get(), 0);
  auto view = read_metadata();
  result<std::vector<kafka_partition_lag>> lag;  // an error until read
  if (view) lag = read_lag();
  {
    std::lock_guard lk(stop_mu_);
    if (stopping_) return;  // a refresh cut short by stop() is not a failure
  }
  const error* failure = !view ? &view.err() : !lag ? &lag.err() : nullptr;

  if (view) {
    if (brokers_online_ != nullptr) {
      brokers_online_->set(view->brokers);
      under_replicated_->set(view->under_replicated);
      offline_->set(view->offline);
    }
  } else if (brokers_online_ != nullptr) {
    brokers_online_->set(0);
  }
  if (lag) publish_lag(*lag);
  if (failure != nullptr && errors_ != nullptr) errors_->inc();

  {
    std::lock_guard lk(state_mu_);
    state_.ok = view.has_value();
    if (view) {
      state_.refreshed_at = std::chrono::steady_clock::now();
      state_.brokers_online = view->brokers;
      state_.topics = view->topics;
      state_.partitions = view->partitions;
      state_.under_replicated_partitions = view->under_replicated;
      state_.offline_partitions = view->offline;
    } else {
      state_.brokers_online = 0;
    }
    if (lag) state_.consumer_lag = std::move(*lag);
    if (failure != nullptr) {
      ++state_.failed_refreshes;
      state_.last_error = failure->message;
    }
  }

  // One log line per change of state, not one per refresh.
  if (failure != nullptr && failure->message != logged_error_) {
    log::warn("kafka health refresh failed", {{"error", failure->message}});
    logged_error_ = failure->message;
  } else if (failure == nullptr && !logged_error_.empty()) {
    log::info("kafka health refresh succeeded again");
    logged_error_.clear();
  }
}

}  // namespace chat4all::log_kafka
