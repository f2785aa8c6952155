"""message_id is the idempotency key: retries never make a second message (SPEC §2, §3, §6)."""

import http.client
import json
import threading
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import (Resp, ServerTestCase, User, create_conversation, get_message, history_all, new_id,
                     send_text, text_message, wait_stored)


class IdempotencyTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice, cls.bob = User(cls.api, "alice"), User(cls.api, "bob")
        cls.sentinels = set()

    def fresh_conversation(self):
        a, b = self.alice, self.bob
        return create_conversation(self.api, a.token, [b.id, User(self.api, "third").id], "group")["id"]

    def settle(self, conv) -> list[dict]:
        """Sends a sentinel and waits for it: seq follows acceptance order, so everything accepted
        before the sentinel is stored by then. Returns the history without the sentinel."""
        sentinel = send_text(self.api, self.alice.token, conv, "sentinel")
        self.sentinels.add(sentinel)
        hist = wait_stored(self.api, self.alice.token, conv, [sentinel])
        self.assertEqual([m["seq"] for m in hist], list(range(1, len(hist) + 1)), "seq must be gap-free")
        ids = [m["message_id"] for m in hist]
        self.assertEqual(len(ids), len(set(ids)), f"duplicate message in history: {ids}")
        return [m for m in hist if m["message_id"] not in self.sentinels]

    def post_on_new_connection(self, body: dict, token: str, path: str = "/v1/messages") -> Resp:
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            c.request("POST", path, body=json.dumps(body).encode(),
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            r = c.getresponse()
            return Resp(r.status, r.headers, r.read())
        finally:
            c.close()

    def test_same_id_50_times_concurrently(self):
        conv = self.fresh_conversation()
        m = text_message(conv, "exactly once please")
        barrier = threading.Barrier(50)

        def send(_):
            barrier.wait(30)
            return self.post_on_new_connection(m, self.alice.token)

        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(send, range(50)))
        for r in results:
            self.assertEqual(r.status, 202, r)
            self.assertEqual(r.json, {"status": "accepted", "message_id": m["message_id"], "conversation_id": conv})
        hist = self.settle(conv)
        self.assertEqual([x["message_id"] for x in hist], [m["message_id"]])
        self.assertEqual(hist[0]["payload"], m["payload"])
        r = get_message(self.api, self.alice.token, m["message_id"])
        self.assertEqual(r.status, 200, r)
        accepted = [h for h in r.json["status_history"] if h["status"] == "ACCEPTED"]
        self.assertEqual(len(accepted), 1, f"one message, one ACCEPTED entry: {r.json['status_history']}")

        # Retried after it is stored: still the same 202 and still one message.
        for _ in range(3):
            r = self.api.post("/v1/messages", json=m, token=self.alice.token)
            self.assertEqual(r.status, 202, r)
            self.assertEqual(r.json["message_id"], m["message_id"])
        self.assertEqual(len(self.settle(conv)), 1)

    def test_same_id_different_content_is_a_conflict(self):
        conv = self.fresh_conversation()
        other_conv = self.fresh_conversation()
        m = text_message(conv, "original")
        r = self.api.post("/v1/messages", json=m, token=self.alice.token)
        self.assertEqual(r.status, 202, r)
        variants = [
            ("different content", dict(m, payload={"type": "text", "content": "changed"})),
            ("different conversation", dict(m, conversation_id=other_conv)),
        ]
        for label, body in variants:
            with self.subTest(label):
                r = self.api.post("/v1/messages", json=body, token=self.alice.token)
                self.assertError(r, 409, "conflict", label)
        hist = self.settle(conv)
        self.assertEqual([(x["message_id"], x["payload"]["content"], x["sender_id"]) for x in hist],
                         [(m["message_id"], "original", self.alice.id)])
        self.assertEqual(self.settle(other_conv), [])
        # The conflict is also detected once the original is stored (not only while in flight).
        r = self.api.post("/v1/messages", json=dict(m, payload={"type": "text", "content": "late change"}),
                          token=self.alice.token)
        self.assertError(r, 409, "conflict", "after store")
        r = self.api.post("/v1/messages", json=m, token=self.alice.token)
        self.assertEqual(r.status, 202, r)

    def test_same_id_from_another_sender_is_a_conflict(self):
        """Bob re-sending Alice's message_id with Alice's content is not a retry of Bob's own
        message: answering 202 would tell Bob that his message was accepted while it never
        will be stored as his."""
        conv = self.fresh_conversation()
        m = text_message(conv, "alice's words")
        r = self.api.post("/v1/messages", json=m, token=self.alice.token)
        self.assertEqual(r.status, 202, r)
        r = self.api.post("/v1/messages", json=m, token=self.bob.token)
        self.assertError(r, 409, "conflict", "same id and content from another sender")
        hist = self.settle(conv)
        self.assertEqual([(x["message_id"], x["sender_id"]) for x in hist], [(m["message_id"], self.alice.id)])

    def test_conflict_under_concurrency(self):
        """25 threads send content A and 25 content B with one id: exactly one content wins; every
        answer is 202 (the winner's) or 409 (the loser's), never a second message."""
        conv = self.fresh_conversation()
        mid = new_id()
        bodies = [text_message(conv, "A" if i % 2 else "B", mid) for i in range(50)]
        barrier = threading.Barrier(50)

        def send(i):
            barrier.wait(30)
            return bodies[i]["payload"]["content"], self.post_on_new_connection(bodies[i], self.alice.token)

        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(send, range(50)))
        hist = self.settle(conv)
        self.assertEqual(len(hist), 1, hist)
        winner = hist[0]["payload"]["content"]
        for content, r in results:
            if content == winner:
                self.assertEqual(r.status, 202, r)
            else:
                self.assertError(r, 409, "conflict")

    def test_batch_duplicates_inside_and_across(self):
        conv = self.fresh_conversation()
        tok = self.alice.token
        a, b, c, d, e = (text_message(conv, f"batch {x}") for x in "abcde")

        def batch(*msgs):
            r = self.api.post("/v1/messages:batch", json={"messages": list(msgs)}, token=tok)
            self.assertEqual(r.status, 202, r)
            res = r.json["results"]
            self.assertEqual(len(res), len(msgs), r)
            for m, x in zip(msgs, res):
                self.assertEqual(x["message_id"], m["message_id"], r)
            return [x["status"] for x in res], res

        statuses, _ = batch(a, a, b)
        self.assertEqual(statuses, ["accepted"] * 3, "a duplicate with the same content is accepted again")
        statuses, _ = batch(b, c, c)
        self.assertEqual(statuses, ["accepted"] * 3)
        send_text(self.api, tok, conv, d["payload"]["content"], d["message_id"])
        statuses, _ = batch(d, e)
        self.assertEqual(statuses, ["accepted"] * 2, "single then batch with the same id")
        r = self.api.post("/v1/messages", json=e, token=tok)
        self.assertEqual(r.status, 202, r)

        # Same id twice with different content inside one batch: the first wins, the second is a conflict.
        f = text_message(conv, "f first")
        f2 = dict(f, payload={"type": "text", "content": "f second"})
        statuses, res = batch(f, f2)
        self.assertEqual(statuses, ["accepted", "rejected"])
        self.assertEqual(res[1]["error"]["code"], "conflict")
        # And across batches.
        statuses, res = batch(dict(a, payload={"type": "text", "content": "a changed"}), text_message(conv, "g"))
        self.assertEqual(statuses, ["rejected", "accepted"])
        self.assertEqual(res[0]["error"]["code"], "conflict")

        hist = self.settle(conv)
        contents = [m["payload"]["content"] for m in hist]
        self.assertEqual(sorted(contents), sorted(["batch a", "batch b", "batch c", "batch d", "batch e",
                                                   "f first", "g"]))
        self.assertEqual(contents[:3], ["batch a", "batch b", "batch c"], "seq follows acceptance order")

    def test_same_batch_from_10_threads(self):
        conv = self.fresh_conversation()
        msgs = [text_message(conv, f"parallel batch {i}") for i in range(20)]
        barrier = threading.Barrier(10)

        def send(_):
            barrier.wait(30)
            return self.post_on_new_connection({"messages": msgs}, self.alice.token, "/v1/messages:batch")

        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(send, range(10)))
        for r in results:
            self.assertEqual(r.status, 202, r)
            self.assertEqual([x["status"] for x in r.json["results"]], ["accepted"] * 20, r)
        hist = self.settle(conv)
        self.assertEqual(sorted(m["message_id"] for m in hist), sorted(m["message_id"] for m in msgs))
        # Each sender's own order is kept: the 20 messages keep their relative order in seq.
        order = [m["message_id"] for m in hist]
        self.assertEqual(order, [m["message_id"] for m in msgs])

    def test_idempotency_survives_restart(self):
        conv = self.fresh_conversation()
        m = text_message(conv, "before restart")
        r = self.api.post("/v1/messages", json=m, token=self.alice.token)
        self.assertEqual(r.status, 202, r)
        self.settle(conv)
        self.api.close()
        self.server.restart()
        r = self.api.post("/v1/messages", json=m, token=self.alice.token)
        self.assertEqual(r.status, 202, r)
        r = self.api.post("/v1/messages", json=dict(m, payload={"type": "text", "content": "x"}),
                          token=self.alice.token)
        self.assertError(r, 409, "conflict")
        hist = self.settle(conv)
        self.assertEqual([x["message_id"] for x in hist], [m["message_id"]])

    def test_idempotency_after_kill9_before_store(self):
        """Accepted then SIGKILL right away (probably before the router stored it): a retry after the
        restart is the same message, stored once."""
        conv = self.fresh_conversation()
        msgs = [text_message(conv, f"crash {i}") for i in range(20)]
        for m in msgs:
            r = self.api.post("/v1/messages", json=m, token=self.alice.token)
            self.assertEqual(r.status, 202, r)
        self.server.kill9()
        self.api.close()
        self.server.start()
        # 202 meant durable: all 20 are there without any retry.
        wait_stored(self.api, self.alice.token, conv, [m["message_id"] for m in msgs])
        for m in msgs:
            r = self.api.post("/v1/messages", json=m, token=self.alice.token)
            self.assertEqual(r.status, 202, r)
        hist = self.settle(conv)
        self.assertEqual([x["message_id"] for x in hist], [m["message_id"] for m in msgs])


if __name__ == "__main__":
    unittest.main()
