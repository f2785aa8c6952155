#include "adapters/log/kafka/client.hpp"

#include <librdkafka/rdkafka.h>

#include <stdexcept>
#include <thread>

#include "adapters/log/kafka/kafka_log.hpp"
#include "obs/logging.hpp"

namespace chat4all::log_kafka {

namespace {

// librdkafka syslog levels: 0 emerg .. 7 debug.
void on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  const char* client = rd_kafka_name(rk);
  if (level <= 2) {
    log::error("librdkafka", {{"client", client}, {"facility", fac}, {"detail", buf}});
  } else if (level <= 4) {  // 3 (err) included: connection failures, expected during restarts
    log::warn("librdkafka", {{"client", client}, {"facility", fac}, {"detail", buf}});
  } else if (level <= 6) {
    log::info("librdkafka", {{"client", client}, {"facility", fac}, {"detail", buf}});
  } else {
    log::debug("librdkafka", {{"client", client}, {"facility", fac}, {"detail", buf}});
  }
}

// Global client errors. Most are transient and librdkafka recovers by itself; connection
// failures are already logged by on_log (facility FAIL), so only the cluster-wide state and
// fatal errors are logged here. The calls that depend on the cluster report their own
// failures (append, poll, commit).
void on_error(rd_kafka_t* rk, int err, const char* reason, void* /*opaque*/) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    const auto fatal = rd_kafka_fatal_error(rk, why, sizeof why);
    log::error(
        "kafka fatal error",
        {{"client", rd_kafka_name(rk)}, {"error", rd_kafka_err2name(fatal)}, {"reason", why}});
    return;
  }
  if (code == RD_KAFKA_RESP_ERR__TRANSPORT) return;
  log::warn(
      "kafka client error",
      {{"client", rd_kafka_name(rk)}, {"error", rd_kafka_err2name(code)}, {"reason", reason}});
}

struct queue_deleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};
struct event_deleter {
  void operator()(rd_kafka_event_t* e) const noexcept { rd_kafka_event_destroy(e); }
};
struct options_deleter {
  void operator()(rd_kafka_AdminOptions_t* o) const noexcept { rd_kafka_AdminOptions_destroy(o); }
};
struct new_topic_deleter {
  void operator()(rd_kafka_NewTopic_t* t) const noexcept { rd_kafka_NewTopic_destroy(t); }
};
struct topic_deleter {
  void operator()(rd_kafka_topic_t* t) const noexcept { rd_kafka_topic_destroy(t); }
};

result<void> create_topic(rd_kafka_t* rk, const topic_spec& spec,
                          std::chrono::milliseconds timeout) {
  char err[512];
  std::unique_ptr<rd_kafka_NewTopic_t, new_topic_deleter> nt(rd_kafka_NewTopic_new(
      spec.name.c_str(), spec.partitions, spec.replication_factor, err, sizeof err));
  if (!nt) return error(errc::invalid_input, "kafka topic " + spec.name + ": " + err);
  const std::string isr = std::to_string(spec.min_insync_replicas);
  if (rd_kafka_NewTopic_set_config(nt.get(), "min.insync.replicas", isr.c_str()) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return error(errc::invalid_input, "kafka topic " + spec.name + ": bad min.insync.replicas");
  }
  std::unique_ptr<rd_kafka_AdminOptions_t, options_deleter> options(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS));
  const int ms = static_cast<int>(timeout.count());
  rd_kafka_AdminOptions_set_request_timeout(options.get(), ms, err, sizeof err);
  // The broker answers once the controller has committed the topic (or after this time).
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), ms, err, sizeof err);

  std::unique_ptr<rd_kafka_queue_t, queue_deleter> queue(rd_kafka_queue_new(rk));
  rd_kafka_NewTopic_t* topics[] = {nt.get()};
  rd_kafka_CreateTopics(rk, topics, 1, options.get(), queue.get());
  // The request times out on its own; the extra second only covers the result's way back.
  std::unique_ptr<rd_kafka_event_t, event_deleter> ev(rd_kafka_queue_poll(queue.get(), ms + 1000));
  if (!ev) return error(errc::unavailable, "kafka: no answer to CreateTopics " + spec.name);
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return error(errc::unavailable,
                 std::string("kafka CreateTopics: ") + rd_kafka_event_error_string(ev.get()));
  }
  const auto* res = rd_kafka_event_CreateTopics_result(ev.get());
  size_t n = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
  for (size_t i = 0; i < n; ++i) {
    const auto code = rd_kafka_topic_result_error(results[i]);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      continue;
    }
    const char* why = rd_kafka_topic_result_error_string(results[i]);
    const std::string msg =
        "kafka CreateTopics " + spec.name + ": " + rd_kafka_err2name(code) + " " + (why ? why : "");
    const bool bad_request =
        code == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION || code == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS ||
        code == RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR ||
        code == RD_KAFKA_RESP_ERR_INVALID_CONFIG || code == RD_KAFKA_RESP_ERR_POLICY_VIOLATION;
    return error(bad_request ? errc::invalid_input : errc::unavailable, msg);
  }
  return ok;
}

// True when the metadata lists the topic with a leader for every partition.
result<bool> topic_ready(rd_kafka_t* rk, rd_kafka_topic_t* rkt, const topic_spec& spec,
                         int timeout_ms) {
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  bool ready = false;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (spec.name != t.topic || t.err != RD_KAFKA_RESP_ERR_NO_ERROR || t.partition_cnt == 0) {
      continue;
    }
    ready = true;
    for (int p = 0; p < t.partition_cnt; ++p) {
      if (t.partitions[p].leader < 0) ready = false;
    }
    if (ready && t.partition_cnt != spec.partitions) {
      log::warn(
          "kafka topic exists with another partition count",
          {{"topic", spec.name}, {"partitions", t.partition_cnt}, {"configured", spec.partitions}});
    }
  }
  rd_kafka_metadata_destroy(md);
  return ready;
}

}  // namespace

void conf_deleter::operator()(rd_kafka_conf_s* c) const noexcept {
  rd_kafka_conf_destroy(c);
}
void client_deleter::operator()(rd_kafka_s* rk) const noexcept {
  rd_kafka_destroy(rk);
}

conf_ptr make_conf(const config_map& props, const char* role) {
  conf_ptr conf(rd_kafka_conf_new());
  char err[512];
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      throw std::invalid_argument(std::string("kafka ") + role + " setting " + k + "=" + v + ": " +
                                  err);
    }
  }
  rd_kafka_conf_set_log_cb(conf.get(), on_log);
  rd_kafka_conf_set_error_cb(conf.get(), on_error);
  return conf;
}

client_ptr make_client(conf_ptr conf, bool consumer) {
  char err[512];
  rd_kafka_t* rk =
      rd_kafka_new(consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (rk == nullptr) throw std::invalid_argument(std::string("kafka client: ") + err);
  conf.release();  // rd_kafka_new took it
  return client_ptr(rk);
}

config_map common_config(const kafka_options& opts) {
  return {
      {"bootstrap.servers", opts.bootstrap},
      {"client.id", opts.client_id},
      // Loopback and cluster addresses are IPv4 here; skips a failed IPv6 attempt per broker.
      {"broker.address.family", "v4"},
      {"socket.nagle.disable", "true"},
      // Sparse logs: connection state changes are visible through errors and metrics.
      {"log.connection.close", "false"},
  };
}

topic_spec spec_for(const kafka_options& opts, const std::string& unprefixed) {
  topic_spec s;
  s.name = opts.topic_prefix + unprefixed;
  const auto it = opts.partitions_by_topic.find(unprefixed);
  s.partitions = it != opts.partitions_by_topic.end() ? it->second : opts.partitions;
  s.replication_factor = opts.replication_factor;
  s.min_insync_replicas = opts.min_insync_replicas;
  return s;
}

result<void> ensure_topic(rd_kafka_s* rk, const topic_spec& spec,
                          std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_ptr<rd_kafka_topic_t, topic_deleter> rkt(
      rd_kafka_topic_new(rk, spec.name.c_str(), nullptr));
  if (!rkt) return error(errc::invalid_input, "kafka topic name " + spec.name);
  // Most calls find the topic already there: one metadata request, no admin request.
  if (auto r = topic_ready(rk, rkt.get(), spec, 2000); r && *r) return ok;
  if (auto r = create_topic(rk, spec, timeout); !r) return r;
  // CreateTopics returns when the controller committed the topic; brokers learn of it (and
  // elect leaders) a little later.
  auto pause = std::chrono::milliseconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto r = topic_ready(rk, rkt.get(), spec, 2000); r && *r) return ok;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  return error(errc::unavailable, "kafka topic " + spec.name + " has no leader yet");
}

result<void> delete_topics(rd_kafka_s* rk, const std::vector<std::string>& names,
                           std::chrono::milliseconds timeout) {
  if (names.empty()) return ok;
  std::vector<rd_kafka_DeleteTopic_t*> topics;
  for (const auto& n : names) topics.push_back(rd_kafka_DeleteTopic_new(n.c_str()));
  std::unique_ptr<rd_kafka_AdminOptions_t, options_deleter> options(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS));
  char err[512];
  const int ms = static_cast<int>(timeout.count());
  rd_kafka_AdminOptions_set_request_timeout(options.get(), ms, err, sizeof err);
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), ms, err, sizeof err);
  std::unique_ptr<rd_kafka_queue_t, queue_deleter> queue(rd_kafka_queue_new(rk));
  rd_kafka_DeleteTopics(rk, topics.data(), topics.size(), options.get(), queue.get());
  rd_kafka_DeleteTopic_destroy_array(topics.data(), topics.size());
  std::unique_ptr<rd_kafka_event_t, event_deleter> ev(rd_kafka_queue_poll(queue.get(), ms + 1000));
  if (!ev) return error(errc::unavailable, "kafka: no answer to DeleteTopics");
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return error(errc::unavailable,
                 std::string("kafka DeleteTopics: ") + rd_kafka_event_error_string(ev.get()));
  }
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    const auto code = rd_kafka_topic_result_error(results[i]);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      return error(errc::unavailable, std::string("kafka DeleteTopics ") +
                                          rd_kafka_topic_result_name(results[i]) + ": " +
                                          rd_kafka_err2name(code));
    }
  }
  return ok;
}

}  // namespace chat4all::log_kafka
