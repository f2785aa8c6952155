"""The happy paths of the HTTP API, end to end against the real binary (SPEC §2, §3)."""

import re
import time
import unittest
import uuid

from harness import (DEFAULT_PASSWORD, Api, Server, ServerTestCase, User, create_conversation, get_message,
                     history_all, jwt_claims, make_token, new_id, send_text, unique_name, wait_for, wait_status,
                     wait_stored)

STATUS_RANK = {"ACCEPTED": 0, "DELIVERED": 1, "READ": 2, "FAILED": 3}
# Timestamps may have one-second resolution: activities that must be ordered are spaced by this.
ACTIVITY_GAP = 1.05


class ApiFlowTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = User(cls.api, "alice")
        cls.bob = User(cls.api, "bob")
        cls.carol = User(cls.api, "carol")

    # ---------------------------------------------------------------------------------- ops
    def test_healthz_readyz(self):
        r = self.api.get("/healthz")
        self.assertEqual(r.status, 200, r)
        r = self.api.get("/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertIsNotNone(r.headers.get("X-Request-ID"))
        # Every dependency by name; Redis (cluster mode) may still be connecting at first.
        r = wait_for(lambda: (lambda x: x if x.json["dependencies"].get("fanout") == "ok" else None)(
            self.api.get("/readyz")), timeout=15, what="the fan-out connected")
        deps = r.json["dependencies"]
        self.assertEqual(deps["startup"], "ok", r)
        self.assertEqual(deps["store"], "ok", r)

    def test_metrics_after_traffic(self):
        a, b = self.alice, self.bob
        conv = create_conversation(self.api, a.token, [b.id], "private")["id"]
        ids = [send_text(self.api, a.token, conv, f"metrics {i}") for i in range(3)]
        wait_stored(self.api, a.token, conv, ids)
        self.api.get("/v1/does-not-exist", token=a.token)
        r = self.api.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue((r.headers.get("Content-Type") or "").startswith("text/plain"), r.headers)
        text = r.raw.decode()
        counters = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) counter$", text, re.M)}
        self.assertTrue(counters, "no counter metric in /metrics")
        sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN|\+Inf)(?: \d+)?$", re.M)
        samples = [(m.group(1), m.group(2) or "", float(m.group(3))) for m in sample.finditer(text)]
        self.assertTrue(samples, "no samples in /metrics")
        request_counts = [v for n, _, v in samples
                          if "request" in n and (n in counters or n.endswith("_total")) and v > 0]
        self.assertTrue(request_counts, "no HTTP request counter with a positive value in /metrics:\n" + text[:3000])
        self.assertTrue(any("message" in n + l and "accept" in n + l and v >= 3 for n, l, v in samples),
                        "no 'messages accepted' metric counting the 3 messages sent:\n" + text[:3000])
        # Low-cardinality labels: no raw ids in route labels.
        self.assertNotIn(f"/v1/conversations/{conv}/", text)
        self.assertNotIn(ids[0], text)

    def test_openapi_document(self):
        r = self.api.get("/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(str(r.json.get("openapi", "")).startswith("3"), r)
        paths = r.json.get("paths", {})
        for p in ("/auth/register", "/auth/token", "/auth/refresh", "/auth/revoke", "/auth/me",
                  "/v1/conversations", "/v1/messages", "/v1/messages:batch"):
            self.assertIn(p, paths, f"openapi.json does not describe {p}")

    def test_request_id_echo(self):
        rid = f"e2e-{uuid.uuid4().hex}"
        for method, path, token in (("GET", "/healthz", None), ("GET", "/auth/me", self.alice.token),
                                    ("GET", "/auth/me", None), ("GET", "/v1/nope", self.alice.token)):
            r = self.api.request(method, path, token=token, headers={"X-Request-ID": rid})
            self.assertEqual(r.headers.get("X-Request-ID"), rid, f"{method} {path} -> {r!r}")
        r = self.api.get("/healthz")
        generated = r.headers.get("X-Request-ID")
        self.assertTrue(generated, "no X-Request-ID when the request had none")
        r2 = self.api.get("/healthz")
        self.assertNotEqual(r2.headers.get("X-Request-ID"), generated, "request ids must be unique")

    # --------------------------------------------------------------------------------- auth
    def test_register_and_login_variants(self):
        name = unique_name("reg")
        r = self.api.post("/auth/register", json={"username": name, "password": DEFAULT_PASSWORD})
        self.assertEqual(r.status, 201, r)
        self.assertIsInstance(r.json["user_id"], int)
        self.assertEqual(r.json["username"], name)
        self.assertIn("created_at", r.json)
        self.assertNotIn("password", r.json)
        uid = r.json["user_id"]

        logins = [
            ("json", dict(json={"username": name, "password": DEFAULT_PASSWORD})),
            ("json password grant", dict(json={"grant_type": "password", "username": name,
                                               "password": DEFAULT_PASSWORD})),
            ("json client_credentials", dict(json={"grant_type": "client_credentials", "client_id": name,
                                                   "client_secret": DEFAULT_PASSWORD})),
            ("form", dict(form={"username": name, "password": DEFAULT_PASSWORD})),
            ("form password grant", dict(form={"grant_type": "password", "username": name,
                                               "password": DEFAULT_PASSWORD})),
            ("form client_credentials", dict(form={"grant_type": "client_credentials", "client_id": name,
                                                   "client_secret": DEFAULT_PASSWORD})),
        ]
        for label, kw in logins:
            with self.subTest(label):
                r = self.api.post("/auth/token", **kw)
                self.assertEqual(r.status, 200, r)
                body = r.json
                self.assertEqual(body["token_type"], "Bearer")
                self.assertIsInstance(body["expires_in"], int)
                self.assertGreater(body["expires_in"], 0)
                self.assertIsInstance(body["refresh_token"], str)
                self.assertTrue(body["refresh_token"])
                self.assertIn("scope", body)
                claims = jwt_claims(body["access_token"])
                self.assertEqual(claims["sub"], str(uid))
                self.assertEqual(claims["user_id"], uid)
                self.assertEqual(claims["iss"], "chat4all")
                self.assertIn("jti", claims)
                self.assertAlmostEqual(claims["exp"] - claims["iat"], body["expires_in"], delta=2)
                self.assertAlmostEqual(claims["iat"], time.time(), delta=60)
                me = self.api.get("/auth/me", token=body["access_token"])
                self.assertEqual(me.status, 200, me)
                self.assertEqual(me.json["user_id"], uid)

    def test_me(self):
        r = self.api.get("/auth/me", token=self.alice.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["user_id"], self.alice.id)
        self.assertEqual(r.json["username"], self.alice.name)
        self.assertIn("created_at", r.json)

    def test_token_forged_with_the_configured_secret_is_accepted(self):
        # The harness's forger must produce what the server produces (the other suites rely on it).
        tok = make_token(self.alice.token)
        r = self.api.get("/auth/me", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["user_id"], self.alice.id)

    def test_refresh_rotation_and_reuse_detection(self):
        u = User(self.api, "rot")
        r1 = self.api.post("/auth/refresh", json={"refresh_token": u.refresh})
        self.assertEqual(r1.status, 200, r1)
        self.assertEqual(r1.json["token_type"], "Bearer")
        self.assertNotEqual(r1.json["refresh_token"], u.refresh, "refresh token was not rotated")
        self.assertEqual(jwt_claims(r1.json["access_token"])["user_id"], u.id)
        r = self.api.get("/auth/me", token=r1.json["access_token"])
        self.assertEqual(r.status, 200, r)

        r2 = self.api.post("/auth/refresh", json={"refresh_token": r1.json["refresh_token"]})
        self.assertEqual(r2.status, 200, r2)
        newest = r2.json["refresh_token"]

        # Reusing a rotated token: refused, and the whole family is revoked.
        r = self.api.post("/auth/refresh", json={"refresh_token": u.refresh})
        self.assertError(r, 401, "invalid_grant")
        r = self.api.post("/auth/refresh", json={"refresh_token": newest})
        self.assertError(r, 401, "invalid_grant", "newest token of a revoked family")

        # A separate login starts a new family that still works.
        r = self.api.post("/auth/token", json={"username": u.name, "password": u.password})
        self.assertEqual(r.status, 200, r)
        r = self.api.post("/auth/refresh", json={"refresh_token": r.json["refresh_token"]})
        self.assertEqual(r.status, 200, r)

    def test_revoke_refresh_and_access(self):
        u = User(self.api, "rev")
        r = self.api.post("/auth/revoke", json={"token": u.refresh}, token=u.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"revoked": True})
        r = self.api.post("/auth/refresh", json={"refresh_token": u.refresh})
        self.assertError(r, 401, "invalid_grant")

        other = self.api.post("/auth/token", json={"username": u.name, "password": u.password}).json
        r = self.api.post("/auth/revoke", json={"token": u.token}, token=u.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"revoked": True})
        r = self.api.get("/auth/me", token=u.token)
        self.assertError(r, 401, "token_revoked")
        # Another token of the same user is unaffected.
        r = self.api.get("/auth/me", token=other["access_token"])
        self.assertEqual(r.status, 200, r)

    # ------------------------------------------------------------------------ conversations
    def test_private_conversation_is_unique_per_pair(self):
        a, b = User(self.api, "pa"), User(self.api, "pb")
        r = self.api.post("/v1/conversations", json={"type": "private", "member_ids": [b.id]}, token=a.token)
        self.assertEqual(r.status, 201, r)
        conv = r.json
        self.assertIsInstance(conv["id"], int)
        self.assertEqual(conv["type"], "private")
        self.assertEqual(sorted(conv["member_ids"]), sorted([a.id, b.id]))
        self.assertIn("created_at", conv)
        for who, members in ((a, [b.id]), (b, [a.id]), (a, [a.id, b.id, b.id])):
            r = self.api.post("/v1/conversations", json={"type": "private", "member_ids": members},
                              token=who.token)
            self.assertEqual(r.status, 200, f"re-create private {members} by {who}: {r!r}")
            self.assertEqual(r.json["id"], conv["id"])
            self.assertEqual(sorted(r.json["member_ids"]), sorted([a.id, b.id]))
        # Both see exactly one conversation.
        for who in (a, b):
            r = self.api.get("/v1/conversations", token=who.token)
            self.assertEqual(r.status, 200, r)
            self.assertEqual([i["conversation_id"] for i in r.json["items"]], [conv["id"]])
            self.assertEqual(r.json["total"], 1)

    def test_group_conversation(self):
        a, b, c = self.alice, self.bob, self.carol
        body = {"type": "group", "member_ids": [b.id, c.id, c.id, a.id], "name": "Team", "description": "desc"}
        r = self.api.post("/v1/conversations", json=body, token=a.token)
        self.assertEqual(r.status, 201, r)
        g = r.json
        self.assertEqual(g["type"], "group")
        self.assertEqual(g["name"], "Team")
        self.assertEqual(g["description"], "desc")
        self.assertEqual(sorted(g["member_ids"]), sorted([a.id, b.id, c.id]))
        # A second group with the same members is a new conversation.
        r = self.api.post("/v1/conversations", json=body, token=a.token)
        self.assertEqual(r.status, 201, r)
        self.assertNotEqual(r.json["id"], g["id"])
        # Every member can read it; the creator did not have to list themselves.
        r = self.api.post("/v1/conversations", json={"type": "group", "member_ids": [b.id, c.id]}, token=a.token)
        self.assertEqual(r.status, 201, r)
        self.assertIn(a.id, r.json["member_ids"])
        for who in (a, b, c):
            h = self.api.get(f"/v1/conversations/{g['id']}/messages", token=who.token)
            self.assertEqual(h.status, 200, h)
            self.assertEqual(h.json["messages"], [])
            self.assertFalse(h.json["has_more"])

    def test_list_conversations_order_unread_and_paging(self):
        u, p1, p2, p3 = (User(self.api, n) for n in ("lister", "p1", "p2", "p3"))
        c1 = create_conversation(self.api, u.token, [p1.id], "private")["id"]
        time.sleep(ACTIVITY_GAP)
        c2 = create_conversation(self.api, u.token, [p2.id], "private")["id"]
        time.sleep(ACTIVITY_GAP)
        c3 = create_conversation(self.api, u.token, [p2.id, p3.id], "group", name="g3")["id"]

        def listing(**q):
            qs = "&".join(f"{k}={v}" for k, v in q.items())
            r = self.api.get("/v1/conversations" + (f"?{qs}" if qs else ""), token=u.token)
            self.assertEqual(r.status, 200, r)
            return r.json

        l = listing()
        self.assertEqual([i["conversation_id"] for i in l["items"]], [c3, c2, c1], "no messages: newest created first")
        self.assertEqual(l["total"], 3)
        self.assertFalse(l["has_more"])
        for i in l["items"]:
            self.assertIsNone(i["last_message"])
            self.assertEqual(i["unread_count"], 0)
            self.assertIn("created_at", i)
        by_id = {i["conversation_id"]: i for i in l["items"]}
        self.assertEqual(by_id[c3]["member_count"], 3)
        self.assertEqual(by_id[c3]["type"], "group")
        self.assertEqual(by_id[c3]["name"], "g3")
        self.assertEqual(by_id[c1]["member_count"], 2)

        time.sleep(ACTIVITY_GAP)
        m1 = [send_text(self.api, p1.token, c1, f"from p1 #{i}") for i in range(3)]
        wait_stored(self.api, u.token, c1, m1)
        l = listing()
        self.assertEqual([i["conversation_id"] for i in l["items"]], [c1, c3, c2])
        top = l["items"][0]
        self.assertEqual(top["unread_count"], 3)
        lm = top["last_message"]
        self.assertEqual(lm["message_id"], m1[-1])
        self.assertEqual(lm["seq"], 3)
        self.assertEqual(lm["sender_id"], p1.id)
        self.assertEqual(lm["preview"], "from p1 #2")
        self.assertIn("created_at", lm)

        time.sleep(ACTIVITY_GAP)
        m2 = send_text(self.api, u.token, c2, "mine does not count as unread")
        wait_stored(self.api, u.token, c2, [m2])
        l = listing()
        self.assertEqual([i["conversation_id"] for i in l["items"]], [c2, c1, c3])
        self.assertEqual(l["items"][0]["unread_count"], 0)
        self.assertEqual(l["items"][0]["last_message"]["sender_id"], u.id)

        p = listing(limit=2)
        self.assertEqual([i["conversation_id"] for i in p["items"]], [c2, c1])
        self.assertEqual((p["total"], p["limit"], p["offset"], p["has_more"]), (3, 2, 0, True))
        p = listing(limit=2, offset=2)
        self.assertEqual([i["conversation_id"] for i in p["items"]], [c3])
        self.assertEqual((p["total"], p["limit"], p["offset"], p["has_more"]), (3, 2, 2, False))
        p = listing(limit=2, offset=10)
        self.assertEqual(p["items"], [])
        self.assertFalse(p["has_more"])
        # Another member's view: only their conversation, and their own messages are not unread.
        r = self.api.get("/v1/conversations", token=p1.token)
        self.assertEqual([i["conversation_id"] for i in r.json["items"]], [c1])
        self.assertEqual(r.json["items"][0]["unread_count"], 0)

    # ----------------------------------------------------------------------------- messages
    def test_send_and_page_history_both_ways(self):
        a, b = User(self.api, "ha"), User(self.api, "hb")
        conv = create_conversation(self.api, a.token, [b.id], "private")["id"]
        ids = []
        for i in range(25):
            sender = a if i % 3 else b
            m = {"message_id": new_id(), "conversation_id": conv, "payload": {"type": "text", "content": f"m{i + 1}"}}
            r = self.api.post("/v1/messages", json=m, token=sender.token)
            self.assertEqual(r.status, 202, r)
            self.assertEqual(r.json, {"status": "accepted", "message_id": m["message_id"], "conversation_id": conv})
            ids.append((m["message_id"], sender))
        hist = wait_stored(self.api, b.token, conv, [i for i, _ in ids])
        self.assertEqual([m["seq"] for m in hist], list(range(1, 26)))
        for m, (mid, sender) in zip(hist, ids):
            self.assertEqual(m["message_id"], mid)
            self.assertEqual(m["conversation_id"], conv)
            self.assertEqual(m["sender_id"], sender.id)
            self.assertEqual(m["sender_username"], sender.name)
            self.assertEqual(m["payload"], {"type": "text", "content": f"m{m['seq']}"})
            self.assertEqual(m["channels"], [])
            self.assertIn(m["status"], ("ACCEPTED", "DELIVERED", "READ"))
            self.assertIn("created_at", m)

        def page(**q):
            qs = "&".join(f"{k}={v}" for k, v in q.items())
            r = self.api.get(f"/v1/conversations/{conv}/messages?{qs}", token=a.token)
            self.assertEqual(r.status, 200, r)
            return [m["seq"] for m in r.json["messages"]], r.json["has_more"]

        # Newest first by default.
        self.assertEqual(page(limit=10), (list(range(25, 15, -1)), True))
        self.assertEqual(page(limit=10, before_seq=16), (list(range(15, 5, -1)), True))
        self.assertEqual(page(limit=10, before_seq=6), ([5, 4, 3, 2, 1], False))
        self.assertEqual(page(limit=5, before_seq=6), ([5, 4, 3, 2, 1], False))
        self.assertEqual(page(limit=10, before_seq=1), ([], False))
        self.assertEqual(page(limit=5, offset=5), (list(range(20, 15, -1)), True))
        r = self.api.get(f"/v1/conversations/{conv}/messages", token=a.token)
        self.assertEqual(len(r.json["messages"]), 25, "default limit is 50")
        self.assertFalse(r.json["has_more"])
        # Oldest first with after_seq (catch-up).
        self.assertEqual(page(limit=10, after_seq=0), (list(range(1, 11)), True))
        self.assertEqual(page(limit=10, after_seq=10), (list(range(11, 21)), True))
        self.assertEqual(page(limit=10, after_seq=20), ([21, 22, 23, 24, 25], False))
        self.assertEqual(page(limit=5, after_seq=20), ([21, 22, 23, 24, 25], False))
        self.assertEqual(page(limit=10, after_seq=25), ([], False))
        self.assertEqual(page(limit=100, after_seq=0), (list(range(1, 26)), False))

    def test_get_message_with_status_history(self):
        a, b = User(self.api, "sa"), User(self.api, "sb")
        conv = create_conversation(self.api, a.token, [b.id], "private")["id"]
        mid = send_text(self.api, a.token, conv, "status please")
        m = wait_status(self.api, a.token, mid, "DELIVERED")
        self.assertEqual(m["message_id"], mid)
        self.assertEqual(m["conversation_id"], conv)
        self.assertEqual(m["seq"], 1)
        self.assertEqual(m["sender_id"], a.id)
        self.assertEqual(m["payload"], {"type": "text", "content": "status please"})
        self.assertEqual(m["channels"], [])
        self.assertIn("created_at", m)
        hist = m["status_history"]
        self.assertIsInstance(hist, list)
        statuses = [h["status"] for h in hist]
        self.assertEqual(statuses[0], "ACCEPTED", hist)
        self.assertIn("DELIVERED", statuses)
        self.assertEqual(statuses[-1], "DELIVERED")
        for h in hist:
            self.assertIn("at", h)
        ranks = [STATUS_RANK[s] for s in statuses]
        self.assertEqual(ranks, sorted(ranks), f"status history must only move forward: {statuses}")
        # The other member can read it too.
        r = get_message(self.api, b.token, mid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["message_id"], mid)

    def test_channels_round_trip(self):
        a, b = User(self.api, "ca"), User(self.api, "cb")
        conv = create_conversation(self.api, a.token, [b.id], "private")["id"]
        mid = send_text(self.api, a.token, conv, "to whatsapp and telegram", channels=["whatsapp", "telegram"])
        mid2 = send_text(self.api, a.token, conv, "internal only", channels=[])
        hist = wait_stored(self.api, b.token, conv, [mid, mid2])
        by_id = {m["message_id"]: m for m in hist}
        self.assertEqual(sorted(by_id[mid]["channels"]), ["telegram", "whatsapp"])
        self.assertEqual(by_id[mid2]["channels"], [])
        r = get_message(self.api, a.token, mid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(r.json["channels"]), ["telegram", "whatsapp"])

    def test_mark_read_private(self):
        a, b = User(self.api, "ra"), User(self.api, "rb")
        conv = create_conversation(self.api, a.token, [b.id], "private")["id"]
        ids = [send_text(self.api, a.token, conv, f"read me {i}") for i in range(5)]
        wait_stored(self.api, b.token, conv, ids)
        for mid in ids:
            wait_status(self.api, a.token, mid, "DELIVERED")

        def unread(who):
            r = self.api.get("/v1/conversations", token=who.token)
            return {i["conversation_id"]: i["unread_count"] for i in r.json["items"]}[conv]

        self.assertEqual(unread(b), 5)
        self.assertEqual(unread(a), 0, "own messages are not unread")

        def read(who, **body):
            r = self.api.post(f"/v1/conversations/{conv}/read", json=body, token=who.token)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["conversation_id"], conv)
            return r.json["last_read_seq"], r.json["messages_marked_read"]

        self.assertEqual(read(b, up_to_seq=3), (3, 3))
        self.assertEqual(unread(b), 2)
        for mid in ids[:3]:
            wait_status(self.api, a.token, mid, "READ")
        for mid in ids[3:]:
            self.assertEqual(get_message(self.api, a.token, mid).json["status"], "DELIVERED")
        self.assertEqual(read(b), (5, 2))
        self.assertEqual(unread(b), 0)
        self.assertEqual(read(b), (5, 0), "reading again marks nothing")
        self.assertEqual(read(b, up_to_seq=1), (5, 0), "read state never moves back")
        m = wait_status(self.api, a.token, ids[4], "READ")
        statuses = [h["status"] for h in m["status_history"]]
        self.assertEqual(statuses[0], "ACCEPTED")
        self.assertEqual(statuses[-1], "READ")
        self.assertIn("DELIVERED", statuses)
        # And the other way round: b's reply becomes READ when a reads.
        mid = send_text(self.api, b.token, conv, "reply")
        wait_status(self.api, b.token, mid, "DELIVERED")
        self.assertEqual(read(a), (6, 1))
        wait_status(self.api, b.token, mid, "READ")

    def test_mark_read_group_read_by(self):
        a, b, c = User(self.api, "ga"), User(self.api, "gb"), User(self.api, "gc")
        conv = create_conversation(self.api, a.token, [b.id, c.id], "group")["id"]
        mid = send_text(self.api, a.token, conv, "group read")
        wait_status(self.api, a.token, mid, "DELIVERED")
        r = self.api.post(f"/v1/conversations/{conv}/read", json={}, token=c.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["last_read_seq"], r.json["messages_marked_read"]), (1, 1))

        def read_by():
            m = get_message(self.api, a.token, mid).json
            rb = m.get("read_by")
            n = len(rb) if isinstance(rb, list) else rb
            return m if n == 1 else None

        m = wait_for(read_by, 10, what="read_by == 1")
        if isinstance(m["read_by"], list):
            self.assertEqual([x if isinstance(x, int) else x.get("user_id") for x in m["read_by"]], [c.id])

    def test_user_sees_only_own_conversations(self):
        a, b, c = User(self.api, "oa"), User(self.api, "ob"), User(self.api, "oc")
        ab = create_conversation(self.api, a.token, [b.id], "private")["id"]
        create_conversation(self.api, b.token, [c.id], "private")
        r = self.api.get("/v1/conversations", token=a.token)
        self.assertEqual([i["conversation_id"] for i in r.json["items"]], [ab])


class FanoutDownTest(ServerTestCase):
    """Redis unreachable: /readyz shows the fan-out down but stays ready, and REST goes on."""

    server_env = {"CHAT4ALL_FANOUT_BACKEND": "redis", "CHAT4ALL_FANOUT_REDIS_URL": "redis://127.0.0.1:9"}

    def test_ready_with_the_fanout_down(self):
        r = self.api.get("/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "ready", r)
        self.assertTrue(r.json["dependencies"]["fanout"].startswith("down: not connected to Redis"), r)
        alice, bob = User(self.api, "alice"), User(self.api, "bob")
        conv = create_conversation(self.api, alice.token, [bob.id], "private")["id"]
        wait_stored(self.api, alice.token, conv, [send_text(self.api, alice.token, conv, "still here")])


class LoginThrottleTest(ServerTestCase):
    """SPEC §8: failed logins are counted per username and per client IP for a minute; at the
    limit the next attempts get 429 + Retry-After without the password being checked."""

    server_env = {"CHAT4ALL_AUTH_LOGIN_FAILURES_PER_USER": "3", "CHAT4ALL_AUTH_LOGIN_FAILURES_PER_IP": "5"}

    def login(self, name, password):
        return self.api.post("/auth/token", json={"username": name, "password": password}, allow_429=True)

    def test_failures_per_username_then_per_ip(self):
        carol = User(self.api, "carol")
        for _ in range(6):  # successes are not counted
            self.assertEqual(self.login(carol.name, carol.password).status, 200)
        alice = User(self.api, "alice")
        for _ in range(3):
            self.assertError(self.login(alice.name, "wrong password"), 401)
        # The right password no longer helps: the username is throttled for the minute.
        r = self.login(alice.name, alice.password)
        self.assertError(r, 429, "login_throttled")
        self.assertEqual(r.headers.get("Retry-After"), "60", r)
        # Another username from the same IP: 2 more failures reach the IP's limit of 5 ...
        bob = User(self.api, "bob")
        for _ in range(2):
            self.assertError(self.login(bob.name, "wrong password"), 401)
        self.assertError(self.login(bob.name, bob.password), 429, "login_throttled")
        self.assertError(self.login(carol.name, carol.password), 429, "login_throttled")
        # ... while access tokens already issued keep working.
        self.assertEqual(self.api.get("/auth/me", token=carol.token).status, 200)


class TokenExpiryTest(ServerTestCase):
    """A real (not forged) access token expires after CHAT4ALL_AUTH_ACCESS_TTL_S."""
    server_env = {"CHAT4ALL_AUTH_ACCESS_TTL_S": "2"}

    def test_access_token_expires(self):
        u = User(self.api, "exp")
        r = self.api.post("/auth/token", json={"username": u.name, "password": u.password})
        self.assertEqual(r.json["expires_in"], 2, r)
        tok, refresh = r.json["access_token"], r.json["refresh_token"]
        self.assertEqual(self.api.get("/auth/me", token=tok).status, 200)
        exp = jwt_claims(tok)["exp"]
        time.sleep(max(0.0, exp - time.time()) + 1.5)

        def expired():
            r = self.api.get("/auth/me", token=tok)
            return r if r.status == 401 else None

        r = wait_for(expired, 70, interval=1, what="access token to expire")
        self.assertError(r, 401, "token_expired")
        # The refresh token still works after the access token expired.
        r = self.api.post("/auth/refresh", json={"refresh_token": refresh})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.api.get("/auth/me", token=r.json["access_token"]).status, 200)


class CliTest(unittest.TestCase):
    def test_version_and_help(self):
        srv = Server(name="cli")
        try:
            p = srv.cli("version")
            self.assertEqual(p.returncode, 0, p)
            self.assertTrue(p.stdout.strip(), "version printed nothing")
            p = srv.cli("--help")
            self.assertEqual(p.returncode, 0, p)
            self.assertIn("serve", p.stdout + p.stderr)
            p = srv.cli("serve", "--help")
            self.assertEqual(p.returncode, 0, p)
            self.assertIn("--listen", p.stdout + p.stderr)
            self.assertIn("--data-dir", p.stdout + p.stderr)
        finally:
            srv.cleanup()

    def test_user_add_then_login_and_sigterm(self):
        srv = Server(name="useradd")
        try:
            name = unique_name("cli")
            p = srv.cli("user", "add", name, "--data-dir", srv.data_dir, stdin=DEFAULT_PASSWORD + "\n")
            self.assertEqual(p.returncode, 0, p)
            srv.start()
            api = Api(srv)
            r = api.post("/auth/token", json={"username": name, "password": DEFAULT_PASSWORD})
            self.assertEqual(r.status, 200, f"{r!r}\n{srv.log_tail(40)}")
            r = api.get("/auth/me", token=r.json["access_token"])
            self.assertEqual(r.json["username"], name)
            r = api.post("/auth/token", json={"username": name, "password": "wrong-password"})
            self.assertEqual((r.status, r.code), (401, "invalid_credentials"), r)
            api.close()
            srv.stop()  # asserts exit code 0
            # Data survives a restart.
            srv.start()
            api = Api(srv)
            r = api.post("/auth/token", json={"username": name, "password": DEFAULT_PASSWORD})
            self.assertEqual(r.status, 200, r)
            api.close()
            srv.stop()
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
