"""202 means durable: kill -9 the server while 16 clients send, restart, repeat (SPEC §6).

At the end every message that got a 202 is stored exactly once, seq is 1..N gap-free in every
conversation, nothing appears that was never sent, and every message reaches DELIVERED. A message
whose request got no answer may or may not be there, but never twice. Clients retry a request
that got no answer with the same message_id, as a real client would.
"""

import collections
import threading
import time
import unittest

from harness import (TRANSPORT_ERRORS, Api, ServerTestCase, User, create_conversation, history_all, new_id,
                     send_text, text_message, wait_for, wait_stored)

SINGLE_THREADS = 14
BATCH_THREADS = 2
BATCH_SIZE = 20
# Traffic runs this long between two crashes; the last cycle is a graceful SIGTERM.
CYCLES = ["kill9", "kill9", "kill9", "sigterm"]
TRAFFIC_S = 2.5


class Ledger:
    """What the clients sent and what the server answered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = {}  # message_id -> (conversation_id, sender_id, content)
        self.acked = set()  # got a 202 (or "accepted" in a batch)
        self.rejected = {}  # message_id -> unexpected definitive answer
        self.transport_errors = 0

    def attempt(self, mid, conv, sender, content):
        with self.lock:
            self.attempted[mid] = (conv, sender, content)

    def ack(self, mid):
        with self.lock:
            self.acked.add(mid)

    def reject(self, mid, what):
        with self.lock:
            self.rejected[mid] = what

    def error(self):
        with self.lock:
            self.transport_errors += 1

    def acked_count(self):
        with self.lock:
            return len(self.acked)


class DurabilityTest(ServerTestCase):

    def test_kill9_while_16_clients_send(self):
        api = self.api
        users = [User(api, f"dur{i}") for i in range(6)]
        u = users
        layout = [("private", [u[0], u[1]]), ("private", [u[2], u[3]]), ("group", [u[0], u[2], u[4]]),
                  ("group", [u[1], u[3], u[5], u[0]])]
        convs = []
        for type_, members in layout:
            c = create_conversation(api, members[0].token, [m.id for m in members[1:]], type_)
            convs.append((c["id"], members))

        ledger = Ledger()
        stop = threading.Event()
        client = Api(self.server, timeout=10)

        def post_until_answered(path, body, token):
            """None when stopped before any definitive answer."""
            while True:
                try:
                    return client.post(path, json=body, token=token, retry=False)
                except TRANSPORT_ERRORS:
                    client.close()
                    ledger.error()
                    if stop.is_set():
                        return None
                    time.sleep(0.05)

        def single_sender(t):
            try:
                single_loop(t)
            finally:
                client.close()

        def batch_sender(t):
            try:
                batch_loop(t)
            finally:
                client.close()

        def single_loop(t):
            conv, members = convs[t % len(convs)]
            user = members[(t // len(convs)) % len(members)]
            n = 0
            while not stop.is_set():
                mid = new_id()
                content = f"t{t} n{n} {mid}"
                n += 1
                ledger.attempt(mid, conv, user.id, content)
                while True:
                    r = post_until_answered("/v1/messages", text_message(conv, content, mid), user.token)
                    if r is None:
                        break
                    if r.status == 202 and r.json.get("message_id") == mid:
                        ledger.ack(mid)
                    elif r.status == 503 and not stop.is_set():  # draining or not ready: retry
                        time.sleep(0.05)
                        continue
                    else:
                        ledger.reject(mid, repr(r))
                    break

        def batch_loop(t):
            conv, members = convs[t % len(convs)]
            user = members[-1]
            n = 0
            while not stop.is_set():
                msgs = []
                for _ in range(BATCH_SIZE):
                    mid = new_id()
                    content = f"b{t} n{n} {mid}"
                    n += 1
                    ledger.attempt(mid, conv, user.id, content)
                    msgs.append(text_message(conv, content, mid))
                while True:
                    r = post_until_answered("/v1/messages:batch", {"messages": msgs}, user.token)
                    if r is None:
                        break
                    if r.status == 503 and not stop.is_set():
                        time.sleep(0.05)
                        continue
                    if r.status != 202:
                        for m in msgs:
                            ledger.reject(m["message_id"], repr(r))
                        break
                    for m, res in zip(msgs, r.json["results"]):
                        if res.get("status") == "accepted" and res.get("message_id") == m["message_id"]:
                            ledger.ack(m["message_id"])
                        else:
                            ledger.reject(m["message_id"], repr(res))
                    break

        threads = [threading.Thread(target=single_sender, args=(t,), daemon=True) for t in range(SINGLE_THREADS)]
        threads += [threading.Thread(target=batch_sender, args=(t,), daemon=True) for t in range(BATCH_THREADS)]
        progress = []
        try:
            for th in threads:
                th.start()
            for kind in CYCLES:
                before = ledger.acked_count()
                time.sleep(TRAFFIC_S)
                progress.append(ledger.acked_count() - before)
                if kind == "kill9":
                    self.server.kill9()
                    time.sleep(0.2)
                else:
                    self.server.stop()  # SIGTERM under load: drains, exits 0
                self.server.start()
            before = ledger.acked_count()
            time.sleep(TRAFFIC_S)
            progress.append(ledger.acked_count() - before)
        finally:
            stop.set()
            for th in threads:
                th.join(60)
        self.assertFalse(any(th.is_alive() for th in threads), "sender threads did not stop")
        self.assertTrue(all(p > 0 for p in progress), f"no traffic got through in some cycle: {progress}")
        self.assertEqual(ledger.rejected, {}, "definitive non-202 answers to valid messages")
        sys_note = (f"attempted={len(ledger.attempted)} acked={len(ledger.acked)} "
                    f"transport_errors={ledger.transport_errors} per-cycle acks={progress}")
        print(f"\n[durability] {sys_note}")

        # Drain: a sentinel per conversation; seq follows acceptance order, so once it is stored
        # everything accepted before it is stored too.
        for conv, members in convs:
            s = send_text(api, members[0].token, conv, "sentinel")
            wait_stored(api, members[0].token, conv, [s], timeout=90)
            ledger.attempt(s, conv, members[0].id, "sentinel")
            ledger.ack(s)

        def snapshot():
            return {conv: history_all(api, members[0].token, conv) for conv, members in convs}

        hist = snapshot()
        self.verify(hist, ledger, convs, sys_note)

        # Zero silent loss: every accepted message reaches DELIVERED (or READ) within 30 s.
        def all_delivered():
            h = snapshot()
            bad = [(m["message_id"], m["status"]) for msgs in h.values() for m in msgs
                   if m["status"] not in ("DELIVERED", "READ")]
            return h if not bad else None

        try:
            wait_for(all_delivered, 30, interval=0.5, what="every stored message DELIVERED")
        except AssertionError:
            h = snapshot()
            bad = collections.Counter(m["status"] for msgs in h.values() for m in msgs)
            raise AssertionError(f"statuses 30 s after the last crash: {dict(bad)}") from None

        # And the same after one more clean restart.
        api.close()
        self.server.restart()
        again = snapshot()
        self.assertEqual({c: [(m["message_id"], m["seq"]) for m in ms] for c, ms in again.items()},
                         {c: [(m["message_id"], m["seq"]) for m in ms] for c, ms in hist.items()},
                         "history changed across a clean restart")

    def verify(self, hist, ledger, convs, note):
        seen = collections.Counter()
        problems = []
        for conv, msgs in hist.items():
            seqs = [m["seq"] for m in msgs]
            if seqs != list(range(1, len(seqs) + 1)):
                gaps = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))[:20]
                dup_seqs = [s for s, n in collections.Counter(seqs).items() if n > 1][:20]
                problems.append(f"conversation {conv}: seq not 1..N (n={len(seqs)}, missing {gaps}, "
                                f"repeated {dup_seqs})")
            for m in msgs:
                mid = m["message_id"]
                seen[mid] += 1
                sent = ledger.attempted.get(mid)
                if sent is None:
                    problems.append(f"message {mid} in conversation {conv} was never sent")
                    continue
                if (m["conversation_id"], m["sender_id"], m["payload"].get("content")) != sent \
                        or m["conversation_id"] != conv:
                    problems.append(f"message {mid} differs from what was sent: got "
                                    f"{(m['conversation_id'], m['sender_id'], m['payload'])}, sent {sent}")
        dups = [mid for mid, n in seen.items() if n > 1]
        lost = sorted(ledger.acked - set(seen))
        if dups:
            problems.append(f"{len(dups)} messages stored more than once, e.g. {dups[:5]}")
        if lost:
            problems.append(f"{len(lost)} messages answered 202 are missing, e.g. {lost[:5]}")
        unanswered = set(ledger.attempted) - ledger.acked
        present = unanswered & set(seen)
        print(f"[durability] stored={sum(seen.values())} unanswered={len(unanswered)} "
              f"(of which stored: {len(present)})")
        self.assertEqual(problems, [], f"durability violated ({note})")


if __name__ == "__main__":
    unittest.main()
