#include "adapters/log/kafka/producer.hpp"

#include <librdkafka/rdkafka.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/completion.hpp"
#include "core/offload.hpp"
#include "core/thread_name.hpp"
#include "obs/logging.hpp"
#include "obs/metrics.hpp"

namespace chat4all::log_kafka {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto admin_timeout = 10s;

// One append() call: its records (whose bytes librdkafka reads in place until their
// delivery report) and a reference count: one per record handed to librdkafka plus one
// held by the appending coroutine until it has registered its completion. Whoever drops
// the last reference completes the append and deletes this.
class pending_append {
 public:
  explicit pending_append(std::vector<log_record> r)
      : records(std::move(r)), refs_(records.size() + 1) {}

  std::vector<log_record> records;
  std::unique_ptr<completion<result<void>>> done;  // set before the coroutine's release

  void release(rd_kafka_resp_err_t err) noexcept {
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      int expected = 0;
      first_error_.compare_exchange_strong(expected, static_cast<int>(err));
    }
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    const auto e = static_cast<rd_kafka_resp_err_t>(first_error_.load());
    auto c = std::move(done);
    delete this;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      c->complete(ok);
    } else {
      c->complete(
          error(e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? errc::too_large : errc::unavailable,
                std::string("kafka delivery failed: ") + rd_kafka_err2str(e)));
    }
  }

 private:
  std::atomic<std::size_t> refs_;
  std::atomic<int> first_error_{0};
};

void on_delivery_report(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
  static_cast<producer*>(opaque)->on_delivery(m->err);
  static_cast<pending_append*>(m->_private)->release(m->err);
}

config_map producer_config(const kafka_options& opts) {
  auto props = common_config(opts);
  // Idempotence: acks=all, retries without duplicates or reordering (at most 5 requests in
  // flight per broker, each with a sequence number).
  props["enable.idempotence"] = "true";
  props["acks"] = "all";
  props["max.in.flight.requests.per.connection"] = "5";
  props["compression.codec"] = opts.compression;
  props["linger.ms"] = std::to_string(opts.linger_ms);
  // Big batches: at high rates one request carries thousands of records per partition.
  props["batch.num.messages"] = "10000";
  props["batch.size"] = std::to_string(1024 * 1024);
  // The bound of records waiting for delivery; append() waits (not blocking) when full.
  props["queue.buffering.max.messages"] = "200000";
  props["queue.buffering.max.kbytes"] = std::to_string(256 * 1024);
  props["message.timeout.ms"] = std::to_string(opts.delivery_timeout_ms);
  // The Java client's partitioner: a key lands in the same partition whichever client
  // (connectors, tools) produces it.
  props["partitioner"] = "murmur2_random";
  // Topics are created with explicit settings (ensure_topic), never by a metadata request.
  props["allow.auto.create.topics"] = "false";
  for (const auto& [k, v] : opts.producer_config) props[k] = v;
  return props;
}

}  // namespace

// One librdkafka producer: the client, its topic handles and the thread serving its
// delivery reports.
struct producer::instance {
  std::uint64_t generation = 0;  // 1, 2, ...: which instance of the producer this is
  client_ptr rk;
  std::mutex topics_mu;
  // Unprefixed names known to exist -> librdkafka topic handle (destroyed before rk).
  std::map<std::string, rd_kafka_topic_t*> topics;
  std::atomic<bool> poller_run{true};
  std::thread poller;
  std::once_flag closed;

  // Destroys the client (blocking: joins librdkafka's threads). The last reference is
  // normally dropped on the admin thread (a replaced instance) or by the producer's
  // destructor: append() holds one only between two suspensions, never while waiting.
  ~instance() {
    close(0ms, nullptr);
    for (auto& [name, rkt] : topics) rd_kafka_topic_destroy(rkt);
    rk.reset();
  }

  rd_kafka_topic_t* find_topic(const std::string& topic) {
    std::lock_guard lk(topics_mu);
    const auto it = topics.find(topic);
    return it == topics.end() ? nullptr : it->second;
  }

  // Gives queued records up to `flush` to be delivered, fails the rest (their delivery
  // reports carry __PURGE_QUEUE / __PURGE_INFLIGHT), serves the reports and stops the
  // poller. Idempotent. No record may be produced into it any more; admin calls still may
  // (the client lives until the destructor).
  void close(std::chrono::milliseconds flush, obs::gauge* queue_depth) {
    std::call_once(closed, [&] {
      rd_kafka_t* h = rk.get();
      if (flush.count() > 0) rd_kafka_flush(h, static_cast<int>(flush.count()));
      rd_kafka_purge(h, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      while (rd_kafka_outq_len(h) > 0 && std::chrono::steady_clock::now() < deadline) {
        rd_kafka_poll(h, 50);
      }
      poller_run.store(false, std::memory_order_release);
      poller.join();
      rd_kafka_poll(h, 0);
      if (queue_depth != nullptr) queue_depth->set(rd_kafka_outq_len(h));
    });
  }
};

producer::producer(kafka_options opts, obs::metrics_registry* metrics) : opts_(std::move(opts)) {
  name_pool_threads(admin_, 1, "c4a-kafka-admin");
  if (opts_.bootstrap.empty()) throw std::invalid_argument("kafka_log: bootstrap is empty");
  if (opts_.partitions < 1 || opts_.replication_factor < 1 || opts_.min_insync_replicas < 1 ||
      opts_.min_insync_replicas > opts_.replication_factor) {
    throw std::invalid_argument(
        "kafka_log: partitions, replication_factor and min_insync_replicas must be >= 1 "
        "and min_insync_replicas <= replication_factor");
  }
  if (metrics != nullptr) {
    queue_depth_ =
        &metrics->gauge("chat4all_kafka_producer_queue_depth",
                        "Records in the Kafka producer queue: waiting to be sent or acknowledged");
    delivery_errors_ = &metrics->counter("chat4all_kafka_delivery_errors_total",
                                         "Records whose delivery to Kafka failed");
    restarts_metric_ = &metrics->counter(
        "chat4all_kafka_producer_restarts_total",
        "Kafka producers replaced by a new one after a fatal error (e.g. an idempotence "
        "sequence error after a cluster restart)");
  }
  inst_ = make_instance();
}

producer::~producer() {
  stop();
  admin_.join();  // failed instances being closed
  inst_.reset();
}

std::shared_ptr<producer::instance> producer::make_instance() {
  auto inst = std::make_shared<instance>();
  inst->generation = ++generations_;
  auto conf = make_conf(producer_config(opts_), "producer");
  rd_kafka_conf_set_dr_msg_cb(conf.get(), on_delivery_report);
  rd_kafka_conf_set_opaque(conf.get(), this);
  inst->rk = make_client(std::move(conf), false);
  // Serves delivery reports (and error/log callbacks): each completes its append on the
  // append's own executor. rd_kafka_poll returns as soon as it served something.
  inst->poller = std::thread([this, i = inst.get()] {
    name_this_thread("c4a-kafka-poll");
    while (i->poller_run.load(std::memory_order_acquire)) {
      rd_kafka_poll(i->rk.get(), 100);
      if (queue_depth_ != nullptr) queue_depth_->set(rd_kafka_outq_len(i->rk.get()));
    }
  });
  return inst;
}

std::shared_ptr<producer::instance> producer::current() const {
  std::shared_lock lk(produce_mu_);
  return stopped_->load() ? nullptr : inst_;
}

// Runs on the appending thread: rd_kafka_new only starts librdkafka's threads (brokers are
// contacted by them, later), a few milliseconds once per fatal error.
std::shared_ptr<producer::instance> producer::replace(const std::shared_ptr<instance>& failed) {
  std::shared_ptr<instance> retired;
  std::shared_ptr<instance> now;
  {
    std::unique_lock lk(produce_mu_);
    if (stopped_->load()) return nullptr;
    if (inst_ == failed) {
      char why[512];
      const auto err = rd_kafka_fatal_error(failed->rk.get(), why, sizeof why);
      try {
        inst_ = make_instance();
      } catch (const std::exception& e) {  // librdkafka refused a new client: try again later
        log::error("kafka producer could not be replaced", {{"error", e.what()}});
        return inst_;
      }
      retired = failed;
      restarts_.fetch_add(1);
      if (restarts_metric_ != nullptr) restarts_metric_->inc();
      log::warn("kafka producer replaced after a fatal error",
                {{"error", rd_kafka_err2name(err)}, {"reason", why}});
    }
    now = inst_;
  }
  if (retired) {
    asio::post(admin_, [this, retired] { retired->close(0ms, nullptr); });
  }
  return now;
}

void producer::raise_fatal_error_for_test(const std::string& reason) {
  if (auto inst = current(); inst) {
    rd_kafka_test_fatal_error(inst->rk.get(), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                              reason.c_str());
  }
}

void producer::on_delivery(int err) noexcept {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (delivery_errors_ != nullptr) delivery_errors_->inc();
  const auto e = static_cast<rd_kafka_resp_err_t>(err);
  if (e == RD_KAFKA_RESP_ERR__PURGE_QUEUE || e == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) return;
  // While a cluster is unreachable every queued record fails: one line per second at most.
  std::lock_guard lk(failure_log_mu_);
  ++failures_unlogged_;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_failure_log_ < 1s) return;
  last_failure_log_ = now;
  log::warn("kafka delivery failed",
            {{"error", rd_kafka_err2name(e)}, {"records", failures_unlogged_}});
  failures_unlogged_ = 0;
}

result<void> producer::ensure_topic(const std::string& topic) {
  if (topic.empty()) return error(errc::invalid_input, "kafka_log: empty topic name");
  auto inst = current();
  if (!inst) return error(errc::unavailable, "kafka_log is stopped");
  if (inst->find_topic(topic) != nullptr) return ok;
  const auto spec = spec_for(opts_, topic);
  if (auto r = log_kafka::ensure_topic(inst->rk.get(), spec, admin_timeout); !r) return r;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(inst->rk.get(), spec.name.c_str(), nullptr);
  if (rkt == nullptr) return error(errc::invalid_input, "kafka topic name " + spec.name);
  std::lock_guard lk(inst->topics_mu);
  if (!inst->topics.emplace(topic, rkt).second) rd_kafka_topic_destroy(rkt);  // raced: keep one
  return ok;
}

result<void> producer::delete_topics(const std::vector<std::string>& topics) {
  auto inst = current();
  if (!inst) return error(errc::unavailable, "kafka_log is stopped");
  std::vector<std::string> names;
  for (const auto& t : topics) names.push_back(opts_.topic_prefix + t);
  {
    std::lock_guard lk(inst->topics_mu);
    for (const auto& t : topics) {
      if (auto it = inst->topics.find(t); it != inst->topics.end()) {
        rd_kafka_topic_destroy(it->second);
        inst->topics.erase(it);
      }
    }
  }
  return log_kafka::delete_topics(inst->rk.get(), names, admin_timeout);
}

asio::awaitable<result<void>> producer::append(std::string topic, std::vector<log_record> records) {
  if (topic.empty()) co_return error(errc::invalid_input, "kafka_log::append: empty topic name");
  std::uint64_t generation = 0;
  rd_kafka_topic_t* rkt = nullptr;
  {
    // No reference to the instance is held across a suspension (see ~instance).
    auto inst = current();
    if (char why[8]; inst && rd_kafka_fatal_error(inst->rk.get(), why, sizeof why))
      inst = replace(inst);
    if (!inst) co_return error(errc::unavailable, "kafka_log is stopped");
    generation = inst->generation;
    rkt = inst->find_topic(topic);
  }
  if (records.empty()) co_return ok;
  if (rkt == nullptr) {
    auto work = [this, topic] { return ensure_topic(topic); };
    auto r = co_await offload(admin_.get_executor(), std::move(work));
    if (!r) co_return r;
    auto inst = current();
    if (!inst || inst->generation != generation)
      co_return error(errc::unavailable, "kafka producer stopped or replaced meanwhile");
    rkt = inst->find_topic(topic);
    if (rkt == nullptr) co_return error(errc::unavailable, "kafka topic deleted meanwhile");
  }

  auto* batch = new pending_append(std::move(records));
  const std::size_t n = batch->records.size();
  std::size_t next = 0;
  auto failure = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::optional<asio::steady_timer> backoff;
  auto pause = 1ms;
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.delivery_timeout_ms);
  while (next < n) {
    {
      std::shared_lock lk(produce_mu_);
      if (stopped_->load()) {
        failure = RD_KAFKA_RESP_ERR__DESTROY;
        break;
      }
      if (inst_->generation != generation) {  // replaced after a fatal error meanwhile
        failure = RD_KAFKA_RESP_ERR__FATAL;
        break;
      }
      rd_kafka_t* rk = inst_->rk.get();  // the instance cannot change while the lock is held
      for (; next < n; ++next) {
        auto& rec = batch->records[next];
        // No copy flag: librdkafka reads the value in place until its delivery report.
        // (Headers are copied by librdkafka.)
        const auto err =
            rec.traceparent.empty()
                ? rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
                                    RD_KAFKA_V_KEY(rec.key.data(), rec.key.size()),
                                    RD_KAFKA_V_VALUE(rec.value.data(), rec.value.size()),
                                    RD_KAFKA_V_OPAQUE(batch), RD_KAFKA_V_END)
                : rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
                                    RD_KAFKA_V_KEY(rec.key.data(), rec.key.size()),
                                    RD_KAFKA_V_VALUE(rec.value.data(), rec.value.size()),
                                    RD_KAFKA_V_HEADER("traceparent", rec.traceparent.data(),
                                                      static_cast<ssize_t>(rec.traceparent.size())),
                                    RD_KAFKA_V_OPAQUE(batch), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) failure = err;
        break;
      }
    }
    if (next == n || failure != RD_KAFKA_RESP_ERR_NO_ERROR) break;
    // The producer queue is full: wait (without blocking the thread) for deliveries to
    // make room, up to the delivery timeout.
    if (std::chrono::steady_clock::now() >= give_up) {
      failure = RD_KAFKA_RESP_ERR__QUEUE_FULL;
      break;
    }
    if (!backoff) backoff.emplace(co_await asio::this_coro::executor);
    backoff->expires_after(pause);
    co_await backoff->async_wait(asio::use_awaitable);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  if (failure != RD_KAFKA_RESP_ERR_NO_ERROR && delivery_errors_ != nullptr) {
    delivery_errors_->inc(n - next);
  }
  // Records never handed to librdkafka get no delivery report: release them now (the
  // coroutine's own reference keeps the batch alive).
  for (std::size_t i = next; i < n; ++i) batch->release(failure);
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(result<void>)>(
      [](auto handler, pending_append* b) {
        b->done = make_completion<result<void>>(std::move(handler));
        b->release(RD_KAFKA_RESP_ERR_NO_ERROR);
      },
      asio::use_awaitable, batch);
}

void producer::stop() {
  std::call_once(stop_once_, [this] {
    std::shared_ptr<instance> inst;
    {
      std::unique_lock lk(produce_mu_);
      stopped_->store(true);
      inst = inst_;
    }
    // Queued records get their chance, then the rest fail and complete their appends with
    // `unavailable`.
    inst->close(std::chrono::milliseconds(opts_.stop_flush_timeout_ms), queue_depth_);
  });
}

}  // namespace chat4all::log_kafka
