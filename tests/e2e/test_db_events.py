"""Events that start in the database reach the fan-out through the outbox (cluster mode only;
SPEC §6): `conversation.created` and `conversation.read` are committed with their change in the
PostgreSQL outbox, published to Kafka by the relay, and put on Redis by the forwarder.

A raw Redis subscriber (RESP over a socket, standard library) listens on the server's channels
while the test creates a conversation and marks it read.
"""

import json
import socket
import time
import unittest

from harness import ServerTestCase, User, cluster_mode, create_conversation, metric_value, send_text, wait_for


class RedisSubscriber:
    def __init__(self, url: str, channels: list[str]):
        host, port = url[len("redis://"):].split("/")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""
        self.sock.sendall(self._command("SUBSCRIBE", *channels))
        for _ in channels:
            kind, _, _ = self.read_message(10)
            assert kind == "subscribe", kind

    @staticmethod
    def _command(*args) -> bytes:
        out = f"*{len(args)}\r\n".encode()
        for a in args:
            b = a.encode()
            out += f"${len(b)}\r\n".encode() + b + b"\r\n"
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _value(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"*":
            return [self._value() for _ in range(int(rest))]
        if t == b"$":
            n = int(rest)
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise OSError("redis closed the connection")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if t == b":":
            return int(rest)
        return rest.decode()

    def read_message(self, timeout: float):
        self.sock.settimeout(timeout)
        v = self._value()
        return v[0], v[1], v[2]

    def events(self, want: int, timeout: float) -> list[tuple[str, dict]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            try:
                kind, channel, payload = self.read_message(max(0.1, deadline - time.monotonic()))
            except socket.timeout:
                break
            if kind == "message":
                out.append((channel, json.loads(payload)))
        return out

    def close(self):
        self.sock.close()


class DatabaseEventsTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        if not cluster_mode():
            raise unittest.SkipTest("cluster mode only (CHAT4ALL_TEST_E2E_MODE=cluster)")
        super().setUpClass()

    def test_created_and_read_events_reach_redis_through_the_outbox(self):
        env = self.server.cluster_env
        prefix = env["CHAT4ALL_FANOUT_REDIS_CHANNEL_PREFIX"]
        a, b = User(self.api, "dba"), User(self.api, "dbb")
        sub = RedisSubscriber(env["CHAT4ALL_FANOUT_REDIS_URL"], [f"{prefix}user:{a.id}", f"{prefix}user:{b.id}"])
        try:
            conv = create_conversation(self.api, a.token, [b.id], "private")["id"]
            got = sub.events(2, 30)
            self.assertEqual(sorted(ch for ch, _ in got), sorted([f"{prefix}user:{a.id}", f"{prefix}user:{b.id}"]), got)
            for _, ev in got:
                self.assertEqual(ev["type"], "conversation.created")
                self.assertEqual(ev["conversation"]["id"], conv)
        finally:
            sub.close()

        mid = send_text(self.api, a.token, conv, "hello")
        wait_for(lambda: self.api.get(f"/v1/conversations/{conv}/messages", token=b.token).json["messages"], 30,
                 what="the message to be stored")
        sub = RedisSubscriber(env["CHAT4ALL_FANOUT_REDIS_URL"], [f"{prefix}conv:{conv}"])
        try:
            r = self.api.post(f"/v1/conversations/{conv}/read", json={}, token=b.token)
            self.assertEqual(r.status, 200, r)
            got = sub.events(2, 30)
            types = {ev["type"]: ev for _, ev in got}
            self.assertIn("conversation.read", types, got)
            self.assertEqual(types["conversation.read"]["user_id"], b.id)
            self.assertEqual(types["conversation.read"]["last_read_seq"], 1)
            self.assertIn("message.status", types, got)
            self.assertEqual(types["message.status"]["message_id"], mid)
            self.assertEqual(types["message.status"]["status"], "READ")
        finally:
            sub.close()
        self.assertGreaterEqual(metric_value(self.server, "chat4all_forwarded_events_total") or 0, 4)


if __name__ == "__main__":
    unittest.main()
