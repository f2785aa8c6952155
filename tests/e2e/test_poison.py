"""A message the store can never take (SPEC §6): the router retries with backoff, then marks it
FAILED with the reason, sends it to the dead-letter queue and counts it; the other messages are
DELIVERED with gap-free seq, and the pipeline goes on.

The failure is injected with the test-only key router.fail_store_message_ids (the router's store
calls fail for those ids); retries are made fast (50, 100, 200 ms).
"""

import time
import unittest

from harness import (ServerTestCase, User, create_conversation, get_message, history_all, metric_value, new_id,
                     send_text, text_message, wait_for, wait_status, wait_stored)

POISON_SINGLE = new_id()
POISON_BATCH = new_id()

# SPEC §6: every accepted message ends DELIVERED/READ or FAILED within 30 s.
BOUND_S = 30.0


class PoisonTest(ServerTestCase):
    server_env = {
        "CHAT4ALL_ROUTER_FAIL_STORE_MESSAGE_IDS": f"{POISON_SINGLE},{POISON_BATCH}",
        "CHAT4ALL_ROUTER_RETRY_INITIAL_MS": "50",
        "CHAT4ALL_ROUTER_MAX_RETRIES": "3",
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice, cls.bob = User(cls.api, "alice"), User(cls.api, "bob")

    def metric(self, name):
        return metric_value(self.server, name) or 0.0

    def assert_failed(self, message_id, token):
        start = time.monotonic()
        m = wait_status(self.api, token, message_id, "FAILED", timeout=BOUND_S)
        self.assertLess(time.monotonic() - start, BOUND_S)
        hist = m["status_history"]
        self.assertEqual([h["status"] for h in hist], ["ACCEPTED", "FAILED"], m)
        detail = hist[1].get("detail", "")
        self.assertIn("not stored after 3 retries", detail)
        self.assertIn(f"injected store failure for message {message_id}", detail)
        return m

    def assert_delivered_in_order(self, conv, ids, failed):
        """History is exactly `ids` in this order, seq 1..N; `failed` FAILED, the rest DELIVERED."""
        hist = wait_stored(self.api, self.alice.token, conv, ids, timeout=BOUND_S)
        self.assertEqual([m["message_id"] for m in hist], ids)
        self.assertEqual([m["seq"] for m in hist], list(range(1, len(ids) + 1)))
        for m in hist:
            want = "FAILED" if m["message_id"] in failed else "DELIVERED"
            self.assertEqual(m["status"], want, m)

    def test_a_poisoned_message_fails_and_the_others_are_delivered(self):
        a, b = self.alice, self.bob
        conv = create_conversation(self.api, a.token, [b.id, User(self.api, "carol").id], "group")["id"]
        dlq_before = self.metric("chat4all_dlq_records_total")
        failed_before = self.metric("chat4all_messages_failed_total")

        ids = [send_text(self.api, a.token, conv, "before 1"), send_text(self.api, b.token, conv, "before 2")]
        ids.append(send_text(self.api, a.token, conv, "poison", message_id=POISON_SINGLE))
        ids += [send_text(self.api, b.token, conv, "after 1"), send_text(self.api, a.token, conv, "after 2")]

        m = self.assert_failed(POISON_SINGLE, b.token)  # any member sees it
        self.assertEqual(m["seq"], 3)
        self.assertEqual(m["payload"], {"type": "text", "content": "poison"})
        self.assert_delivered_in_order(conv, ids, {POISON_SINGLE})

        wait_for(lambda: self.metric("chat4all_dlq_records_total") >= dlq_before + 1, 10, what="DLQ metric")
        self.assertEqual(self.metric("chat4all_dlq_records_total"), dlq_before + 1)
        self.assertEqual(self.metric("chat4all_messages_failed_total"), failed_before + 1)

        # The same message again (a client retry) is answered from the store: 202, no new record.
        send_text(self.api, a.token, conv, "poison", message_id=POISON_SINGLE)
        later = send_text(self.api, a.token, conv, "the pipeline goes on")
        wait_status(self.api, a.token, later, "DELIVERED", timeout=BOUND_S)
        self.assertEqual(len(history_all(self.api, a.token, conv)), len(ids) + 1)
        self.assertEqual(self.metric("chat4all_dlq_records_total"), dlq_before + 1)
        self.assertEqual(get_message(self.api, a.token, POISON_SINGLE).json["status"], "FAILED")

    def test_a_poisoned_message_inside_a_batch(self):
        a, b = self.alice, self.bob
        conv = create_conversation(self.api, a.token, [b.id], "private")["id"]
        dlq_before = self.metric("chat4all_dlq_records_total")
        msgs = [text_message(conv, f"batch {i}") for i in range(6)]
        msgs[4] = text_message(conv, "batch poison", POISON_BATCH)
        r = self.api.post("/v1/messages:batch", json={"messages": msgs}, token=a.token)
        self.assertEqual(r.status, 202, r)
        self.assertEqual([x["status"] for x in r.json["results"]], ["accepted"] * 6, r)
        ids = [m["message_id"] for m in msgs]

        self.assert_failed(POISON_BATCH, a.token)
        self.assert_delivered_in_order(conv, ids, {POISON_BATCH})
        wait_for(lambda: self.metric("chat4all_dlq_records_total") >= dlq_before + 1, 10, what="DLQ metric")
        self.assertEqual(self.metric("chat4all_dlq_records_total"), dlq_before + 1)

    def test_z_after_a_restart_nothing_is_replayed(self):
        # Runs last (alphabetical order): the failed messages were committed past, so a
        # restarted router neither stores nor dead-letters them again.
        a = self.alice
        conv = create_conversation(self.api, a.token, [self.bob.id], "private")["id"]
        first = send_text(self.api, a.token, conv, "before restart")
        wait_status(self.api, a.token, first, "DELIVERED", timeout=BOUND_S)
        self.server.restart()
        self.api.close()
        self.assertEqual(self.metric("chat4all_dlq_records_total"), 0)
        second = send_text(self.api, a.token, conv, "after restart")
        wait_status(self.api, a.token, second, "DELIVERED", timeout=BOUND_S)
        self.assertEqual(self.metric("chat4all_dlq_records_total"), 0)
        self.assertEqual(self.metric("chat4all_messages_failed_total"), 0)
        for mid in (POISON_SINGLE, POISON_BATCH):
            r = get_message(self.api, a.token, mid)
            if r.status == 200:  # stored by an earlier test of this run
                self.assertEqual(r.json["status"], "FAILED", r)
                self.assertEqual([h["status"] for h in r.json["status_history"]], ["ACCEPTED", "FAILED"])


if __name__ == "__main__":
    unittest.main()
