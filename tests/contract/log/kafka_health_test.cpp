// Cluster health of kafka_log: kafka_log::health() and its metrics (brokers online,
// under-replicated and offline partitions, consumer lag per partition), against a real
// broker like the contract suite (kafka_factory.hpp: skipped without
// CHAT4ALL_TEST_KAFKA_BOOTSTRAP; a random topic/group prefix, 3 partitions, topics deleted
// at the end). Refreshes every 200 ms here.
//
// Against the 3-node cluster, one more test stops and restarts a node itself, so it runs
// only when asked to (nothing else may be using the cluster meanwhile):
//   scripts/services/kafka.sh start cluster
//   CHAT4ALL_TEST_KAFKA_NODE_FAILURES=1 CHAT4ALL_TEST_KAFKA_REPLICATION=3 \
//   CHAT4ALL_TEST_KAFKA_BOOTSTRAP=$(scripts/services/kafka.sh bootstrap cluster) \
//     build/tests/test_contract_log --gtest_filter='kafka_health*'

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/log/kafka/kafka_log.hpp"
#include "contract/log/kafka_factory.hpp"
#include "obs/metrics.hpp"
#include "support/run_sync.hpp"

namespace chat4all {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

template <class T>
T run(asio::awaitable<T> aw) {
  return testing::run_sync(std::move(aw));
}

// Sum of the values of the rendered series whose line starts with `prefix`
// (e.g. `chat4all_kafka_consumer_lag{` or `chat4all_kafka_brokers_online `), and their count.
struct series_sum {
  double sum = 0;
  int count = 0;
};
series_sum sum_series(const obs::metrics_registry& metrics, const std::string& prefix) {
  series_sum s;
  std::istringstream in(metrics.render());
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(prefix)) continue;
    s.sum += std::stod(line.substr(line.rfind(' ') + 1));
    ++s.count;
  }
  return s;
}

std::int64_t total_lag(const kafka_health& h) {
  std::int64_t sum = 0;
  for (const auto& l : h.consumer_lag) sum += l.lag;
  return sum;
}

// Waits (bounded) until `pred(log.health())`; returns the last health seen.
kafka_health wait_health(const kafka_log& log, const std::function<bool(const kafka_health&)>& pred,
                         std::chrono::milliseconds total = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + total;
  auto h = log.health();
  while (!pred(h) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    h = log.health();
  }
  return h;
}

std::vector<log_record> records(int n) {
  std::vector<log_record> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({"conv-" + std::to_string(i % 17), "value-" + std::to_string(i)});
  }
  return out;
}

class kafka_health_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = factory_.skip_reason(); !why.empty()) GTEST_SKIP() << why;
  }
  kafka_options options() const {
    auto o = factory_.options();
    o.health_interval_ms = 200;
    return o;
  }
  kafka_log_factory factory_;  // destroyed last: deletes the test's topics
};

TEST_F(kafka_health_test, reports_brokers_and_partitions_of_its_topics) {
  obs::metrics_registry metrics;
  kafka_log log(options(), &metrics);
  const auto topic = factory_.topic("messages");
  ASSERT_TRUE(log.ensure_topics({topic}));

  const auto h = wait_health(log, [](const kafka_health& h) { return h.ok && h.topics == 1; });
  ASSERT_TRUE(h.ok) << h.last_error;
  EXPECT_EQ(h.topics, 1);  // only the topics with this log's prefix
  EXPECT_EQ(h.partitions, 3);
  EXPECT_EQ(h.brokers_online, factory_.replication == 1 ? 1 : factory_.replication);
  EXPECT_EQ(h.under_replicated_partitions, 0);
  EXPECT_EQ(h.offline_partitions, 0);
  EXPECT_TRUE(h.consumer_lag.empty());  // no consumer yet
  EXPECT_GT(h.refreshed_at.time_since_epoch().count(), 0);

  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_brokers_online ").sum, h.brokers_online);
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_under_replicated_partitions ").count, 1);
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_under_replicated_partitions ").sum, 0);
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_offline_partitions ").sum, 0);
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_health_errors_total ").sum, 0);
  EXPECT_EQ(h.failed_refreshes, 0u) << h.last_error;
  log.stop();
}

TEST_F(kafka_health_test, consumer_lag_follows_polls_and_commits) {
  obs::metrics_registry metrics;
  kafka_log log(options(), &metrics);
  const auto topic = factory_.topic("messages");
  auto appended = run(log.append(topic, records(100)));
  ASSERT_TRUE(appended) << appended.err().message;

  // Polled, not committed: the group's position has not moved, all 100 records lag.
  auto consumer = log.subscribe(topic, "router");
  std::vector<log_entry> got;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (got.size() < 100 && std::chrono::steady_clock::now() < deadline) {
    auto r = run(consumer->poll(100 - got.size(), 200ms));
    ASSERT_TRUE(r) << r.err().message;
    for (auto& e : *r) got.push_back(std::move(e));
  }
  ASSERT_EQ(got.size(), 100u);

  auto h = wait_health(
      log, [](const kafka_health& h) { return h.consumer_lag.size() == 3 && total_lag(h) == 100; });
  EXPECT_EQ(total_lag(h), 100) << h.last_error;
  ASSERT_EQ(h.consumer_lag.size(), 3u);  // one entry per assigned partition
  for (const auto& l : h.consumer_lag) {
    EXPECT_EQ(l.topic, "messages");  // without the prefix
    EXPECT_EQ(l.group, "router");
  }
  const auto lag_series = sum_series(metrics, "chat4all_kafka_consumer_lag{");
  EXPECT_EQ(lag_series.count, 3);
  EXPECT_EQ(lag_series.sum, 100);
  EXPECT_NE(
      metrics.render().find("chat4all_kafka_consumer_lag{topic=\"messages\",partition=\"0\"}"),
      std::string::npos);

  // Committed: nothing lags any more.
  auto committed = run(consumer->commit(got));
  ASSERT_TRUE(committed) << committed.err().message;
  h = wait_health(
      log, [](const kafka_health& h) { return h.consumer_lag.size() == 3 && total_lag(h) == 0; });
  EXPECT_EQ(h.consumer_lag.size(), 3u);
  EXPECT_EQ(total_lag(h), 0) << h.last_error;
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_consumer_lag{").sum, 0);

  // More records, then the consumer goes: no entries for it any more, its series read 0.
  appended = run(log.append(topic, records(10)));
  ASSERT_TRUE(appended) << appended.err().message;
  h = wait_health(log, [](const kafka_health& h) { return total_lag(h) == 10; });
  EXPECT_EQ(total_lag(h), 10);
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_consumer_lag{").sum, 10);
  consumer.reset();
  h = wait_health(log, [](const kafka_health& h) { return h.consumer_lag.empty(); });
  EXPECT_TRUE(h.consumer_lag.empty());
  // The refresh that saw the consumer gone has published its metrics too (same refresh).
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_consumer_lag{").sum, 0);
  EXPECT_EQ(h.failed_refreshes, 0u) << h.last_error;
  log.stop();
}

TEST_F(kafka_health_test, disabled_with_a_zero_interval) {
  obs::metrics_registry metrics;
  auto o = options();
  o.health_interval_ms = 0;
  kafka_log log(o, &metrics);
  std::this_thread::sleep_for(300ms);
  const auto h = log.health();
  EXPECT_FALSE(h.ok);
  EXPECT_EQ(h.brokers_online, 0);
  EXPECT_EQ(metrics.render().find("chat4all_kafka_brokers_online"), std::string::npos);
}

// scripts/services/kafka.sh <args> (found from this file's path); its exit code.
int kafka_script(const std::string& args) {
  const auto script =
      std::filesystem::path(__FILE__).parent_path() / "../../../scripts/services" / "kafka.sh";
  return std::system(("'" + script.lexically_normal().string() + "' " + args).c_str());
}

TEST_F(kafka_health_test, a_stopped_cluster_node_makes_partitions_under_replicated) {
  const char* allowed = std::getenv("CHAT4ALL_TEST_KAFKA_NODE_FAILURES");
  if (allowed == nullptr || std::string(allowed) != "1" || factory_.replication != 3) {
    GTEST_SKIP() << "stops a node of the 3-node cluster: set CHAT4ALL_TEST_KAFKA_NODE_FAILURES=1 "
                    "and CHAT4ALL_TEST_KAFKA_REPLICATION=3 with the cluster's bootstrap";
  }
  obs::metrics_registry metrics;
  kafka_log log(options(), &metrics);
  const auto topic = factory_.topic("messages");
  ASSERT_TRUE(log.ensure_topics({topic}));
  auto h = wait_health(log, [](const kafka_health& h) {
    return h.ok && h.topics == 1 && h.brokers_online == 3 && h.under_replicated_partitions == 0;
  });
  ASSERT_EQ(h.brokers_online, 3);
  ASSERT_EQ(h.under_replicated_partitions, 0);

  // Every partition has a replica on each node (RF=3 on 3 nodes): all 3 lose one.
  ASSERT_EQ(kafka_script("stop-node 3"), 0);
  struct restart {  // also when an assertion below fails
    bool done = false;
    void now() {
      if (!std::exchange(done, true)) EXPECT_EQ(kafka_script("start-node 3"), 0);
    }
    ~restart() { now(); }
  } restart_node_3;
  h = wait_health(log, [](const kafka_health& h) {
    return h.ok && h.brokers_online == 2 && h.under_replicated_partitions == 3;
  });
  EXPECT_EQ(h.brokers_online, 2);
  EXPECT_EQ(h.under_replicated_partitions, 3);
  EXPECT_EQ(h.offline_partitions, 0);  // the two others still lead
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_brokers_online ").sum, 2);
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_under_replicated_partitions ").sum, 3);
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_offline_partitions ").sum, 0);

  // Back: the node catches up and rejoins the in-sync replicas.
  restart_node_3.now();
  h = wait_health(
      log,
      [](const kafka_health& h) {
        return h.ok && h.brokers_online == 3 && h.under_replicated_partitions == 0;
      },
      60s);
  EXPECT_EQ(h.brokers_online, 3);
  EXPECT_EQ(h.under_replicated_partitions, 0);
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_under_replicated_partitions ").sum, 0);
}

// An idempotent producer's fatal error (what librdkafka 2.0 raises as OUT_OF_ORDER_SEQUENCE_NUMBER
// when a whole cluster restarts under load) would fail every later append: the producer is
// replaced and appends go on, in order, counted by a metric.
TEST_F(kafka_health_test, a_fatal_producer_error_gets_a_new_producer_and_appends_go_on) {
  obs::metrics_registry metrics;
  kafka_log log(options(), &metrics);
  const auto topic = factory_.topic("fatal");
  ASSERT_TRUE(log.ensure_topics({topic}));
  auto batch = [](int from, int n) {
    std::vector<log_record> rs;
    for (int i = from; i < from + n; ++i) rs.push_back({"c1", "v" + std::to_string(i)});
    return rs;
  };
  ASSERT_TRUE(run(log.append(topic, batch(0, 10))));
  EXPECT_EQ(log.producer_restarts(), 0u);

  log.raise_fatal_error_for_test("injected by the test");
  auto r = run(log.append(topic, batch(10, 10)));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(log.producer_restarts(), 1u);
  EXPECT_EQ(sum_series(metrics, "chat4all_kafka_producer_restarts_total ").sum, 1);
  ASSERT_TRUE(run(log.append(topic, batch(20, 10))));  // the new producer keeps going
  EXPECT_EQ(log.producer_restarts(), 1u);

  auto consumer = log.subscribe(topic, "g");
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (got.size() < 30 && std::chrono::steady_clock::now() < deadline) {
    auto p = run(consumer->poll(100, 1s));
    ASSERT_TRUE(p) << p.err().message;
    for (auto& e : *p) got.push_back(e.value);
  }
  std::vector<std::string> want;
  for (int i = 0; i < 30; ++i) want.push_back("v" + std::to_string(i));
  EXPECT_EQ(got, want);  // every record once, in order (one key, one partition)
  log.stop();
}

// Needs no broker: nothing listens on the bootstrap address.
// W3C trace context travels as a record header (SPEC §7), next to the value.
TEST_F(kafka_health_test, traceparent_travels_as_a_record_header) {
  kafka_log log(options());
  const auto topic = factory_.topic("traced");
  const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  std::vector<log_record> rs{{"c1", "with", tp}, {"c1", "without"}};
  ASSERT_TRUE(run(log.append(topic, std::move(rs))));
  auto consumer = log.subscribe(topic, "g");
  std::vector<log_entry> got;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    auto p = run(consumer->poll(10, 1s));
    ASSERT_TRUE(p) << p.err().message;
    for (auto& e : *p) got.push_back(std::move(e));
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].value, "with");
  EXPECT_EQ(got[0].traceparent, tp);
  EXPECT_EQ(got[1].value, "without");
  EXPECT_EQ(got[1].traceparent, "");
}

TEST(kafka_health_unreachable, counts_failed_refreshes_and_reports_no_broker) {
  obs::metrics_registry metrics;
  kafka_options o;
  o.bootstrap = "127.0.0.1:1";
  o.topic_prefix = "c4a-test-unreachable-";
  o.health_interval_ms = 200;
  const auto started = std::chrono::steady_clock::now();
  {
    kafka_log log(o, &metrics);
    // The metadata request gives up after its 5 s timeout.
    const auto h = wait_health(
        log, [](const kafka_health& h) { return h.failed_refreshes > 0; }, 15s);
    EXPECT_FALSE(h.ok);
    EXPECT_GE(h.failed_refreshes, 1u);
    EXPECT_FALSE(h.last_error.empty());
    EXPECT_EQ(h.brokers_online, 0);
    EXPECT_GE(sum_series(metrics, "chat4all_kafka_health_errors_total ").sum, 1);
    EXPECT_EQ(sum_series(metrics, "chat4all_kafka_brokers_online ").sum, 0);
  }
  // Stopping waits at most for the refresh in progress.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 14s);
}

}  // namespace
}  // namespace chat4all
