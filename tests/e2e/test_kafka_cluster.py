"""A Kafka broker dies under load: 202 still means durable (cluster mode only; SPEC §6).

Runs `--role all` on the 3-broker Kafka cluster of scripts/services/kafka.sh (started here when
it is not running, stopped again afterwards), with the topics created at replication factor 3
and min.insync.replicas=2. Sender threads post continuously; the broker that leads the most
partitions of the `messages` topic is killed with SIGKILL. Requests may fail while the
cluster fences the dead broker and elects new leaders (503s, timeouts: clients retry with the
same message_id), but 202s must keep arriving afterwards. The broker is started again, traffic
goes on, and then every 202'd message is stored exactly once, seq is 1..N gap-free in every
conversation, every sender thread's messages are stored in the order of their 202s, nothing
unsent appears, and the history is the same after a clean restart of the server.

Runs only with CHAT4ALL_TEST_E2E_MODE=cluster and the CHAT4ALL_TEST_PG_URL /
CHAT4ALL_TEST_KAFKA_BOOTSTRAP / CHAT4ALL_TEST_REDIS_URL services; skipped otherwise.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest
import uuid

from harness import (HERE, Api, PrintsServerLogOnFailure, Server, Traffic, User, cluster_env, cluster_mode, create_conversation,
                     exactly_once_problems, history_all, kafka_partition, send_text, wait_all_acked_stored,
                     wait_for)

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
KAFKA_SH = os.path.join(REPO, "scripts", "services", "kafka.sh")
CLUSTER_STATE = os.path.join(REPO, "var", "services", "kafka-cluster")
NODES = (1, 2, 3)

PARTITIONS = 8
PAGE = 1000
SINGLE_THREADS_PER_CONV = 2
BATCH_THREADS = 2
BATCH_SIZE = 10
WARMUP_S = 4  # steady traffic before the kill (the rate is measured over it)
DOWN_S = 25  # traffic while the broker is dead
RECOVERED_WINDOW_S = 10  # the last seconds of DOWN_S: 202s must flow again by then
AFTER_RESTART_S = 6


# -- the 3-broker cluster ---------------------------------------------------------------------

def kafka_sh(*args, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([KAFKA_SH, *args], capture_output=True, text=True, timeout=timeout)


def node_pid(n: int) -> int | None:
    """The pid of cluster node n's JVM, as kafka.sh checks it (None when not running)."""
    node_dir = os.path.join(CLUSTER_STATE, f"node-{n}")
    try:
        with open(os.path.join(node_dir, "kafka.pid")) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return pid if os.path.join(node_dir, "server.properties") in cmd else None


def cluster_bootstrap() -> str:
    r = kafka_sh("bootstrap", "cluster", timeout=30)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"kafka.sh bootstrap cluster: {r.stderr}")
    return r.stdout.strip()


def messages_topic_leaders(bootstrap: str, topic: str) -> dict:
    """partition -> leader node id of `topic`, from a Metadata (v4) request to the first broker
    of `bootstrap` that answers."""

    def string(s: str) -> bytes:
        b = s.encode()
        return struct.pack(">h", len(b)) + b

    body = struct.pack(">i", 1) + string(topic) + b"\x00"  # topics[1], allow_auto_topic_creation
    req = struct.pack(">hhi", 3, 4, 7) + string("chat4all-e2e") + body
    last = None
    for hostport in bootstrap.split(","):
        host, port = hostport.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall(struct.pack(">i", len(req)) + req)
                size = struct.unpack(">i", _recv(s, 4))[0]
                buf = _recv(s, size)
            return _parse_metadata_v4(buf, topic)
        except (OSError, struct.error, ValueError) as e:
            last = e
    raise RuntimeError(f"no broker of {bootstrap} answered a metadata request: {last!r}")


def _recv(s, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("connection closed")
        out += chunk
    return out


def _parse_metadata_v4(buf: bytes, topic: str) -> dict:
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take(">h")
        if n < 0:
            return None
        s = buf[pos:pos + n].decode()
        pos += n
        return s

    take(">i")  # correlation id
    take(">i")  # throttle_time_ms
    for _ in range(take(">i")):  # brokers
        take(">i"), string(), take(">i"), string()
    string()  # cluster_id
    take(">i")  # controller_id
    leaders = {}
    for _ in range(take(">i")):  # topics
        err, name, _internal = take(">h"), string(), take(">?")
        for _ in range(take(">i")):  # partitions
            _perr, index, leader = take(">h"), take(">i"), take(">i")
            for _ in range(take(">i")):
                take(">i")  # replicas
            for _ in range(take(">i")):
                take(">i")  # isr
            if name == topic and err == 0:
                leaders[index] = leader
    return leaders


# -- the suite --------------------------------------------------------------------------------

class KafkaBrokerFailureTest(PrintsServerLogOnFailure):
    server: Server = None
    api: Api = None
    started_nodes: list = []

    @classmethod
    def setUpClass(cls):
        if not cluster_mode():
            raise unittest.SkipTest("cluster mode only (CHAT4ALL_TEST_E2E_MODE=cluster)")
        tag = f"kc_{uuid.uuid4().hex[:10]}"
        env = cluster_env(tag)  # SkipTest without the services
        cls.started_nodes = [n for n in NODES if node_pid(n) is None]
        if cls.started_nodes:
            t0 = time.monotonic()
            r = kafka_sh("start", "cluster")
            if r.returncode != 0:
                raise RuntimeError(f"kafka.sh start cluster failed:\n{r.stdout}\n{r.stderr}")
            print(f"\n[kafka_cluster] started nodes {cls.started_nodes} in {time.monotonic() - t0:.1f}s")
        cls.bootstrap = cluster_bootstrap()
        env.update({
            "CHAT4ALL_LOG_KAFKA_BOOTSTRAP": cls.bootstrap,
            "CHAT4ALL_LOG_KAFKA_REPLICATION_FACTOR": "3",
            "CHAT4ALL_LOG_KAFKA_MIN_INSYNC_REPLICAS": "2",
            "CHAT4ALL_LOG_KAFKA_PARTITIONS": str(PARTITIONS),
            "CHAT4ALL_LIMITS_PAGE_MAX": str(PAGE),
        })
        cls.topic = env["CHAT4ALL_LOG_KAFKA_TOPIC_PREFIX"] + "messages"
        cls.server = Server(env=env, args=["--role", "all"], name="kafka-cluster")
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
        if not cls.started_nodes:
            return
        if len(cls.started_nodes) == len(NODES):
            r = kafka_sh("stop", "cluster")
        else:
            for n in cls.started_nodes:
                r = kafka_sh("stop-node", str(n), "cluster")
        if r.returncode != 0:
            sys.stderr.write(f"kafka.sh stop failed: {r.stderr}\n")

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
            cls._stop_started_nodes()

    def test_broker_killed_under_load(self):
        api = self.api
        users = [User(api, f"kc{i}") for i in range(6)]
        chosen = {}
        for k in range(80):
            members = [users[(k + j) % len(users)] for j in range(3)]
            c = create_conversation(api, members[0].token, [m.id for m in members[1:]], "group")
            chosen.setdefault(kafka_partition(str(c["id"]), PARTITIONS), (c["id"], members))
            if len(chosen) == PARTITIONS:
                break
        convs = [chosen[p] for p in sorted(chosen)]
        senders = [(conv, members[j], 0) for conv, members in convs for j in range(SINGLE_THREADS_PER_CONV)]
        senders += [(convs[b][0], convs[b][1][2], BATCH_SIZE) for b in range(BATCH_THREADS)]
        # Client timeout above the producer's delivery timeout (30 s): the server answers first.
        tr = Traffic(self.server, senders, client_timeout=40, retry_for=90, name="kc")
        tokens = {conv: members[0].token for conv, members in convs}
        log = []
        victim = None
        try:
            tr.start()
            wait_for(lambda: tr.acked_count() > 0, 30, what="the first 202")
            t0 = time.monotonic()
            time.sleep(WARMUP_S)
            t_kill = time.monotonic()
            before_rate = tr.acks_between(t0, t_kill) / (t_kill - t0)

            leaders = messages_topic_leaders(self.bootstrap, self.topic)
            led = {n: sum(1 for leader in leaders.values() if leader == n) for n in NODES}
            victim = max(NODES, key=lambda n: led[n])
            pid = node_pid(victim)
            self.assertIsNotNone(pid, f"broker node {victim} is not running")
            t_kill = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            log.append(f"killed node {victim} (leader of {led[victim]} of {len(leaders)} partitions)")

            time.sleep(DOWN_S)
            t_end = time.monotonic()
            recovered = tr.acks_between(t_end - RECOVERED_WINDOW_S, t_end)
            gap = tr.longest_ack_gap(t_kill, t_end)
            leaders_after = messages_topic_leaders(self.bootstrap, self.topic)
            log.append(f"rate before {before_rate:.0f}/s; after kill: longest stretch without a 202 {gap:.1f}s, "
                       f"{recovered / RECOVERED_WINDOW_S:.0f}/s over the last {RECOVERED_WINDOW_S}s; "
                       f"failed requests so far {tr.failed_requests}; leaders now {sorted(set(leaders_after.values()))}")
            self.assertNotIn(victim, leaders_after.values(), "the dead broker still leads partitions")

            t_restart = time.monotonic()
            r = kafka_sh("start-node", str(victim), "cluster")
            self.assertEqual(r.returncode, 0, f"kafka.sh start-node {victim}: {r.stderr}")
            log.append(f"node {victim} back in {time.monotonic() - t_restart:.1f}s")
            victim = None
            t1 = time.monotonic()
            time.sleep(AFTER_RESTART_S)
            after = tr.acks_between(t1, time.monotonic())
            log.append(f"{after / AFTER_RESTART_S:.0f}/s after the restart")
        finally:
            tr.stop_event.set()
            if victim is not None and node_pid(victim) is None:
                kafka_sh("start-node", str(victim), "cluster")
        tr.stop()
        note = f"{tr.summary()}; " + "; ".join(log)
        print(f"\n[kafka_cluster] {note}")

        # 202s kept coming after the kill: the producer recovered once the cluster had
        # fenced the dead broker and moved its leaderships (≈ broker session timeout, 9 s).
        self.assertGreaterEqual(recovered, max(20, 0.1 * before_rate * RECOVERED_WINDOW_S),
                                f"202s did not recover after the broker was killed ({note})")
        self.assertGreater(after, 0, f"no 202 after the broker restarted ({note})")
        self.assertEqual(tr.rejected, {}, f"definitive non-202 answers to valid messages ({note})")

        for conv, members in convs:
            mid = send_text(api, members[0].token, conv, "sentinel")
            tr.record(mid, conv, members[0].id, "sentinel", acked=True)
        t0 = time.monotonic()
        hist = wait_all_acked_stored(api, tokens, tr, timeout=60, page=PAGE)
        stored = sum(len(h) for h in hist.values())
        present = (set(tr.attempted) - tr.acked) & {m["message_id"] for h in hist.values() for m in h}
        print(f"[kafka_cluster] backlog stored in {time.monotonic() - t0:.1f}s; stored={stored} "
              f"unanswered_stored={len(present)}")
        self.assertEqual(exactly_once_problems(hist, tr), [], f"exactly-once violated ({note})")

        # The same history after a clean restart.
        api.close()
        self.server.restart()
        again = {conv: history_all(api, tokens[conv], conv, page=PAGE) for conv in tokens}
        self.assertEqual({c: [(m["message_id"], m["seq"]) for m in ms] for c, ms in again.items()},
                         {c: [(m["message_id"], m["seq"]) for m in ms] for c, ms in hist.items()},
                         "history changed across a clean restart")


if __name__ == "__main__":
    unittest.main()
