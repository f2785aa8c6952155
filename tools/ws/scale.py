#!/usr/bin/env python3
"""WebSocket scale measurement (not a ctest test): N concurrent authenticated connections to
one chat4all instance on this machine, the server's memory per idle connection, and
notification latency under a steady message rate.

    tools/ws/scale.py [--connections 10000] [--users 500] [--rate 50] [--duration 30]
                      [--bin build/chat4all] [--json out.json]

What it does (bounded in count and time):
  1. raises its own open-file limit to the hard limit (the server inherits it) and starts the
     server (embedded mode, its own temporary data dir; ws.max_connections_per_user raised);
  2. registers --users users and pairs them in private conversations (user 2i with 2i+1);
  3. opens --connections WebSocket connections (?token=), spread evenly over the users, at
     most 200 handshakes in flight, each waiting for its `connected` greeting;
  4. idles 5 s and reads the server's RSS (/proc/<pid>/status): (RSS - RSS before connecting) / N
     is the memory per idle connection;
  5. sends --rate messages/s (REST, open loop, round-robin over the conversations) for
     --duration s; each message's content carries its send time, every connection of both
     members must receive it: latency = receipt - send (client-side, same clock), plus the
     server's own histogram chat4all_ws_notification_latency_seconds (accepted -> written);
  6. reports p50/p90/p99/max, deliveries expected vs received, and RSS after the load.

The client is asyncio with the stdlib RFC 6455 framing of tests/e2e/wsclient.py, in one process
on the same 2 cores as the server: its own scheduling delay is part of the latency measured.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from wsclient import (OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, encode_frame, expected_accept,  # noqa: E402
                      handshake_request, parse_response_head)

SECRET = "chat4all-scale-test-secret-0123456789-abcdefghij"
PASSWORD = "correct-horse-battery"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Http:
    def __init__(self, port: int):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path, body, token=None):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        for attempt in range(3):
            try:
                self.c.request("POST", path, body=json.dumps(body), headers=h)
                r = self.c.getresponse()
                return r.status, json.loads(r.read() or b"null")
            except (OSError, http.client.HTTPException):
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        raise RuntimeError(f"POST {path} failed")

    def get_text(self, path):
        self.c.request("GET", path)
        r = self.c.getresponse()
        return r.read().decode()


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def histogram_quantiles(metrics_text: str, name: str, qs=(0.5, 0.9, 0.99)):
    buckets = []
    for line in metrics_text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return {}
    total = buckets[-1][1]
    out = {}
    for q in qs:
        for le, c in buckets:
            if c >= q * total:
                out[f"p{int(q * 100)}"] = le
                break
    out["count"] = total
    return out


class Conn:
    __slots__ = ("reader", "writer", "uid")


class Stats:
    def __init__(self):
        self.latencies: list[float] = []
        self.received = 0
        self.closed = 0
        self.other = 0


async def open_ws(port: int, token: str, sem: asyncio.Semaphore) -> tuple:
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        path = "/ws?token=" + urllib.parse.quote(token)
        writer.write(handshake_request(f"127.0.0.1:{port}", path, key))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        status, headers = parse_response_head(head[:-4])
        if status != 101 or headers.get("sec-websocket-accept") != expected_accept(key):
            raise RuntimeError(f"handshake refused: {status}")
        op, payload = await asyncio.wait_for(read_frame(reader, writer), 60)
        if b'"connected"' not in payload:
            raise RuntimeError(f"no greeting: {payload[:100]!r}")
        return reader, writer


async def read_frame(reader, writer):
    while True:
        h = await reader.readexactly(2)
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(n) if n else b""
        op = h[0] & 0x0F
        if op == OP_PING:
            writer.write(encode_frame(OP_PONG, payload))
            continue
        return op, payload


async def pump(reader, writer, stats: Stats, stop: asyncio.Event):
    try:
        while not stop.is_set():
            op, payload = await read_frame(reader, writer)
            if op == OP_CLOSE:
                stats.closed += 1
                return
            if op == OP_TEXT and b'"message.created"' in payload:
                now = time.time_ns()
                ev = json.loads(payload)
                content = ev["message"]["payload"].get("content", "")
                if content.startswith("t="):
                    stats.latencies.append((now - int(content[2:].split(" ", 1)[0])) / 1e6)
                    stats.received += 1
            else:
                stats.other += 1
    except (asyncio.IncompleteReadError, ConnectionError):
        stats.closed += 1


def sender(port: int, convs: list, rate: float, duration: float, sent: list, stop: threading.Event):
    api = Http(port)
    t0 = time.monotonic()
    i = 0
    while not stop.is_set():
        due = t0 + i / rate
        now = time.monotonic()
        if due - t0 >= duration:
            break
        if due > now:
            time.sleep(due - now)
        conv, token = convs[i % len(convs)]
        body = {"message_id": str(__import__("uuid").uuid4()), "conversation_id": conv,
                "payload": {"type": "text", "content": f"t={time.time_ns()}"}}
        st, _ = api.post("/v1/messages", body, token)
        if st == 202:
            sent.append(conv)
        i += 1


async def main_async(args, port, pid, users, convs):
    # users: list of (uid, token); connections spread evenly
    sem = asyncio.Semaphore(200)
    n = args.connections
    t0 = time.monotonic()
    rss_before = rss_kib(pid)
    tasks = [open_ws(port, users[i % len(users)][1], sem) for i in range(n)]
    conns = await asyncio.gather(*tasks)
    t_connect = time.monotonic() - t0
    print(f"{n} connections open in {t_connect:.1f}s", flush=True)
    await asyncio.sleep(5)
    rss_idle = rss_kib(pid)
    per_conn = (rss_idle - rss_before) * 1024 / n
    print(f"server RSS {rss_before / 1024:.1f} MiB -> {rss_idle / 1024:.1f} MiB: "
          f"{per_conn / 1024:.2f} KiB per idle connection", flush=True)

    stats = Stats()
    stop = asyncio.Event()
    pumps = [asyncio.ensure_future(pump(r, w, stats, stop)) for r, w in conns]
    sent: list = []
    stop_sender = threading.Event()
    th = threading.Thread(target=sender, args=(port, convs, args.rate, args.duration, sent, stop_sender))
    t_load = time.monotonic()
    th.start()
    while th.is_alive():
        await asyncio.sleep(0.2)
    load_s = time.monotonic() - t_load
    # Deliveries expected: every connection of both members of the conversation.
    per_user = {}
    for i in range(n):
        uid = users[i % len(users)][0]
        per_user[uid] = per_user.get(uid, 0) + 1
    members = {c: m for c, m, _ in args._conv_members}
    expected = sum(sum(per_user.get(u, 0) for u in members[c]) for c in sent)
    deadline = time.monotonic() + 15
    while stats.received < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    rss_load = rss_kib(pid)
    stop.set()
    for p in pumps:
        p.cancel()
    for r, w in conns:
        w.close()
    lat = sorted(stats.latencies)
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.node()} {os.cpu_count()} cores {platform.machine()} {platform.release()}",
        "connections": n, "users": len(users), "connect_seconds": round(t_connect, 2),
        "rss_before_mib": round(rss_before / 1024, 1), "rss_idle_mib": round(rss_idle / 1024, 1),
        "bytes_per_idle_connection": round(per_conn), "rss_after_load_mib": round(rss_load / 1024, 1),
        "rate_msgs_per_s": args.rate, "load_seconds": round(load_s, 1), "messages_sent": len(sent),
        "deliveries_expected": expected, "deliveries_received": stats.received,
        "notification_ms": {"p50": round(percentile(lat, 0.5), 2), "p90": round(percentile(lat, 0.9), 2),
                            "p99": round(percentile(lat, 0.99), 2), "max": round(lat[-1], 2) if lat else None},
        "closed_during_load": stats.closed,
    }
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=0, help="server I/O threads (0 = one per core)")
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "chat4all"))
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args()
    if args.connections > 100000 or args.duration > 600 or args.users > 5000:
        ap.error("bounded: at most 100000 connections, 5000 users, 600 s")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 2 * args.connections + 1000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < args.connections + 100:
        sys.exit(f"open-file hard limit {hard} is too low for {args.connections} connections")

    tmp = tempfile.mkdtemp(prefix="chat4all-ws-scale-")
    port = free_port()
    per_user = (args.connections + args.users - 1) // args.users
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT4ALL_")}
    env.update({
        "CHAT4ALL_AUTH_JWT_SECRET": SECRET, "CHAT4ALL_AUTH_ARGON2_OPSLIMIT": "1",
        "CHAT4ALL_AUTH_ARGON2_MEMLIMIT_KIB": "8192", "CHAT4ALL_LOGGING_LEVEL": "warn",
        "CHAT4ALL_WS_MAX_CONNECTIONS_PER_USER": str(per_user + 10),
        "CHAT4ALL_SERVER_MAX_CONNECTIONS": str(args.connections + 1000),
        "CHAT4ALL_SERVER_THREADS": str(args.threads),
    })
    log = open(os.path.join(tmp, "server.log"), "wb")
    proc = subprocess.Popen([args.bin, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                             os.path.join(tmp, "data")], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("server did not start; see " + log.name)
            time.sleep(0.1)
        api = Http(port)
        users = []
        tag = os.urandom(3).hex()
        for i in range(args.users):
            name = f"scale_{tag}_{i}"
            st, body = api.post("/auth/register", {"username": name, "password": PASSWORD})
            assert st == 201, (st, body)
            st, tok = api.post("/auth/token", {"username": name, "password": PASSWORD})
            assert st == 200, (st, tok)
            users.append((body["user_id"], tok["access_token"]))
        convs, members = [], []
        for i in range(0, len(users) - 1, 2):
            (ua, ta), (ub, _) = users[i], users[i + 1]
            st, body = api.post("/v1/conversations", {"type": "private", "member_ids": [ub]}, ta)
            assert st in (200, 201), (st, body)
            convs.append((body["id"], ta))
            members.append((body["id"], (ua, ub), ta))
        args._conv_members = members
        print(f"{len(users)} users, {len(convs)} conversations", flush=True)
        result = asyncio.run(main_async(args, port, proc.pid, users, convs))
        metrics = api.get_text("/metrics")
        result["server_notification_s"] = histogram_quantiles(metrics, "chat4all_ws_notification_latency_seconds")
        result["command"] = " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
        print(json.dumps(result, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
