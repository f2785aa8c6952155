#include "app/adapters.hpp"

#include <filesystem>
#include <stdexcept>

#include "adapters/blob/fs/fs_blob_store.hpp"
#include "adapters/blob/s3/s3_blob_store.hpp"
#include "adapters/counters/inproc/inproc_counters.hpp"
#include "adapters/counters/redis/redis_counters.hpp"
#include "adapters/fanout/inproc/inproc_fanout.hpp"
#include "adapters/fanout/redis/redis_fanout.hpp"
#include "adapters/log/embedded/embedded_log.hpp"
#include "adapters/log/kafka/kafka_log.hpp"
#include "adapters/store/postgres/pg_store.hpp"
#include "adapters/store/sqlite/sqlite_store.hpp"

namespace chat4all::app {
namespace fs = std::filesystem;

namespace {
[[noreturn]] void missing(const char* key, const char* backend) {
  throw std::runtime_error(std::string("config: ") + key + " must be set when the backend is " +
                           backend);
}
}  // namespace

std::unique_ptr<store> make_store(const config& cfg) {
  if (cfg.storage.backend == "postgres") {
    if (cfg.storage.postgres_url.empty()) missing("storage.postgres_url", "postgres");
    pg_store_options o;
    o.pool_size = cfg.storage.postgres_pool_size;
    o.schema = cfg.storage.postgres_schema;
    return std::make_unique<pg_store>(cfg.storage.postgres_url, o);
  }
  fs::create_directories(cfg.storage.data_dir);
  // Only role `all` stores messages in this process; with split roles another process may.
  return std::make_unique<sqlite_store>((fs::path(cfg.storage.data_dir) / "chat4all.db").string(),
                                        cfg.storage, cfg.role == "all");
}

std::unique_ptr<event_log> make_event_log(const config& cfg, obs::metrics_registry& metrics) {
  if (cfg.log.backend == "kafka") {
    if (cfg.log.kafka_bootstrap.empty()) missing("log.kafka_bootstrap", "kafka");
    kafka_options o;
    o.bootstrap = cfg.log.kafka_bootstrap;
    o.topic_prefix = cfg.log.kafka_topic_prefix;
    o.replication_factor = cfg.log.kafka_replication_factor;
    o.min_insync_replicas = cfg.log.kafka_min_insync_replicas;
    o.linger_ms = cfg.log.kafka_linger_ms;
    // SPEC §6 topic sizes; connector topics (<channel>_outgoing) get the default.
    o.partitions = 10;
    o.partitions_by_topic = {{"messages", cfg.log.kafka_partitions},
                             {"message_status_updates", 50},
                             {"file_merge_requests", 50},
                             {"message_processing_dlq", 3}};
    return std::make_unique<kafka_log>(o, &metrics);
  }
  fs::create_directories(cfg.storage.data_dir);
  return std::make_unique<embedded_log>((fs::path(cfg.storage.data_dir) / "log").string(), cfg.log);
}

std::unique_ptr<blob_store> make_blob_store(const config& cfg) {
  if (cfg.blobs.backend == "s3") {
    if (cfg.blobs.s3_endpoint.empty()) missing("blobs.s3_endpoint", "s3");
    s3_options o;
    o.endpoint = cfg.blobs.s3_endpoint;
    o.bucket = cfg.blobs.s3_bucket;
    o.region = cfg.blobs.s3_region;
    o.access_key = cfg.blobs.s3_access_key;
    o.secret_key = cfg.blobs.s3_secret_key;
    o.public_endpoint = cfg.blobs.s3_public_endpoint;
    o.transfers = cfg.blobs.s3_transfers;
    return std::make_unique<s3_blob_store>(std::move(o));
  }
  const std::string dir = cfg.blobs.fs_dir.empty()
                              ? (fs::path(cfg.storage.data_dir) / "blobs").string()
                              : cfg.blobs.fs_dir;
  return std::make_unique<fs_blob_store>(dir);
}

namespace {
// fanout.redis_url (redis://host[:port][/...]) as host and port.
std::pair<std::string, int> redis_endpoint(const config& cfg) {
  const std::string& url = cfg.fanout.redis_url;
  if (url.empty()) missing("fanout.redis_url", "redis");
  auto rest = url.substr(std::string_view("redis://").size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  const auto colon = rest.rfind(':');
  return {colon == std::string::npos ? rest : rest.substr(0, colon),
          colon == std::string::npos ? 6379 : std::stoi(rest.substr(colon + 1))};
}
}  // namespace

std::unique_ptr<fanout> make_fanout(const config& cfg, obs::metrics_registry& metrics) {
  if (cfg.fanout.backend == "redis") {
    redis_options o;
    std::tie(o.host, o.port) = redis_endpoint(cfg);
    o.channel_prefix = cfg.fanout.redis_channel_prefix;
    return std::make_unique<redis_fanout>(o, &metrics);
  }
  return std::make_unique<inproc_fanout>();
}

std::unique_ptr<counters> make_counters(const config& cfg) {
  if (cfg.fanout.backend == "redis") {
    redis_counters_options o;
    std::tie(o.host, o.port) = redis_endpoint(cfg);
    o.key_prefix = cfg.fanout.redis_channel_prefix + "counters:";
    return std::make_unique<redis_counters>(o);
  }
  return std::make_unique<inproc_counters>();
}

}  // namespace chat4all::app
