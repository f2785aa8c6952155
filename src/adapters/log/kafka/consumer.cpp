#include "adapters/log/kafka/consumer.hpp"

#include <librdkafka/rdkafka.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "adapters/log/kafka/health.hpp"
#include "core/offload.hpp"
#include "core/thread_name.hpp"
#include "obs/logging.hpp"

namespace chat4all::log_kafka {

namespace asio = boost::asio;

namespace {

struct message_deleter {
  void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};
struct list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept {
    rd_kafka_topic_partition_list_destroy(l);
  }
};

config_map consumer_config(const kafka_options& opts, const std::string& group) {
  auto props = common_config(opts);
  props["group.id"] = opts.topic_prefix + group;
  // Incremental rebalances: a joining or leaving member moves only the partitions that
  // change owner; the others keep being consumed.
  props["partition.assignment.strategy"] = "cooperative-sticky";
  // Positions move only through commit(), after the caller stored what it processed.
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  props["auto.offset.reset"] = "earliest";
  props["enable.partition.eof"] = "false";
  props["allow.auto.create.topics"] = "false";
  props["session.timeout.ms"] = std::to_string(opts.session_timeout_ms);
  props["heartbeat.interval.ms"] =
      std::to_string(std::clamp(opts.session_timeout_ms / 3, 100, 3000));
  // Bound of what librdkafka prefetches per consumer.
  props["queued.max.messages.kbytes"] = std::to_string(16 * 1024);
  for (const auto& [k, v] : opts.consumer_config) props[k] = v;
  return props;
}

bool is_fatal(rd_kafka_t* rk, std::string& why) {
  char buf[512];
  if (rd_kafka_fatal_error(rk, buf, sizeof buf) == RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  why = buf;
  return true;
}

std::size_t assigned_partitions(rd_kafka_t* rk) {
  rd_kafka_topic_partition_list_t* a = nullptr;
  if (rd_kafka_assignment(rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || a == nullptr) return 0;
  const auto n = static_cast<std::size_t>(a->cnt);
  rd_kafka_topic_partition_list_destroy(a);
  return n;
}

// Leaves the group, then closes. With cooperative-sticky, librdkafka 2.0.2's
// rd_kafka_consumer_close() revokes the assignment but sends no LeaveGroup: the broker keeps
// the member until session.timeout.ms and the next consumer of the group waits that long
// for its partitions. An explicit unsubscribe does send it once the incremental unassign
// is done, which takes a few polls — longer when a rebalance is in progress (it must finish
// first), so the wait is bounded at 5 s rather than a fixed few polls. Entries polled
// meanwhile are dropped uncommitted, so the next owner gets them again.
void close_consumer(rd_kafka_t* rk) {
  rd_kafka_unsubscribe(rk);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<rd_kafka_message_t, message_deleter> m(rd_kafka_consumer_poll(rk, 10));
    if (assigned_partitions(rk) == 0) break;
  }
  if (const auto err = rd_kafka_consumer_close(rk); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::warn("kafka consumer close", {{"error", rd_kafka_err2name(err)}});
  }
}

}  // namespace

consumer::consumer(const kafka_options& opts, const std::string& topic, const std::string& group,
                   std::shared_ptr<const std::atomic<bool>> log_stopped,
                   std::shared_ptr<consumer_probe> probe)
    : topic_(opts.topic_prefix + topic),
      log_stopped_(std::move(log_stopped)),
      probe_(std::move(probe)) {
  name_pool_threads(worker_, 1, "c4a-kafka-cons");
  const auto props = consumer_config(opts, group);
  cooperative_ = props.at("partition.assignment.strategy") == "cooperative-sticky";
  rk_ = make_client(make_conf(props, "consumer"), true);
  // Logs, errors and rebalances are served by rd_kafka_consumer_poll too.
  rd_kafka_poll_set_consumer(rk_.get());
  std::unique_ptr<rd_kafka_topic_partition_list_t, list_deleter> topics(
      rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), topic_.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto err = rd_kafka_subscribe(rk_.get(), topics.get()); err) {
    throw std::invalid_argument("kafka subscribe " + topic_ + ": " + rd_kafka_err2str(err));
  }
  if (probe_) {
    std::lock_guard lk(probe_->mu);
    probe_->rk = rk_.get();
  }
}

consumer::~consumer() {
  // The health monitor stops using the handle first (waits for its query in progress).
  if (probe_) {
    std::lock_guard lk(probe_->mu);
    probe_->rk = nullptr;
  }
  // On the consumer's thread, after any job still queued there.
  rd_kafka_t* rk = rk_.get();
  bool leak = false;
  asio::post(worker_, [this, rk, &leak] {
    if (cooperative_ && !ever_assigned_ && assigned_partitions(rk) == 0) {
      leak = true;  // see ever_assigned_: destroying it would abort the process
      return;
    }
    close_consumer(rk);
  });
  worker_.join();
  if (leak) {
    log::warn("kafka consumer never got a partition: left open until the process exits",
              {{"topic", topic_}});
    (void)rk_.release();
    return;
  }
  rk_.reset();
}

asio::awaitable<result<std::vector<log_entry>>> consumer::poll(std::size_t max_entries,
                                                               std::chrono::milliseconds max_wait) {
  auto work = [this, max_entries, max_wait] { return poll_now(max_entries, max_wait); };
  co_return co_await offload(worker_.get_executor(), std::move(work));
}

asio::awaitable<result<void>> consumer::commit(const std::vector<log_entry>& processed) {
  // Read `processed` before the first suspension.
  positions next;
  for (const auto& e : processed) {
    auto& n = next[e.partition];
    n = std::max(n, e.offset + 1);
  }
  if (next.empty()) co_return ok;
  auto work = [this, next = std::move(next)] { return commit_now(next); };
  co_return co_await offload(worker_.get_executor(), std::move(work));
}

result<std::vector<log_entry>> consumer::poll_now(std::size_t max_entries,
                                                  std::chrono::milliseconds max_wait) {
  if (log_stopped_->load()) return error(errc::unavailable, "kafka_log is stopped");
  std::vector<log_entry> out;
  if (max_entries == 0) return out;
  out.reserve(std::min<std::size_t>(max_entries, 1024));
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  if (cooperative_ && !ever_assigned_) ever_assigned_ = assigned_partitions(rk_.get()) > 0;
  while (out.size() < max_entries) {
    int timeout_ms = 0;  // once something arrived, take only what is already there
    if (out.empty()) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      timeout_ms = static_cast<int>(left.count());
    }
    std::unique_ptr<rd_kafka_message_t, message_deleter> m(
        rd_kafka_consumer_poll(rk_.get(), timeout_ms));
    if (!m) {
      if (!out.empty()) break;
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (std::string why; is_fatal(rk_.get(), why)) {
        return error(errc::unavailable, "kafka consumer fatal error: " + why);
      }
      // Transient (broker down, topic metadata not yet propagated): librdkafka retries.
      log::warn("kafka consumer error", {{"topic", topic_},
                                         {"error", rd_kafka_err2name(m->err)},
                                         {"reason", rd_kafka_message_errstr(m.get())}});
      continue;
    }
    log_entry e;
    e.partition = m->partition;
    e.offset = m->offset;
    if (m->key != nullptr) e.key.assign(static_cast<const char*>(m->key), m->key_len);
    if (m->payload != nullptr) e.value.assign(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(m.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const void* v = nullptr;
      std::size_t size = 0;
      if (rd_kafka_header_get_last(headers, "traceparent", &v, &size) ==
              RD_KAFKA_RESP_ERR_NO_ERROR &&
          v != nullptr)
        e.traceparent.assign(static_cast<const char*>(v), size);
    }
    out.push_back(std::move(e));
  }
  return out;
}

result<void> consumer::commit_now(const positions& next) {
  if (log_stopped_->load()) return error(errc::unavailable, "kafka_log is stopped");
  std::unique_ptr<rd_kafka_topic_partition_list_t, list_deleter> list(
      rd_kafka_topic_partition_list_new(static_cast<int>(next.size())));
  for (const auto& [partition, offset] : next) {
    rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), partition)->offset = offset;
  }
  const auto err = rd_kafka_commit(rk_.get(), list.get(), 0);  // synchronous
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return error(errc::unavailable, std::string("kafka commit: ") + rd_kafka_err2str(err));
  }
  // The request succeeds as a whole while single partitions may still fail.
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return error(errc::unavailable, "kafka commit partition " +
                                          std::to_string(list->elems[i].partition) + ": " +
                                          rd_kafka_err2str(list->elems[i].err));
    }
  }
  return ok;
}

}  // namespace chat4all::log_kafka
