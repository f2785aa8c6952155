"""A minimal WebSocket client (RFC 6455), standard library only, for the e2e suites.

Client side of the protocol as the RFC asks: masked frames with a fresh key per frame, the
opening handshake with Sec-WebSocket-Key / Sec-WebSocket-Accept checked, fragmented messages
reassembled, pings answered with pongs (unless auto_pong=False), the closing handshake with
its code and reason.

    ws = WsClient(port, token=tok)          # handshake; HandshakeError(status, body) on refusal
    ws.send_json({"action": "typing", "conversation_id": 7})
    ev = ws.wait_for(lambda e: e["type"] == "typing", timeout=5)
    ws.close()

Events that arrive while waiting for another one are kept (ws.backlog) and looked at first by
the next wait_for, so nothing is lost between waits. `WsClosed` (code, reason) is raised when
the server closes the connection.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time
import urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    def __init__(self, status: int, headers: dict, body: bytes):
        super().__init__(f"WebSocket upgrade refused: HTTP {status} {body[:200]!r}")
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class WsClosed(Exception):
    def __init__(self, code: int | None, reason: str = ""):
        super().__init__(f"WebSocket closed by the server: code={code} reason={reason!r}")
        self.code = code
        self.reason = reason


def encode_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    """One frame, masked with a random key (clients must mask, RFC 6455 §5.3)."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head.append(mbit | n)
    elif n < (1 << 16):
        head.append(mbit | 126)
        head += struct.pack("!H", n)
    else:
        head.append(mbit | 127)
        head += struct.pack("!Q", n)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    head += key
    return bytes(head) + apply_mask(payload, key)


def apply_mask(data: bytes, key: bytes) -> bytes:
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def parse_frame(buf: bytes | bytearray):
    """(fin, opcode, payload, consumed) of the first complete server frame in `buf`, or None."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n = struct.unpack_from("!H", buf, 2)[0]
        pos = 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n = struct.unpack_from("!Q", buf, 2)[0]
        pos = 10
    key = None
    if b1 & 0x80:  # a server must not mask; tolerated here
        if len(buf) < pos + 4:
            return None
        key = bytes(buf[pos:pos + 4])
        pos += 4
    if len(buf) < pos + n:
        return None
    payload = bytes(buf[pos:pos + n])
    if key:
        payload = apply_mask(payload, key)
    return bool(b0 & 0x80), b0 & 0x0F, payload, pos + n


def handshake_request(host: str, path: str, key: str, headers: dict | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def expected_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def parse_response_head(head: bytes):
    """(status, headers with lower-case names) of an HTTP response head."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


class WsClient:
    def __init__(self, port: int, token: str | None = None, *, host: str = "127.0.0.1",
                 auth: str = "query", path: str = "/ws", headers: dict | None = None,
                 subprotocols: list[str] | None = None, timeout: float = 10.0,
                 rcvbuf: int | None = None, auto_pong: bool = True):
        """auth: how `token` travels: "query" (?token=), "header" (Authorization: Bearer) or
        "protocol" (Sec-WebSocket-Protocol: chat4all.v1, bearer.<token>)."""
        self.auto_pong = auto_pong
        self.backlog: list[dict] = []
        self.buf = bytearray()
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = False
        self.pings = 0
        h = dict(headers or {})
        protos = list(subprotocols or [])
        if token is not None:
            if auth == "query":
                path += ("&" if "?" in path else "?") + "token=" + urllib.parse.quote(token)
            elif auth == "header":
                h["Authorization"] = f"Bearer {token}"
            elif auth == "protocol":
                protos += ["chat4all.v1", "bearer." + token]
            else:
                raise ValueError(auth)
        if protos:
            h["Sec-WebSocket-Protocol"] = ", ".join(protos)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(handshake_request(f"{host}:{port}", path, key, h))
        head = self._read_head(timeout)
        status, self.response_headers = parse_response_head(head)
        if status != 101:
            n = int(self.response_headers.get("content-length", "0") or 0)
            body = self._read_exact(n, timeout) if n else b""
            self.sock.close()
            raise HandshakeError(status, self.response_headers, body)
        if self.response_headers.get("sec-websocket-accept") != expected_accept(key):
            self.sock.close()
            raise AssertionError("bad Sec-WebSocket-Accept from the server")
        self.subprotocol = self.response_headers.get("sec-websocket-protocol")

    # -- raw I/O -----------------------------------------------------------------------------
    def _fill(self, deadline: float):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from the server in time") from None
        if not data:
            self.closed = True
            raise WsClosed(self.close_code, "connection closed without a close frame")
        self.buf += data

    def _read_head(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            try:
                self._fill(deadline)
            except WsClosed:
                raise HandshakeError(0, {}, b"connection closed during the handshake") from None
        i = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:i])
        del self.buf[:i + 4]
        return head

    def _read_exact(self, n: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            try:
                self._fill(deadline)
            except WsClosed:
                break
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True):
        self.sock.sendall(encode_frame(opcode, payload, fin))

    def send_text(self, text: str | bytes):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def recv_message(self, timeout: float = 10.0):
        """(opcode, payload) of the next data message; answers pings; raises WsClosed."""
        deadline = time.monotonic() + timeout
        parts: list[bytes] = []
        first_op = None
        while True:
            f = parse_frame(self.buf)
            if f is None:
                if self.closed:
                    raise WsClosed(self.close_code, self.close_reason)
                self._fill(deadline)
                continue
            fin, op, payload, used = f
            del self.buf[:used]
            if op == OP_PING:
                self.pings += 1
                if self.auto_pong:
                    self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.close_reason = payload[2:].decode("utf-8", "replace")
                try:
                    self.send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                self.closed = True
                raise WsClosed(self.close_code, self.close_reason)
            if op in (OP_TEXT, OP_BINARY):
                first_op = op
                parts = [payload]
            else:
                parts.append(payload)
            if fin:
                return first_op, b"".join(parts)

    def recv_json(self, timeout: float = 10.0) -> dict:
        while True:
            op, payload = self.recv_message(timeout)
            if op == OP_TEXT:
                return json.loads(payload)

    def next_event(self, timeout: float = 10.0) -> dict:
        if self.backlog:
            return self.backlog.pop(0)
        return self.recv_json(timeout)

    def wait_for(self, pred, timeout: float = 10.0, what: str = "event") -> dict:
        """The first event (backlog first) for which pred(event) is true; the others are kept."""
        for i, e in enumerate(self.backlog):
            if pred(e):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout}s; kept: {self.backlog[-5:]!r}")
            try:
                e = self.recv_json(left)
            except TimeoutError:
                raise AssertionError(f"no {what} within {timeout}s; kept: {self.backlog[-5:]!r}") from None
            if pred(e):
                return e
            self.backlog.append(e)

    def wait_type(self, type_: str, timeout: float = 10.0, **fields) -> dict:
        def pred(e):
            return e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items())
        return self.wait_for(pred, timeout, what=f"{type_} {fields}")

    def wait_closed(self, timeout: float = 10.0) -> int | None:
        """Reads (dropping events) until the server closes; returns the close code."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.recv_message(max(0.01, deadline - time.monotonic()))
        except WsClosed as c:
            return c.code

    def close(self, code: int = 1000):
        if not self.closed:
            try:
                self.send_frame(OP_CLOSE, struct.pack("!H", code))
                self.wait_closed(2.0)
            except (OSError, TimeoutError, AssertionError):
                pass
            self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
