#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds, starts the real services the tests need
# (PostgreSQL, Redis, a Kafka broker, MinIO — on 127.0.0.1 only, data under ./var/services), and
# runs the whole test suite: unit, contract (every adapter of every port), e2e (the real
# binary over HTTP, on the embedded default and in cluster mode). Exit status 0 = all passed.
#   CHAT4ALL_TEST_LABELS=unit scripts/test.sh   narrow by ctest label (no services needed)
#   CHAT4ALL_TEST_KEEP_SERVICES=1                    leave the services running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
labels=${CHAT4ALL_TEST_LABELS:-unit|contract|e2e}

if [[ "$labels" != "unit" ]]; then
  services=(postgres redis kafka minio)
  if [[ -z "${CHAT4ALL_TEST_KEEP_SERVICES:-}" ]]; then
    trap 'for s in "${services[@]}"; do scripts/services/$s.sh stop >/dev/null 2>&1 || true; done' EXIT
  fi
  for s in "${services[@]}"; do
    # A broker that is not running starts on a fresh store: the e2e suites leave their topics
    # behind, and a broker that has to load many runs' worth times out CreateTopics.
    if [[ $s == kafka ]] && ! scripts/services/kafka.sh status >/dev/null 2>&1; then
      scripts/services/kafka.sh reset >/dev/null 2>&1 || true
    fi
    scripts/services/$s.sh start
  done
  CHAT4ALL_TEST_PG_URL=$(scripts/services/postgres.sh url)
  CHAT4ALL_TEST_REDIS_URL=$(scripts/services/redis.sh url)
  CHAT4ALL_TEST_KAFKA_BOOTSTRAP=$(scripts/services/kafka.sh bootstrap)
  export CHAT4ALL_TEST_PG_URL CHAT4ALL_TEST_REDIS_URL CHAT4ALL_TEST_KAFKA_BOOTSTRAP
  # MinIO: the s3 blob store's contract suite and the cluster-mode upload suites run on it.
  while IFS='=' read -r k v; do export "$k=$v"; done < <(scripts/services/minio.sh env)
fi

ctest --test-dir build -L "$labels" --output-on-failure -j "${CHAT4ALL_TEST_JOBS:-2}" --timeout 900
