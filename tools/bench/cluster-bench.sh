#!/usr/bin/env bash
# chat4all-bench against a spawned server in cluster mode (PostgreSQL + Kafka + Redis, the
# project's own services on 127.0.0.1), with a fresh PostgreSQL schema and Kafka topic prefix
# per run so runs never see each other's data.
# Usage: tools/bench/cluster-bench.sh single|cluster [chat4all-bench options and mode...]
#   single:  the one-broker Kafka (RF=1, min ISR 1)   scripts/services/kafka.sh start
#   cluster: the three-broker Kafka (RF=3, min ISR 2) scripts/services/kafka.sh start cluster
# e.g. tools/bench/cluster-bench.sh single --threads 1 --server-threads 1 \
#        --target-msgs-per-s 0 api --endpoint batch --batch-connections 16 --duration-s 20
# The services must be running (scripts/services/{postgres,redis}.sh start and kafka.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
kafka=${1:?usage: cluster-bench.sh single|cluster [bench options]}
shift
case $kafka in
  single) rf=1; isr=1 ;;
  cluster) rf=3; isr=2 ;;
  *) echo "cluster-bench.sh: single or cluster, not $kafka" >&2; exit 2 ;;
esac
tag=bench_$(date +%s)_$$
export CHAT4ALL_AUTH_JWT_SECRET=cluster-bench-secret-of-at-least-32-bytes
export CHAT4ALL_STORAGE_BACKEND=postgres
export CHAT4ALL_STORAGE_POSTGRES_URL=$(scripts/services/postgres.sh url)
export CHAT4ALL_STORAGE_POSTGRES_SCHEMA=$tag
export CHAT4ALL_LOG_BACKEND=kafka
export CHAT4ALL_LOG_KAFKA_BOOTSTRAP=$(scripts/services/kafka.sh bootstrap "$kafka")
export CHAT4ALL_LOG_KAFKA_TOPIC_PREFIX=$tag.
export CHAT4ALL_LOG_KAFKA_REPLICATION_FACTOR=$rf
export CHAT4ALL_LOG_KAFKA_MIN_INSYNC_REPLICAS=$isr
export CHAT4ALL_FANOUT_BACKEND=redis
export CHAT4ALL_FANOUT_REDIS_URL=$(scripts/services/redis.sh url)
exec build/chat4all-bench --spawn build/chat4all "$@"
