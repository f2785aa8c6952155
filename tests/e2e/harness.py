"""End-to-end harness: start the real chat4all binary, talk to it over HTTP.

Standard library only. Used by every tests/e2e/test_*.py suite.

    srv = Server(); srv.start()
    api = Api(srv)
    uid, token, refresh = register_user(api, "alice")
    r = api.post("/v1/messages", json={...}, token=token)
    status, headers, body = r          # a Resp unpacks to a 3-tuple
    srv.stop()                          # SIGTERM, asserts exit code 0

Environment:
    CHAT4ALL_BIN             path to the chat4all binary (ctest sets it)
    CHAT4ALL_TEST_E2E_KEEP=1      keep the temporary data dirs and logs
    CHAT4ALL_TEST_E2E_LOG_LEVEL   server log level (default "warn")
    Any CHAT4ALL_* variable already in the environment is passed to the server too.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import http.client
import json as jsonlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))

# The JWT secret every test server runs with, so tests can forge and expire tokens.
TEST_SECRET = "chat4all-e2e-test-secret-0123456789-abcdefghij"
DEFAULT_PASSWORD = "correct-horse-battery"

TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


def binary_path() -> str:
    p = os.environ.get("CHAT4ALL_BIN")
    if not p:
        p = os.path.normpath(os.path.join(HERE, "..", "..", "build", "chat4all"))
    if not os.path.isfile(p) or not os.access(p, os.X_OK):
        raise RuntimeError(f"chat4all binary not found at {p!r}; set CHAT4ALL_BIN")
    return p


def cluster_mode() -> bool:
    return os.environ.get("CHAT4ALL_TEST_E2E_MODE", "embedded") == "cluster"


def cluster_env(tag: str) -> dict:
    """Backends for cluster mode (`--role all` on real PostgreSQL, Kafka and Redis, whose
    addresses scripts/test.sh exports); {} in embedded mode. Raises SkipTest when cluster mode
    is asked for but the services are not there (scripts/test.sh always provides them)."""
    if not cluster_mode():
        return {}
    need = ("CHAT4ALL_TEST_PG_URL", "CHAT4ALL_TEST_KAFKA_BOOTSTRAP", "CHAT4ALL_TEST_REDIS_URL")
    missing = [v for v in need if not os.environ.get(v)]
    if missing:
        raise unittest.SkipTest("cluster mode needs " + ", ".join(missing) + " (scripts/test.sh sets them)")
    tag = "".join(c if c.isalnum() else "_" for c in tag.lower())[-40:]
    return {
        "CHAT4ALL_STORAGE_BACKEND": "postgres",
        "CHAT4ALL_STORAGE_POSTGRES_URL": os.environ["CHAT4ALL_TEST_PG_URL"],
        "CHAT4ALL_STORAGE_POSTGRES_SCHEMA": "e2e_" + tag,
        "CHAT4ALL_STORAGE_POSTGRES_POOL_SIZE": "4",
        "CHAT4ALL_LOG_BACKEND": "kafka",
        "CHAT4ALL_LOG_KAFKA_BOOTSTRAP": os.environ["CHAT4ALL_TEST_KAFKA_BOOTSTRAP"],
        "CHAT4ALL_LOG_KAFKA_TOPIC_PREFIX": "e2e." + tag + ".",
        "CHAT4ALL_LOG_KAFKA_PARTITIONS": "8",
        "CHAT4ALL_LOG_KAFKA_REPLICATION_FACTOR": os.environ.get("CHAT4ALL_TEST_KAFKA_RF", "1"),
        "CHAT4ALL_LOG_KAFKA_MIN_INSYNC_REPLICAS": os.environ.get("CHAT4ALL_TEST_KAFKA_MIN_ISR", "1"),
        "CHAT4ALL_FANOUT_BACKEND": "redis",
        "CHAT4ALL_FANOUT_REDIS_URL": os.environ["CHAT4ALL_TEST_REDIS_URL"],
        "CHAT4ALL_FANOUT_REDIS_CHANNEL_PREFIX": "e2e:" + tag + ":",
    }


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def new_id() -> str:
    """A fresh message_id (UUID v4 text)."""
    return str(uuid.uuid4())


def unique_name(prefix: str = "u") -> str:
    prefix = "".join(c for c in prefix if c.isalnum() or c in "_.-")[:30] or "u"
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate()` until it returns a truthy value (returned) or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------

_live_servers: "weakref.WeakSet[Server]" = weakref.WeakSet()


@atexit.register
def _kill_leftovers():
    for s in list(_live_servers):
        try:
            s.kill9()
        except Exception:
            pass
        s.cleanup()


class Server:
    """One chat4all process; the data dir and port survive stop()/kill9()/start()."""

    def __init__(self, env: dict | None = None, args: list[str] | None = None, name: str = "server"):
        self.bin = binary_path()
        self.tmp = tempfile.mkdtemp(prefix=f"chat4all-e2e-{name}-")
        self.data_dir = os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self.tmp, "server.log")
        self.port = free_port()
        self.extra_env = dict(env or {})
        self.extra_args = list(args or [])
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.secret = self.extra_env.get("CHAT4ALL_AUTH_JWT_SECRET", TEST_SECRET)
        # Cluster mode: every server object gets its own PostgreSQL schema, Kafka topic prefix
        # and Redis channel prefix, kept across its restarts (like its data dir).
        self.cluster_env = cluster_env(os.path.basename(self.tmp))
        _live_servers.add(self)

    # -- environment -------------------------------------------------------------------------
    def env(self) -> dict:
        """The server's environment: test defaults, cluster backends when
        CHAT4ALL_TEST_E2E_MODE=cluster, then the test's own overrides."""
        # Hermetic: the caller's CHAT4ALL_* settings (service-script ports, a developer's own
        # config) must not leak into the server under test; only the test's own ones do.
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("CHAT4ALL_") or k.startswith("CHAT4ALL_TEST_") or k == "CHAT4ALL_BIN"}
        e.update({
            "CHAT4ALL_AUTH_JWT_SECRET": TEST_SECRET,
            "CHAT4ALL_AUTH_ARGON2_OPSLIMIT": "1",
            "CHAT4ALL_AUTH_ARGON2_MEMLIMIT_KIB": "8192",
            "CHAT4ALL_LOGGING_LEVEL": os.environ.get("CHAT4ALL_TEST_E2E_LOG_LEVEL", "warn"),
        })
        e.update(self.cluster_env)
        e.update(self.extra_env)
        return e

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 30.0):
        assert not self.running(), "server already running"
        for attempt in range(2):
            self._spawn()
            try:
                self.wait_healthy(timeout)
                return self
            except AssertionError:
                exited = self.proc.poll() is not None
                if attempt == 0 and exited and "in use" in self.log_tail(30).lower():
                    self.port = free_port()  # someone took our port while we were down
                    continue
                if not exited:
                    self.kill9()
                raise
        return self

    def _spawn(self):
        self.starts += 1
        with open(self.log_path, "ab") as f:
            f.write(f"\n===== e2e: start #{self.starts} on port {self.port} =====\n".encode())
        log = open(self.log_path, "ab")
        cmd = [self.bin, "serve", "--listen", self.base, "--data-dir", self.data_dir, *self.extra_args]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env(), start_new_session=True)
        finally:
            log.close()

    def wait_healthy(self, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with code {self.proc.returncode} during startup\n"
                                     + self.log_tail(60))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    return
                last = f"HTTP {r.status}"
            except TRANSPORT_ERRORS as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError(f"server not healthy after {timeout}s (last: {last})\n" + self.log_tail(60))

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM; asserts a clean exit (code 0) within `timeout`."""
        if not self.running():
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"server did not exit within {timeout}s of SIGTERM\n" + self.log_tail(60))
        if rc != 0:
            raise AssertionError(f"server exited with code {rc} after SIGTERM (expected 0)\n" + self.log_tail(60))
        return rc

    def kill9(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)

    def restart(self, hard: bool = False):
        if hard:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def cleanup(self):
        if self.running():
            self.kill9()
        if os.environ.get("CHAT4ALL_TEST_E2E_KEEP"):
            return
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- CLI ---------------------------------------------------------------------------------
    def cli(self, *args: str, stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, *args], input=stdin, capture_output=True, text=True,
                              env=self.env(), timeout=timeout)

    # -- logs --------------------------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_tail(self, lines: int = 100, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                data = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no server log)"
        tail = data.splitlines()[-lines:]
        return f"--- server log {self.log_path} (last {len(tail)} lines) ---\n" + "\n".join(tail)

    # -- tokens ------------------------------------------------------------------------------
    def forge(self, claims: dict, **kw) -> str:
        return forge_jwt(claims, kw.pop("secret", self.secret), **kw)


# --------------------------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------------------------


class Resp:
    """status, headers (case-insensitive .get), json (parsed or None), raw bytes."""
    __slots__ = ("status", "headers", "json", "raw")

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = jsonlib.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __iter__(self):
        return iter((self.status, self.headers, self.json))

    @property
    def code(self):
        """error.code of an error body, else None."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def __repr__(self):
        body = self.raw[:400].decode("utf-8", "replace") if self.raw else ""
        return f"<HTTP {self.status} {body}>"


class Api:
    """A tiny JSON client: one keep-alive connection per thread."""

    def __init__(self, server: Server, timeout: float = 30.0):
        self.server = server
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self, fresh: bool = False):
        c = getattr(self._local, "conn", None)
        if c is not None and (fresh or self._local.port != self.server.port):
            c.close()
            c = None
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.timeout)
            self._local.conn = c
            self._local.port = self.server.port
            self._local.used = False
        return c

    def close(self):
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def request(self, method: str, path: str, json=None, token: str | None = None, headers: dict | None = None,
                raw_body: bytes | None = None, content_type: str | None = None, retry: bool = True,
                timeout: float | None = None, form: dict | None = None, allow_429: bool = False) -> Resp:
        h = {}
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            h["Content-Type"] = "application/json"
        elif form is not None:
            body = urllib.parse.urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        elif raw_body is not None:
            body = raw_body if isinstance(raw_body, bytes) else raw_body.encode()
            h["Content-Type"] = "application/json"
        if content_type is not None:
            h["Content-Type"] = content_type
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if headers:
            h.update(headers)
        h = {k: v for k, v in h.items() if v is not None}
        if method in ("POST", "PUT", "PATCH") and body is None:
            body = b""
        for attempt in range(2):
            conn = self._conn()
            reused = self._local.used
            try:
                if timeout is not None:
                    conn.timeout = timeout
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                conn.request(method, path, body=body, headers=h)
                r = conn.getresponse()
                raw = r.read()
                self._local.used = True
                if r.will_close:
                    self.close()
                if r.status == 429 and not allow_429:
                    raise AssertionError(f"{method} {path}: HTTP 429 (rate limited) - the e2e suites need "
                                         "rate limits disabled/raised; set the CHAT4ALL_* override in the env")
                return Resp(r.status, r.headers, raw)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ConnectionAbortedError):
                self.close()
                if retry and reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: try once more
                raise
            except BaseException:
                self.close()
                raise
            finally:
                if timeout is not None and getattr(self._local, "conn", None) is not None:
                    self._local.conn.timeout = self.timeout
        raise AssertionError("unreachable")

    def get(self, path, **kw) -> Resp:
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw) -> Resp:
        return self.request("POST", path, json=json, **kw)


def raw_request(server: Server, head: bytes, body: bytes = b"", timeout: float = 30.0,
                chunk: int = 64 * 1024):
    """Send a hand-built request (head + body) on a new socket. Before each chunk it checks
    whether the server has already answered (an early 413/431 followed by a close), stops sending
    then, and reads the response. Returns a Resp, or None when the connection was closed without
    any response."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        data = memoryview(head + body) if len(body) <= (1 << 20) else None
        pieces = [memoryview(head + body)] if data is not None else [memoryview(head), memoryview(body)]
        stop = False
        for mv in pieces:
            off = 0
            while off < len(mv) and not stop:
                readable, writable, _ = select.select([s], [s], [], timeout)
                if readable:
                    stop = True  # the server answered before reading everything
                    break
                if not writable:
                    raise TimeoutError(f"could not send the request body within {timeout}s")
                try:
                    off += s.send(mv[off:off + chunk])
                except (BrokenPipeError, ConnectionResetError):
                    stop = True
            if stop:
                break
        try:
            resp = http.client.HTTPResponse(s, method=head.split(b" ", 1)[0].decode())
            resp.begin()
            raw = resp.read()
            return Resp(resp.status, resp.headers, raw)
        except (http.client.RemoteDisconnected, http.client.BadStatusLine, http.client.IncompleteRead,
                ConnectionResetError):
            return None
    finally:
        s.close()


def build_head(method: str, path: str, headers: dict) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --------------------------------------------------------------------------------------------
# Domain helpers
# --------------------------------------------------------------------------------------------


def register_user(api: Api, name: str | None = None, password: str = DEFAULT_PASSWORD):
    """Registers a fresh user (name made unique) and logs in: (user_id, access_token, refresh_token)."""
    username = unique_name(name or "user")
    r = api.post("/auth/register", json={"username": username, "password": password})
    assert r.status == 201, f"register {username}: {r!r}"
    uid = r.json["user_id"]
    r = api.post("/auth/token", json={"username": username, "password": password})
    assert r.status == 200, f"token {username}: {r!r}"
    return uid, r.json["access_token"], r.json["refresh_token"]


class User:
    """Convenience bundle for tests: u.id, u.token, u.refresh, u.name."""

    def __init__(self, api: Api, name: str = "user", password: str = DEFAULT_PASSWORD):
        self.name = unique_name(name)
        self.password = password
        r = api.post("/auth/register", json={"username": self.name, "password": password})
        assert r.status == 201, f"register {self.name}: {r!r}"
        self.id = r.json["user_id"]
        r = api.post("/auth/token", json={"username": self.name, "password": password})
        assert r.status == 200, f"token {self.name}: {r!r}"
        self.token = r.json["access_token"]
        self.refresh = r.json["refresh_token"]

    def __repr__(self):
        return f"<User {self.name} #{self.id}>"


def create_conversation(api: Api, token: str, member_ids, type_: str = "group", name: str | None = None,
                        expect=(200, 201)) -> dict:
    body = {"type": type_, "member_ids": list(member_ids)}
    if name is not None:
        body["name"] = name
    r = api.post("/v1/conversations", json=body, token=token)
    assert r.status in expect, f"create conversation {body}: {r!r}"
    return r.json


def text_message(conv_id: int, content: str, message_id: str | None = None, channels=None) -> dict:
    m = {"message_id": message_id or new_id(), "conversation_id": conv_id,
         "payload": {"type": "text", "content": content}}
    if channels is not None:
        m["channels"] = channels
    return m


def send_text(api: Api, token: str, conv_id: int, content: str, message_id: str | None = None,
              channels=None, expect: int = 202) -> str:
    m = text_message(conv_id, content, message_id, channels)
    r = api.post("/v1/messages", json=m, token=token)
    assert r.status == expect, f"send {m['message_id']}: {r!r}"
    return m["message_id"]


def history_all(api: Api, token: str, conv_id: int, page: int = 100) -> list[dict]:
    """Every stored message of a conversation, oldest first, by after_seq paging.
    Asserts the paging invariants on the way (ascending, strictly increasing, has_more honest)."""
    out: list[dict] = []
    after = 0
    for _ in range(100000):
        r = api.get(f"/v1/conversations/{conv_id}/messages?after_seq={after}&limit={page}", token=token)
        assert r.status == 200, f"history {conv_id} after {after}: {r!r}"
        msgs = r.json["messages"]
        for m in msgs:
            assert m["seq"] > after, f"after_seq={after} returned seq {m['seq']} (not strictly increasing)"
            after = m["seq"]
        out.extend(msgs)
        if not r.json["has_more"]:
            assert len(msgs) <= page
            return out
        assert msgs, f"has_more=true with an empty page after_seq={after}"
    raise AssertionError("history paging did not terminate")


def wait_stored(api: Api, token: str, conv_id: int, message_ids, timeout: float = 10.0) -> list[dict]:
    """Polls history until every id in message_ids is stored; returns the full history."""
    want = set(message_ids)

    def check():
        h = history_all(api, token, conv_id)
        return h if want <= {m["message_id"] for m in h} else None

    return wait_for(check, timeout, interval=0.1, what=f"{len(want)} messages stored in conversation {conv_id}")


def get_message(api: Api, token: str, message_id: str) -> Resp:
    return api.get(f"/v1/messages/{message_id}", token=token)


def wait_status(api: Api, token: str, message_id: str, status: str, timeout: float = 10.0) -> dict:
    def check():
        r = get_message(api, token, message_id)
        return r.json if r.status == 200 and r.json.get("status") == status else None

    return wait_for(check, timeout, interval=0.1, what=f"message {message_id} status {status}")


# --------------------------------------------------------------------------------------------
# JWT
# --------------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def forge_jwt(claims: dict, secret: str = TEST_SECRET, header: dict | None = None, alg: str = "HS256") -> str:
    """A JWT with the given claims. alg "none" gives an unsigned token."""
    header = header or {"alg": alg, "typ": "JWT"}
    signing_input = f"{b64url(jsonlib.dumps(header).encode())}.{b64url(jsonlib.dumps(claims).encode())}"
    if alg == "none":
        return signing_input + "."
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def jwt_claims(token: str) -> dict:
    return jsonlib.loads(b64url_decode(token.split(".")[1]))


def jwt_header(token: str) -> dict:
    return jsonlib.loads(b64url_decode(token.split(".")[0]))


def make_token(template: str | dict, secret: str = TEST_SECRET, **overrides) -> str:
    """A token like `template` (a real token or its claims) with fresh jti/iat and overrides."""
    claims = dict(jwt_claims(template) if isinstance(template, str) else template)
    now = int(time.time())
    claims.update({"jti": str(uuid.uuid4()), "iat": now, "exp": now + 900})
    claims.update(overrides)
    return forge_jwt(claims, secret)


# --------------------------------------------------------------------------------------------
# unittest base class
# --------------------------------------------------------------------------------------------


class PrintsServerLogOnFailure(unittest.TestCase):
    """Prints what `self.server` logged during a test when that test fails."""

    server: "Server" = None

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        offset = self.server.log_size() if self.server else 0
        out = super().run(result)
        if self.server and len(result.failures) + len(result.errors) > before:
            sys.stderr.write(f"\n[{self.id()}] failed; server output during the test:\n"
                             + self.server.log_tail(150, since=offset) + "\n")
        return out


class ServerTestCase(PrintsServerLogOnFailure):
    """One server per test class (setUpClass); the server log is printed when a test fails."""

    server: Server = None
    api: Api = None
    server_env: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.server = Server(env=cls.server_env, name=cls.__name__)
        try:
            cls.server.start()
        except BaseException:
            sys.stderr.write(cls.server.log_tail(100) + "\n")
            cls.server.cleanup()
            raise
        cls.api = Api(cls.server)

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        if cls.api is not None:
            cls.api.close()
        try:
            if srv is not None and srv.running():
                srv.stop()
        except BaseException:
            sys.stderr.write(srv.log_tail(100) + "\n")
            raise
        finally:
            if srv is not None:
                srv.cleanup()

    # -- assertions shared by the suites -----------------------------------------------------
    def assertError(self, r: Resp, status: int | tuple, code: str | tuple | None = None, msg: str = ""):
        """Status (one or several allowed) and the SPEC error body with error.code."""
        statuses = status if isinstance(status, tuple) else (status,)
        self.assertIn(r.status, statuses, f"{msg} status: {r!r}")
        self.assertIsNotNone(r.headers.get("X-Request-ID"), f"{msg} no X-Request-ID on {r!r}")
        self.assertTrue((r.headers.get("Content-Type") or "").startswith("application/json"),
                        f"{msg} error Content-Type {r.headers.get('Content-Type')!r}: {r!r}")
        self.assertIsInstance(r.json, dict, f"{msg} error body is not a JSON object: {r!r}")
        err = r.json.get("error")
        self.assertIsInstance(err, dict, f"{msg} no error object: {r!r}")
        self.assertIsInstance(err.get("code"), str, f"{msg} error.code: {r!r}")
        self.assertIsInstance(err.get("message"), str, f"{msg} error.message: {r!r}")
        if code is not None:
            codes = code if isinstance(code, tuple) else (code,)
            self.assertIn(err["code"], codes, f"{msg} error.code: {r!r}")
        if r.status == 401:
            self.assertTrue((r.headers.get("WWW-Authenticate") or "").startswith("Bearer"),
                            f"{msg} 401 without WWW-Authenticate: Bearer: {r!r}")
        if err["code"] == "invalid_input":
            self.assertIsInstance(err.get("details"), list, f"{msg} invalid_input without details: {r!r}")
            self.assertTrue(err["details"], f"{msg} invalid_input with empty details: {r!r}")
            for d in err["details"]:
                self.assertIsInstance(d.get("field"), str, f"{msg} details[].field: {r!r}")
                self.assertIsInstance(d.get("reason"), str, f"{msg} details[].reason: {r!r}")


# --------------------------------------------------------------------------------------------
# Continuous traffic and the exactly-once check (cluster failover suites)
# --------------------------------------------------------------------------------------------


class Traffic:
    """Sender threads that post continuously while a test breaks things.

    `senders` is a list of (conversation_id, User, batch_size): each thread posts to its one
    conversation as its one user, one request at a time — POST /v1/messages when batch_size is
    0, else POST /v1/messages:batch with batch_size messages. A request that gets no answer
    (transport error, timeout) or a 503 is sent again with the same message_ids and content,
    for at most `retry_for` seconds per message (then the message counts as given up: it may or
    may not be stored, but never twice). Records every attempt, every 202 with its time, and
    per thread the acknowledged ids in the order the 202s arrived.

    `server` may be a list of servers (API instances of one cluster): each thread then sends
    its successive requests to them in turn, so one client's order crosses instances."""

    def __init__(self, server, senders, client_timeout: float = 15.0, retry_for: float = 60.0,
                 name: str = "t"):
        servers = list(server) if isinstance(server, (list, tuple)) else [server]
        self.server = servers[0]
        self.senders = list(senders)
        self.clients = [Api(s, timeout=client_timeout) for s in servers]
        self.client = self.clients[0]
        self.turn = [0] * len(self.senders)  # per thread: requests sent so far
        self.retry_for = retry_for
        self.name = name
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.attempted: dict = {}  # message_id -> (conversation_id, sender_id, content)
        self.acked: set = set()
        self.ack_times: list[float] = []  # time.monotonic() of every acknowledged message
        self.acked_by_thread: list[list[str]] = [[] for _ in self.senders]
        self.rejected: dict = {}  # message_id -> unexpected definitive answer
        self.given_up: set = set()
        self.answers = {}  # "202", "503", "transport", ... -> count of requests
        self.failed_requests = 0  # requests without a 202 (503s and transport errors)

    # -- bookkeeping -------------------------------------------------------------------------
    def record(self, mid, conv, sender, content, acked=False):
        """Registers a message sent outside the threads (e.g. a sentinel)."""
        with self.lock:
            self.attempted[mid] = (conv, sender, content)
            if acked:
                self.acked.add(mid)

    def _count(self, what):
        with self.lock:
            self.answers[what] = self.answers.get(what, 0) + 1
            if what != "202":
                self.failed_requests += 1

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def acks_between(self, t0: float, t1: float) -> int:
        with self.lock:
            return sum(1 for t in self.ack_times if t0 <= t < t1)

    def longest_ack_gap(self, t0: float, t1: float) -> float:
        """The longest stretch within [t0, t1) without any 202."""
        with self.lock:
            ts = sorted(t for t in self.ack_times if t0 <= t < t1)
        points = [t0, *ts, t1]
        return max(b - a for a, b in zip(points, points[1:]))

    def last_acked(self) -> list:
        """(conversation_id, message_id) of the latest acknowledged message of every thread."""
        with self.lock:
            return [(self.senders[i][0], ids[-1]) for i, ids in enumerate(self.acked_by_thread) if ids]

    def summary(self) -> str:
        with self.lock:
            return (f"attempted={len(self.attempted)} acked={len(self.acked)} given_up={len(self.given_up)} "
                    f"rejected={len(self.rejected)} failed_requests={self.failed_requests} "
                    f"answers={dict(sorted(self.answers.items()))}")

    # -- threads -----------------------------------------------------------------------------
    def start(self):
        for i in range(len(self.senders)):
            th = threading.Thread(target=self._run, args=(i,), daemon=True, name=f"{self.name}-sender-{i}")
            self.threads.append(th)
            th.start()
        return self

    def stop(self, timeout: float = 90.0):
        """Stops the senders (each finishes its current message, retrying no more) and joins
        them; asserts they all ended."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for th in self.threads:
            th.join(max(0.1, deadline - time.monotonic()))
        alive = [th.name for th in self.threads if th.is_alive()]
        assert not alive, f"sender threads did not stop within {timeout}s: {alive}"

    def _run(self, i):
        try:
            conv, user, batch = self.senders[i]
            n = 0
            while not self.stop_event.is_set():
                msgs = []
                for _ in range(max(batch, 1)):
                    mid = new_id()
                    content = f"{self.name}{i} n{n} {mid}"
                    n += 1
                    self.record(mid, conv, user.id, content)
                    msgs.append(text_message(conv, content, mid))
                if batch:
                    self._send_batch(i, msgs, user)
                else:
                    self._send_one(i, msgs[0], user)
        finally:
            for c in self.clients:
                c.close()

    def _post(self, i, path, body, token):
        client = self.clients[self.turn[i] % len(self.clients)]
        self.turn[i] += 1
        try:
            r = client.post(path, json=body, token=token, retry=False)
        except TRANSPORT_ERRORS:
            client.close()
            self._count("transport")
            return None
        self._count(str(r.status))
        return r

    def _ack(self, i, mids):
        now = time.monotonic()
        with self.lock:
            for mid in mids:
                self.acked.add(mid)
                self.ack_times.append(now)
                self.acked_by_thread[i].append(mid)

    def _retry_or_give_up(self, deadline, mids, r) -> bool:
        if self.stop_event.is_set() or time.monotonic() >= deadline:
            with self.lock:
                self.given_up.update(mids)
            return False
        pause = 0.05
        if r is not None:
            try:
                pause = min(max(float(r.headers.get("Retry-After") or 0.05), 0.05), 0.5)
            except ValueError:
                pass
        time.sleep(pause)
        return True

    def _send_one(self, i, m, user):
        deadline = time.monotonic() + self.retry_for
        while True:
            r = self._post(i, "/v1/messages", m, user.token)
            if r is not None and r.status == 202 and (r.json or {}).get("message_id") == m["message_id"]:
                self._ack(i, [m["message_id"]])
                return
            if r is not None and r.status != 503:
                with self.lock:
                    self.rejected[m["message_id"]] = repr(r)
                return
            if not self._retry_or_give_up(deadline, [m["message_id"]], r):
                return

    def _send_batch(self, i, msgs, user):
        mids = [m["message_id"] for m in msgs]
        deadline = time.monotonic() + self.retry_for
        while True:
            r = self._post(i, "/v1/messages:batch", {"messages": msgs}, user.token)
            if r is not None and r.status == 202:
                results = (r.json or {}).get("results") or []
                ok = [res.get("status") == "accepted" and res.get("message_id") == mid
                      for res, mid in zip(results, mids)]
                if len(results) == len(mids) and all(ok):
                    self._ack(i, mids)
                    return
                codes = [((res.get("error") or {}).get("code")) for res, good in zip(results, ok) if not good]
                if len(results) == len(mids) and all(c == "unavailable" for c in codes):
                    # Partly unavailable: send the whole batch again (same ids, same content).
                    if self._retry_or_give_up(deadline, mids, r):
                        continue
                    return
                with self.lock:
                    for mid in mids:
                        self.rejected[mid] = repr(r)
                return
            if r is not None and r.status != 503:
                with self.lock:
                    for mid in mids:
                        self.rejected[mid] = repr(r)
                return
            if not self._retry_or_give_up(deadline, mids, r):
                return


def exactly_once_problems(hist: dict, traffic: Traffic) -> list[str]:
    """What is wrong with the stored histories (`hist`: conversation_id -> history_all list)
    given what `traffic` sent and got acknowledged: seq not 1..N, a message stored twice, one
    never sent, one stored differently than sent, an acknowledged one missing, a sender
    thread's acknowledged messages not in the order of their 202s, a status other than
    DELIVERED/READ. Empty when all is well."""
    problems: list[str] = []
    seen: dict = {}
    seq_of: dict = {}
    for conv, msgs in hist.items():
        seqs = [m["seq"] for m in msgs]
        if seqs != list(range(1, len(seqs) + 1)):
            counts = {}
            for s in seqs:
                counts[s] = counts.get(s, 0) + 1
            gaps = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))[:20]
            repeated = [s for s, n in counts.items() if n > 1][:20]
            problems.append(f"conversation {conv}: seq not 1..N (n={len(seqs)}, missing {gaps}, repeated {repeated})")
        for m in msgs:
            mid = m["message_id"]
            seen[mid] = seen.get(mid, 0) + 1
            seq_of[mid] = m["seq"]
            sent = traffic.attempted.get(mid)
            if sent is None:
                problems.append(f"message {mid} (seq {m['seq']}) in conversation {conv} was never sent")
                continue
            got = (m["conversation_id"], m["sender_id"], (m.get("payload") or {}).get("content"))
            if got != sent or m["conversation_id"] != conv:
                problems.append(f"message {mid} differs from what was sent: got {got}, sent {sent}")
            if m.get("status") not in ("DELIVERED", "READ"):
                problems.append(f"message {mid} (seq {m['seq']}) has status {m.get('status')}")
    dups = [mid for mid, n in seen.items() if n > 1]
    if dups:
        problems.append(f"{len(dups)} messages stored more than once, e.g. {dups[:5]}")
    lost = sorted(traffic.acked - set(seen))
    if lost:
        where = {}
        for mid in lost:
            c = traffic.attempted.get(mid, (None,))[0]
            where[c] = where.get(c, 0) + 1
        problems.append(f"{len(lost)} messages answered 202 are missing (per conversation: {where}), "
                        f"e.g. {lost[:5]}")
    for i, ids in enumerate(traffic.acked_by_thread):
        seqs = [(seq_of[mid], mid) for mid in ids if mid in seq_of]
        bad = [(a, b) for a, b in zip(seqs, seqs[1:]) if b[0] <= a[0]]
        if bad:
            problems.append(f"sender thread {i} (conversation {traffic.senders[i][0]}): {len(bad)} messages "
                            f"stored out of the order of their 202s, e.g. (seq, id) pairs {bad[:3]}")
    return problems


def wait_all_acked_stored(api: Api, convs: dict, traffic: Traffic, timeout: float = 60.0,
                          page: int = 100) -> dict:
    """Polls every conversation's history (convs: conversation_id -> token of a member) until
    every message `traffic` got a 202 for is stored, at most `timeout` seconds; returns the
    last snapshot (conversation_id -> history) either way."""
    want: dict = {}
    for mid in traffic.acked:
        want.setdefault(traffic.attempted[mid][0], set()).add(mid)
    deadline = time.monotonic() + timeout
    hist: dict = {}
    pending = set(convs)
    while True:
        for conv in list(pending):
            hist[conv] = history_all(api, convs[conv], conv, page=page)
            if want.get(conv, set()) <= {m["message_id"] for m in hist[conv]}:
                pending.discard(conv)
        if not pending:
            # One consistent snapshot of everything, taken after the last message arrived.
            return {conv: history_all(api, convs[conv], conv, page=page) for conv in convs}
        if time.monotonic() >= deadline:
            return hist
        time.sleep(0.5)


def kafka_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the Java client and librdkafka's
    murmur2_random) gives a non-empty key."""
    data = key.encode()
    m, length = 0x5bd1e995, len(data)
    h = (0x9747b28c ^ length) & 0xffffffff
    for i in range(0, length - length % 4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    rest, tail = length % 4, length & ~3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h = ((h ^ data[tail]) * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return (h & 0x7fffffff) % partitions


def metric_value(server: Server, name: str) -> float | None:
    """The sum over all label sets of metric `name` on the server's /metrics (None when the
    server does not answer or has no such metric)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        c.request("GET", "/metrics")
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        c.close()
    except TRANSPORT_ERRORS:
        return None
    if r.status != 200:
        return None
    total = None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return total
