#!/usr/bin/env python3
"""Upload load test (bounded): starts its own chat4all server (embedded, or with the s3 blob
store on the MinIO of scripts/services/minio.sh), runs N concurrent chunked uploads of SIZE
bytes each through the SPEC §5 API, and reports chunk latency p50/p99, aggregate MB/s and the
server's resident memory (VmRSS sampled every 0.2 s from /proc) as one JSON object.

    tools/upload/load.py --uploads 20 --size-mb 200                 # fs blob store
    tools/upload/load.py --uploads 20 --size-mb 200 --s3            # MinIO (minio.sh start)
    tools/upload/load.py --uploads 100 --size-mb 50 --threads 100 --deadline 600

Every upload runs on its own thread and connection (Python stdlib only). Chunk bodies are a
10 MiB random buffer with the upload and chunk numbers written over its first bytes, so every
chunk differs without generating gigabytes of randomness. Each upload is completed and the
merge awaited (by default without a declared checksum, so the merge does not read the
file back; --checksum declares one and the merge reads and hashes the whole file). The blob
data is deleted afterwards. Bounded by --deadline (seconds): on timeout the run stops and says so.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MIB = 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Client:
    def __init__(self, port, token=None):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def call(self, method, path, body=None, headers=None):
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.conn.request(method, path, body=data, headers=h)
        r = self.conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw and raw[:1] in b"{[" else raw)

    def close(self):
        self.conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=20)
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--chunk-mb", type=int, default=10)
    ap.add_argument("--s3", action="store_true", help="s3 blob store on scripts/services/minio.sh")
    ap.add_argument("--checksum", action="store_true",
                    help="declare checksum_sha256: the merge then reads the whole file back")
    ap.add_argument("--deadline", type=float, default=600)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "chat4all"))
    ap.add_argument("--server-threads", type=int, default=0)
    args = ap.parse_args()

    size, chunk = args.size_mb * MIB, args.chunk_mb * MIB
    data_dir = tempfile.mkdtemp(prefix="chat4all-upload-load-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT4ALL_")}
    env.update({
        "CHAT4ALL_LOGGING_LEVEL": "warn",
        "CHAT4ALL_AUTH_JWT_SECRET": "load-test-secret-0123456789-abcdefghijklmnop",
        "CHAT4ALL_AUTH_ARGON2_OPSLIMIT": "1", "CHAT4ALL_AUTH_ARGON2_MEMLIMIT_KIB": "8192",
        "CHAT4ALL_UPLOADS_MAX_ACTIVE_PER_USER": "0", "CHAT4ALL_UPLOADS_MAX_BYTES_PER_USER": "0",
    })
    if args.server_threads:
        env["CHAT4ALL_SERVER_THREADS"] = str(args.server_threads)
    prefix = None
    if args.s3:
        out = subprocess.run([os.path.join(ROOT, "scripts", "services", "minio.sh"), "env"],
                             capture_output=True, text=True, check=True).stdout
        s3 = dict(line.split("=", 1) for line in out.split())
        prefix = f"load-{os.getpid()}-{int(time.time())}/"
        env.update({"CHAT4ALL_BLOBS_BACKEND": "s3",
                    "CHAT4ALL_BLOBS_S3_ENDPOINT": s3["CHAT4ALL_TEST_S3_ENDPOINT"],
                    "CHAT4ALL_BLOBS_S3_BUCKET": s3["CHAT4ALL_TEST_S3_BUCKET"],
                    "CHAT4ALL_BLOBS_S3_REGION": s3["CHAT4ALL_TEST_S3_REGION"],
                    "CHAT4ALL_BLOBS_S3_ACCESS_KEY": s3["CHAT4ALL_TEST_S3_ACCESS_KEY"],
                    "CHAT4ALL_BLOBS_S3_SECRET_KEY": s3["CHAT4ALL_TEST_S3_SECRET_KEY"],
                    "CHAT4ALL_BLOBS_S3_KEY_PREFIX": prefix})
    log = open(os.path.join(data_dir, "server.log"), "w")
    srv = subprocess.Popen([args.bin, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir], env=env, stdout=log, stderr=subprocess.STDOUT)
    stop_at = time.monotonic() + args.deadline
    try:
        for _ in range(300):
            try:
                if Client(port).call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        admin = Client(port)
        users = []
        for i in range(2):
            name = f"load{i}_{os.getpid()}"
            admin.call("POST", "/auth/register", {"username": name, "password": "correct-horse-battery"})
            st, tok = admin.call("POST", "/auth/token", {"username": name, "password": "correct-horse-battery"})
            assert st == 200, tok
            st, me = Client(port, tok["access_token"]).call("GET", "/auth/me")
            users.append((me["user_id"], tok["access_token"]))
        st, conv = Client(port, users[0][1]).call(
            "POST", "/v1/conversations", {"type": "private", "member_ids": [users[1][0]]})
        assert st == 201, conv
        token = users[0][1]

        base = random.Random(1).randbytes(chunk)
        latencies, merges, errors, lock = [], [], [], threading.Lock()
        sent = [0]

        def body(idx, n):
            length = min(chunk, size - (n - 1) * chunk)
            b = bytearray(base[:length])
            b[:8] = struct.pack(">II", idx, n)
            return bytes(b)
        rss = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                v = rss_kib(srv.pid)
                if v:
                    rss.append(v)
                time.sleep(0.2)

        def one(idx):
            c = Client(port, token)
            try:
                req = {"conversation_id": conv["id"], "filename": f"f{idx}.bin",
                       "mime_type": "application/octet-stream", "file_size": size, "chunk_size": chunk}
                if args.checksum:
                    h = hashlib.sha256()
                    for n in range(1, (size + chunk - 1) // chunk + 1):
                        h.update(body(idx, n))
                    req["checksum_sha256"] = h.hexdigest()
                st, up = c.call("POST", "/v1/files/initiate", req)
                if st != 201:
                    raise RuntimeError(f"initiate {st} {up}")
                uid = up["upload_id"]
                for n in range(1, up["total_chunks"] + 1):
                    if time.monotonic() > stop_at:
                        raise RuntimeError("deadline")
                    data = body(idx, n)
                    t0 = time.perf_counter()
                    st, r = c.call("PUT", f"/v1/files/{uid}/chunks/{n}", data,
                                   {"Content-Type": "application/octet-stream"})
                    dt = time.perf_counter() - t0
                    if st != 200:
                        raise RuntimeError(f"chunk {n}: {st} {r}")
                    with lock:
                        latencies.append(dt)
                        sent[0] += len(data)
                m0 = time.perf_counter()
                st, r = c.call("POST", f"/v1/files/{uid}/complete")
                if st != 202:
                    raise RuntimeError(f"complete {st} {r}")
                while time.monotonic() < stop_at:
                    st, r = c.call("GET", f"/v1/files/{uid}/status")
                    if r["status"] in ("COMPLETED", "FAILED"):
                        break
                    time.sleep(0.2)
                if r["status"] != "COMPLETED":
                    raise RuntimeError(f"final status {r['status']} {r.get('reason')}")
                with lock:
                    merges.append(time.perf_counter() - m0)
            except Exception as e:  # noqa: BLE001 - reported in the summary
                with lock:
                    errors.append(f"upload {idx}: {e}")
            finally:
                c.close()

        idle_rss = rss_kib(srv.pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.uploads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(1, stop_at - time.monotonic()))
        elapsed = time.perf_counter() - t0
        done.set()
        lat = sorted(latencies)
        q = (lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1)) if lat else (lambda p: None)
        summary = {
            "uploads": args.uploads, "size_mb": args.size_mb, "chunk_mb": args.chunk_mb,
            "blob_store": "s3 (MinIO)" if args.s3 else "fs",
            "completed": args.uploads - len(errors), "errors": errors[:5],
            "chunks": len(lat), "elapsed_s": round(elapsed, 1),
            "aggregate_mb_s": round(sent[0] / MIB / elapsed, 1),
            "chunk_latency_ms": {"p50": q(0.50), "p99": q(0.99), "max": round(lat[-1] * 1000, 1) if lat else None},
            "checksum_declared": args.checksum,
            "merge_s": {"p50": round(statistics.median(merges), 2), "max": round(max(merges), 2)} if merges else None,
            "server_rss_mib": {"idle": round((idle_rss or 0) / 1024, 1),
                               "max": round(max(rss) / 1024, 1) if rss else None,
                               "median": round(statistics.median(rss) / 1024, 1) if rss else None},
            "timed_out": time.monotonic() > stop_at,
        }
        print(json.dumps(summary, indent=2))
        return 0 if not errors else 1
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(30)
        except subprocess.TimeoutExpired:
            srv.kill()
        log.close()
        if os.environ.get("CHAT4ALL_LOAD_KEEP"):
            print(f"kept {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
        if prefix:
            sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
            os.environ.update({k: v for k, v in s3.items()})
            import s3_client  # noqa: E402
            for key, _ in s3_client.objects(prefix):
                s3_client.request("DELETE", key)


if __name__ == "__main__":
    sys.exit(main())
