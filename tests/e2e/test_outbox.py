"""Kafka stopped for a while, then restarted: 202 stays durable through the PostgreSQL outbox
(cluster mode only; SPEC §6).

Runs `--role all` (API, router and relay in one process) on the 3-broker Kafka cluster of
scripts/services/kafka.sh (started here when it is not running, stopped again afterwards).
Sender threads post continuously (single messages and batches). Every broker is stopped;
the API must keep answering 202 (appends Kafka does not acknowledge within
log.outbox_fallback_ms go to the outbox), /readyz stays ready and names the outbox. The
brokers are started again; the relay publishes the outbox in order, the API goes back to
Kafka, and in the end every 202'd message is stored exactly once, seq is 1..N gap-free per
conversation, and every sender's messages are stored in the order of their 202s.

Runs only with CHAT4ALL_TEST_E2E_MODE=cluster and the CHAT4ALL_TEST_* services; skipped
otherwise. Shares the 3-broker cluster with test_kafka_cluster (ctest RESOURCE_LOCK).
"""

import sys
import time
import unittest
import uuid

from harness import (Api, PrintsServerLogOnFailure, Server, Traffic, User, cluster_env, cluster_mode,
                     create_conversation, exactly_once_problems, metric_value, send_text,
                     wait_all_acked_stored, wait_for)
from test_kafka_cluster import NODES, cluster_bootstrap, kafka_sh, node_pid

PAGE = 1000
CONVERSATIONS = 4
WARMUP_S = 3
DOWN_S = 15
AFTER_S = 8


class OutboxKafkaDownTest(PrintsServerLogOnFailure):
    server: Server = None
    api: Api = None
    started_nodes: list = []

    @classmethod
    def setUpClass(cls):
        if not cluster_mode():
            raise unittest.SkipTest("cluster mode only (CHAT4ALL_TEST_E2E_MODE=cluster)")
        env = cluster_env(f"ob_{uuid.uuid4().hex[:10]}")  # SkipTest without the services
        cls.started_nodes = [n for n in NODES if node_pid(n) is None]
        if cls.started_nodes:
            r = kafka_sh("start", "cluster")
            if r.returncode != 0:
                raise RuntimeError(f"kafka.sh start cluster failed:\n{r.stdout}\n{r.stderr}")
        env.update({
            "CHAT4ALL_LOG_KAFKA_BOOTSTRAP": cluster_bootstrap(),
            "CHAT4ALL_LOG_KAFKA_REPLICATION_FACTOR": "3",
            "CHAT4ALL_LOG_KAFKA_MIN_INSYNC_REPLICAS": "2",
            "CHAT4ALL_LOG_KAFKA_PARTITIONS": "4",
            "CHAT4ALL_LOG_OUTBOX_FALLBACK_MS": "1000",
            "CHAT4ALL_RELAY_BACKOFF_INITIAL_MS": "200",
            "CHAT4ALL_RELAY_BACKOFF_MAX_MS": "2000",
            "CHAT4ALL_LIMITS_PAGE_MAX": str(PAGE),
        })
        cls.server = Server(env=env, args=["--role", "all"], name="outbox")
        try:
            cls.server.start(timeout=60)
        except BaseException:
            sys.stderr.write(cls.server.log_tail(100) + "\n")
            cls.server.cleanup()
            cls._stop_started_nodes()
            raise
        cls.api = Api(cls.server)

    @classmethod
    def _stop_started_nodes(cls):
        if cls.started_nodes:
            kafka_sh("stop", "cluster")

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.api is not None:
                cls.api.close()
            if cls.server is not None and cls.server.running():
                cls.server.stop()
        finally:
            if cls.server is not None:
                cls.server.cleanup()
            # Every node was stopped and started again by the test: leave the cluster as found.
            if cls.started_nodes:
                kafka_sh("stop", "cluster")

    def metric(self, name):
        return metric_value(self.server, name) or 0

    def test_kafka_stopped_then_restarted(self):
        api = self.api
        users = [User(api, f"ob{i}") for i in range(4)]
        convs = []
        for k in range(CONVERSATIONS):
            members = [users[(k + j) % len(users)] for j in range(3)]
            c = create_conversation(api, members[0].token, [m.id for m in members[1:]], "group")
            convs.append((c["id"], members))
        senders = [(conv, members[j], 0) for conv, members in convs for j in range(2)]
        senders += [(convs[0][0], convs[0][1][0], 10), (convs[1][0], convs[1][1][1], 10)]
        tr = Traffic(self.server, senders, client_timeout=40, retry_for=90, name="ob")
        tokens = {conv: members[0].token for conv, members in convs}
        log = []
        stopped = False
        try:
            tr.start()
            wait_for(lambda: tr.acked_count() > 0, 30, what="the first 202")
            time.sleep(WARMUP_S)

            t_stop = time.monotonic()
            r = kafka_sh("stop", "cluster")
            self.assertEqual(r.returncode, 0, f"kafka.sh stop cluster: {r.stderr}")
            stopped = True
            self.assertTrue(all(node_pid(n) is None for n in NODES), "a broker is still running")
            log.append(f"every broker stopped in {time.monotonic() - t_stop:.1f}s")
            t_down = time.monotonic()
            time.sleep(DOWN_S)
            t_up = time.monotonic()
            down_acks = tr.acks_between(t_down + 3, t_up)
            enqueued = self.metric("chat4all_outbox_enqueued_records_total")
            ready = api.get("/readyz")
            log.append(f"{down_acks / (t_up - t_down - 3):.0f} 202/s while Kafka was down; "
                       f"outbox enqueued {enqueued:.0f}; readyz {ready.status} {ready.json}")

            r = kafka_sh("start", "cluster")
            self.assertEqual(r.returncode, 0, f"kafka.sh start cluster: {r.stderr}")
            stopped = False
            log.append(f"cluster back in {time.monotonic() - t_up:.1f}s")
            time.sleep(AFTER_S)
        finally:
            tr.stop_event.set()
            if stopped:
                kafka_sh("start", "cluster")
        tr.stop()
        note = f"{tr.summary()}; " + "; ".join(log)
        print(f"\n[outbox] {note}")

        self.assertGreater(down_acks, 0, f"no 202 while Kafka was down ({note})")
        self.assertGreater(enqueued, 0, f"nothing went to the outbox ({note})")
        self.assertEqual(ready.status, 200, f"/readyz not ready while the outbox takes messages ({note})")
        self.assertIn("outbox", ready.json["dependencies"].get("log", ""), note)
        self.assertEqual(tr.rejected, {}, f"definitive non-202 answers to valid messages ({note})")

        # The relay empties the outbox and the API goes back to Kafka.
        wait_for(lambda: metric_value(self.server, "chat4all_outbox_backlog") == 0
                 and self.metric("chat4all_outbox_published_records_total") >= enqueued, 120,
                 interval=0.5, what="the relay to empty the outbox")
        # The way back is tried by appends (at most once a second, once Kafka's metadata
        # refresh sees the brokers): keep a trickle of sentinels going until it happened.
        n = 0

        def back_to_kafka():
            nonlocal n
            conv, members = convs[n % len(convs)]
            mid = send_text(api, members[0].token, conv, f"sentinel {n}")
            tr.record(mid, conv, members[0].id, f"sentinel {n}", acked=True)
            n += 1
            return metric_value(self.server, "chat4all_outbox_mode") == 0

        wait_for(back_to_kafka, 60, interval=0.5, what="the API to go back to Kafka")
        hist = wait_all_acked_stored(api, tokens, tr, timeout=90, page=PAGE)
        print(f"[outbox] stored={sum(len(h) for h in hist.values())} "
              f"published={self.metric('chat4all_outbox_published_records_total'):.0f}")
        self.assertEqual(exactly_once_problems(hist, tr), [], f"exactly-once violated ({note})")


if __name__ == "__main__":
    unittest.main()
