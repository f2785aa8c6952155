"""Routers fail over under traffic (cluster mode only; SPEC §6, ADR 0001).

Two `--role api` processes and separate `--role router` processes share one PostgreSQL schema,
one Kafka topic prefix (the `messages` topic has 8 partitions, so the consumer group "router"
really splits them) and one Redis prefix; each process has its own port and data dir. Sender
threads post continuously (each sequentially to one conversation, its successive requests
alternating between the two api processes; unanswered requests and 503s are retried with the
same message_id, bounded) while

  (a) one of two routers is killed with SIGKILL, its partitions must move to the survivor,
      and it is started again;
  (b) a third router joins the group, takes partitions, and leaves with SIGTERM.

Afterwards (waiting at most 60 s for the backlog) every 202'd message is stored exactly once,
seq is 1..N gap-free in every conversation, every sender thread's messages are stored in the
order their 202s arrived, and nothing that was never sent appears.

Runs only with CHAT4ALL_TEST_E2E_MODE=cluster and the CHAT4ALL_TEST_PG_URL /
CHAT4ALL_TEST_KAFKA_BOOTSTRAP / CHAT4ALL_TEST_REDIS_URL services; skipped otherwise.
"""

import sys
import time
import unittest
import uuid

from harness import (Api, Server, Traffic, User, cluster_env, cluster_mode, create_conversation,
                     exactly_once_problems, get_message, kafka_partition, metric_value, send_text,
                     wait_all_acked_stored, wait_for)

PARTITIONS = 8
PAGE = 1000  # history page size (CHAT4ALL_LIMITS_PAGE_MAX below)
SINGLE_THREADS_PER_CONV = 2
BATCH_THREADS = 2  # on the first conversations, BATCH_SIZE messages per request
BATCH_SIZE = 10
STORED = "chat4all_messages_stored_total"
# A killed consumer keeps its partitions until the group's session timeout (10 s) expires;
# then the survivor must have caught up with everything accepted meanwhile.
TAKEOVER_TIMEOUT_S = 45


def shared_env(tag: str) -> dict:
    """One set of backends (schema, topic prefix, Redis prefix) for every process of a test."""
    if not cluster_mode():
        raise unittest.SkipTest("cluster mode only (CHAT4ALL_TEST_E2E_MODE=cluster)")
    env = cluster_env(f"{tag}_{uuid.uuid4().hex[:10]}")  # SkipTest without the services
    env.update({
        "CHAT4ALL_LOG_KAFKA_PARTITIONS": str(PARTITIONS),
        "CHAT4ALL_LIMITS_PAGE_MAX": str(PAGE),
    })
    return env


class RouterFailoverTest(unittest.TestCase):
    """Each test gets its own backends and processes: api1, api2, router1, router2 (router3
    spare)."""

    def setUp(self):
        self.env = shared_env("fo_" + self._testMethodName[5:15])
        self.procs: list[Server] = []
        self.traffic: Traffic | None = None
        self.api_srv = self._proc("api")
        self.api_srv2 = self._proc("api")
        self.routers = [self._proc("router") for _ in range(3)]
        self.api = Api(self.api_srv)
        self.addCleanup(self.shut_down)  # also when a start below fails
        self.api_srv.start()
        self.api_srv2.start()
        for r in self.routers[:2]:
            r.start()

    def _proc(self, role: str) -> Server:
        s = Server(env=self.env, args=["--role", role], name=f"fo-{role}")
        self.procs.append(s)
        return s

    def shut_down(self):
        if self.traffic is not None and not self.traffic.stop_event.is_set():
            self.traffic.stop_event.set()
        errors = []
        for s in reversed(self.procs):  # routers first, the api processes last
            try:
                if s.running():
                    s.stop()
            except AssertionError as e:
                errors.append(str(e))
            finally:
                s.cleanup()
        self.api.close()
        if errors:
            self.fail("clean shutdown failed:\n" + "\n".join(errors))

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for s in getattr(self, "procs", []):
                sys.stderr.write(f"\n[{self.id()}] {' '.join(s.extra_args)} on port {s.port}:\n"
                                 + s.log_tail(80) + "\n")
        return out

    # -- helpers -----------------------------------------------------------------------------
    def setup_traffic(self) -> dict:
        """Users, conversations on 8 different partitions, senders; returns conversation ->
        token of a member (for reading history)."""
        api = self.api
        users = [User(api, f"fo{i}") for i in range(6)]
        chosen = {}  # partition -> (conversation id, members)
        for k in range(80):
            members = [users[(k + j) % len(users)] for j in range(3)]
            c = create_conversation(api, members[0].token, [m.id for m in members[1:]], "group")
            chosen.setdefault(kafka_partition(str(c["id"]), PARTITIONS), (c["id"], members))
            if len(chosen) == PARTITIONS:
                break
        convs = [chosen[p] for p in sorted(chosen)]
        senders = []
        for conv, members in convs:
            for j in range(SINGLE_THREADS_PER_CONV):
                senders.append((conv, members[j], 0))
        for b in range(BATCH_THREADS):
            conv, members = convs[b]
            senders.append((conv, members[2], BATCH_SIZE))
        self.traffic = Traffic([self.api_srv, self.api_srv2], senders, client_timeout=15, name="fo")
        self.convs = convs
        return {conv: members[0].token for conv, members in convs}

    def stored(self, router: Server) -> float:
        return metric_value(router, STORED) or 0.0

    def wait_router_stores(self, router: Server, what: str, timeout: float = 30):
        """Until `router` has stored messages itself: it owns partitions of the group."""
        wait_for(lambda: self.stored(router) > 0, timeout, interval=0.2, what=what)

    def wait_stored_since(self, t: float, timeout: float) -> float:
        """Waits until the latest message every sender thread got a 202 for before now is
        stored (the takeover of the partitions completed); returns how long that took."""
        api = self.api
        probe = self.traffic.last_acked()
        self.assertEqual(len(probe), len(self.traffic.senders), "a sender thread never got a 202")
        token = {conv: members[0].token for conv, members in self.convs}
        pending = list(probe)  # (conversation, message id): the last 202 of every thread

        def check():
            nonlocal pending
            pending = [(c, mid) for c, mid in pending if get_message(api, token[c], mid).status != 200]
            return not pending

        wait_for(check, timeout, interval=0.25,
                 what=f"messages acknowledged {time.monotonic() - t:.1f}s after the event stored ({pending})")
        return time.monotonic() - t

    def traffic_for(self, seconds: float) -> int:
        before = self.traffic.acked_count()
        time.sleep(seconds)
        got = self.traffic.acked_count() - before
        self.assertGreater(got, 0, f"no 202 at all in {seconds}s of traffic ({self.traffic.summary()})")
        return got

    def finish_and_verify(self, tokens: dict, log: list):
        tr = self.traffic
        tr.stop()
        self.assertEqual(tr.rejected, {}, "definitive non-202 answers to valid messages")
        # A sentinel per conversation, sent after everything else.
        for conv, members in self.convs:
            mid = send_text(self.api, members[0].token, conv, "sentinel")
            tr.record(mid, conv, members[0].id, "sentinel", acked=True)
        t0 = time.monotonic()
        hist = wait_all_acked_stored(self.api, tokens, tr, timeout=60, page=PAGE)
        log.append(f"backlog stored in {time.monotonic() - t0:.1f}s")
        stored = sum(len(h) for h in hist.values())
        unanswered = set(tr.attempted) - tr.acked
        present = unanswered & {m["message_id"] for h in hist.values() for m in h}
        note = f"{tr.summary()} stored={stored} unanswered_stored={len(present)}; " + "; ".join(log)
        print(f"\n[{self._testMethodName}] {note}")
        self.assertEqual(exactly_once_problems(hist, tr), [], f"exactly-once violated ({note})")

    # -- tests -------------------------------------------------------------------------------
    def test_a_router_killed_and_restarted(self):
        tokens = self.setup_traffic()
        r1, r2 = self.routers[:2]
        log = []
        self.traffic.start()
        self.wait_router_stores(r1, "router 1 to store messages")
        self.wait_router_stores(r2, "router 2 to own partitions and store messages")
        log.append(f"both routers storing (r1 {self.stored(r1):.0f}, r2 {self.stored(r2):.0f})")
        log.append(f"acks before kill {self.traffic_for(3)}")

        t_kill = time.monotonic()
        r2.kill9()
        log.append(f"acks right after kill -9 {self.traffic_for(3)}")
        took = self.wait_stored_since(t_kill, TAKEOVER_TIMEOUT_S)
        log.append(f"router 1 took over in {took:.1f}s")
        r1_after = self.stored(r1)

        r2.start()
        self.wait_router_stores(r2, "the restarted router 2 to get partitions back and store messages")
        log.append(f"acks after restart {self.traffic_for(3)}")
        self.assertGreater(self.stored(r1), r1_after, "router 1 stopped storing after router 2 came back")
        self.finish_and_verify(tokens, log)

    def test_b_router_joins_and_leaves(self):
        tokens = self.setup_traffic()
        r1, r2, r3 = self.routers
        log = []
        self.traffic.start()
        self.wait_router_stores(r1, "router 1 to store messages")
        self.wait_router_stores(r2, "router 2 to own partitions and store messages")
        log.append(f"acks with two routers {self.traffic_for(2)}")

        r3.start()
        self.wait_router_stores(r3, "the joining router 3 to get partitions and store messages")
        log.append(f"acks with three routers {self.traffic_for(3)}")

        t_leave = time.monotonic()
        r3.stop()  # SIGTERM under traffic: leaves the group, exit code 0
        log.append(f"router 3 left in {time.monotonic() - t_leave:.1f}s")
        log.append(f"acks after it left {self.traffic_for(2)}")
        took = self.wait_stored_since(t_leave, TAKEOVER_TIMEOUT_S)
        log.append(f"routers 1+2 took over in {took:.1f}s")
        log.append(f"stored by r1 {self.stored(r1):.0f}, r2 {self.stored(r2):.0f}")
        self.finish_and_verify(tokens, log)


if __name__ == "__main__":
    unittest.main()
