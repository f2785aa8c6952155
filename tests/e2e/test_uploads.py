"""Resumable uploads (SPEC §5) over the wire: the chunked API, streaming, resume after an
interruption, integrity checks, rejections, file messages, downloads with ranges, expiry.

Embedded mode stores blobs on the file system; cluster mode runs the same tests on
PostgreSQL + Kafka and, when CHAT4ALL_TEST_S3_ENDPOINT is set (scripts/test.sh starts MinIO
with scripts/services/minio.sh), on MinIO through the s3 blob store.

File contents are generated chunk by chunk from a seeded PRNG (random.Random(seed:chunk)),
so a 1 GB upload never sits in the test's memory: each chunk is made, hashed and sent, then
dropped; downloads are hashed as they stream in. CHAT4ALL_TEST_UPLOAD_BIG_MB sets the size
of the big round trip (default 1024; 256 in cluster mode)."""

import hashlib
import http.client
import json
import os
import random
import socket
import time
import unittest
import urllib.parse

import s3_client
from harness import Api, ServerTestCase, User, create_conversation, new_id, wait_for, cluster_mode

MIB = 1024 * 1024
# Cluster mode (MinIO, PostgreSQL, Kafka) defaults to 256 MB to keep CI time bounded.
BIG_MB = int(os.environ.get("CHAT4ALL_TEST_UPLOAD_BIG_MB", "256" if cluster_mode() else "1024"))


def s3_env(tag: str) -> dict:
    """The s3 blob store on MinIO in cluster mode when the test services provide it."""
    if not cluster_mode() or not os.environ.get("CHAT4ALL_TEST_S3_ENDPOINT"):
        return {}
    return {
        "CHAT4ALL_BLOBS_BACKEND": "s3",
        "CHAT4ALL_BLOBS_S3_ENDPOINT": os.environ["CHAT4ALL_TEST_S3_ENDPOINT"],
        "CHAT4ALL_BLOBS_S3_BUCKET": os.environ.get("CHAT4ALL_TEST_S3_BUCKET", "chat4all"),
        "CHAT4ALL_BLOBS_S3_REGION": os.environ.get("CHAT4ALL_TEST_S3_REGION", "us-east-1"),
        "CHAT4ALL_BLOBS_S3_ACCESS_KEY": os.environ.get("CHAT4ALL_TEST_S3_ACCESS_KEY", ""),
        "CHAT4ALL_BLOBS_S3_SECRET_KEY": os.environ.get("CHAT4ALL_TEST_S3_SECRET_KEY", ""),
        "CHAT4ALL_BLOBS_S3_KEY_PREFIX": f"e2e-{tag}-{new_id()[:8]}/",
    }


class Content:
    """A deterministic file: chunk i (1-based) = random.Random(f"{seed}:{i}").randbytes(...)."""

    def __init__(self, size: int, chunk_size: int, seed: str | None = None, head: bytes = b""):
        self.size, self.chunk_size, self.seed, self.head = size, chunk_size, seed or new_id(), head
        self.total = (size + chunk_size - 1) // chunk_size

    def chunk(self, n: int) -> bytes:
        length = min(self.chunk_size, self.size - (n - 1) * self.chunk_size)
        data = random.Random(f"{self.seed}:{n}").randbytes(length)
        if n == 1 and self.head:
            data = self.head + data[len(self.head):]
        return data

    def sha256(self) -> str:
        h = hashlib.sha256()
        for n in range(1, self.total + 1):
            h.update(self.chunk(n))
        return h.hexdigest()

    def range(self, first: int, last: int) -> bytes:
        out = bytearray()
        n = first // self.chunk_size + 1
        while first <= last:
            c = self.chunk(n)
            start = first - (n - 1) * self.chunk_size
            piece = c[start:start + (last - first + 1)]
            out += piece
            first += len(piece)
            n += 1
        return bytes(out)


class UploadCase(ServerTestCase):
    """Shared helpers; subclasses pick the server settings."""

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        prefix = cls.server_env.get("CHAT4ALL_BLOBS_S3_KEY_PREFIX")
        if prefix:  # the test's objects in MinIO (completed files stay there otherwise)
            for key, _ in s3_client.objects(prefix):
                s3_client.request("DELETE", key)

    def s3_key(self, upload_id):
        """The object key of an upload when the server runs on S3 (None on the fs store)."""
        prefix = self.server_env.get("CHAT4ALL_BLOBS_S3_KEY_PREFIX")
        return None if prefix is None else f"{prefix}files/{upload_id}"

    def conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=timeout)

    def initiate(self, user, conv, content: Content | None = None, expect=201, **fields):
        body = {"conversation_id": conv, "filename": "data.bin", "mime_type": "application/octet-stream"}
        if content is not None:
            body.update(file_size=content.size, chunk_size=content.chunk_size)
        body.update(fields)
        r = self.api.post("/v1/files/initiate", json=body, token=user.token)
        self.assertEqual(r.status, expect, r)
        return r.json

    def put_chunk(self, user, upload_id, n, data: bytes, headers=None, method="PUT", conn=None):
        """Streams `data` in 256 KiB writes on a keep-alive connection; (status, json)."""
        c = conn or self.conn()
        path = (f"/v1/files/{upload_id}/chunks/{n}" if method == "PUT"
                else f"/v1/files/{upload_id}/chunks?chunk_number={n}")
        c.putrequest(method, path)
        c.putheader("Authorization", f"Bearer {user.token}")
        c.putheader("Content-Type", "application/octet-stream")
        c.putheader("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        view = memoryview(data)
        try:
            for i in range(0, len(data), 256 * 1024):
                c.send(view[i:i + 256 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (a rejection) and closed: read its answer
        r = c.getresponse()
        raw = r.read()
        if conn is None:
            c.close()
        return r.status, (json.loads(raw) if raw else None)

    def upload_all(self, user, upload_id, content: Content, skip=()):
        c = self.conn()
        try:
            for n in range(1, content.total + 1):
                if n in skip:
                    continue
                st, body = self.put_chunk(user, upload_id, n, content.chunk(n), conn=c)
                self.assertEqual(st, 200, body)
        finally:
            c.close()

    def status(self, user, upload_id):
        return self.api.get(f"/v1/files/{upload_id}/status", token=user.token)

    def wait_final(self, user, upload_id, timeout=300):
        def done():
            r = self.status(user, upload_id)
            return r.json if r.status == 200 and r.json["status"] in ("COMPLETED", "FAILED") else None
        return wait_for(done, timeout=timeout, interval=0.2, what=f"upload {upload_id} merged")

    def download(self, user, file_id, headers=None):
        """(status, headers, sha256 hex of the body, body length): streamed, never whole."""
        c = self.conn()
        try:
            h = {"Authorization": f"Bearer {user.token}"}
            h.update(headers or {})
            c.request("GET", f"/v1/files/{file_id}", headers=h)
            r = c.getresponse()
            sha, n = hashlib.sha256(), 0
            while True:
                piece = r.read(1024 * 1024)
                if not piece:
                    break
                sha.update(piece)
                n += len(piece)
            return r.status, r.headers, sha.hexdigest(), n
        finally:
            c.close()

    def download_bytes(self, user, file_id, headers=None):
        c = self.conn()
        try:
            h = {"Authorization": f"Bearer {user.token}"}
            h.update(headers or {})
            c.request("GET", f"/v1/files/{file_id}", headers=h)
            r = c.getresponse()
            return r.status, r.headers, r.read()
        finally:
            c.close()

    def send_file_message(self, user, conv, file_id):
        return self.api.post("/v1/messages", token=user.token, json={
            "message_id": new_id(), "conversation_id": conv, "payload": {"type": "file", "file_id": file_id}})


class UploadFlowTest(UploadCase):
    server_env = {"CHAT4ALL_UPLOADS_MAGIC_MISMATCH": "reject", **s3_env("flow")}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = User(cls.api, "alice")
        cls.bob = User(cls.api, "bob")
        cls.eve = User(cls.api, "eve")
        cls.conv = create_conversation(cls.api, cls.alice.token, [cls.bob.id], type_="private")["id"]
        cls.other_conv = create_conversation(cls.api, cls.alice.token, [cls.eve.id], type_="private")["id"]

    def test_big_file_round_trip_with_ranges_and_file_message(self):
        content = Content(BIG_MB * MIB, 10 * MIB)
        sha = content.sha256()
        up = self.initiate(self.alice, self.conv, content, checksum_sha256=sha)
        self.assertEqual(up["chunk_size"], 10 * MIB)
        self.assertEqual(up["total_chunks"], content.total)
        self.upload_all(self.alice, up["upload_id"], content)
        r = self.api.post(f"/v1/files/{up['upload_id']}/complete", token=self.alice.token)
        self.assertEqual(r.status, 202, r)
        self.assertIn(r.json["status"], ("MERGING", "COMPLETED"))
        final = self.wait_final(self.alice, up["upload_id"])
        self.assertEqual(final["status"], "COMPLETED", final)
        self.assertEqual(final["sha256"], sha)
        self.assertEqual(final["missing_chunks"], [])
        self.assertEqual(final["percentage"], 100)
        file_id = final["file_id"]
        self.assertEqual(final["download_url"], f"/v1/files/{file_id}")
        if key := self.s3_key(file_id):
            # S3: one object of the file's size, no multipart upload left behind.
            self.assertEqual(s3_client.objects(key), [(key, content.size)])
            self.assertEqual(s3_client.multipart_uploads(key), [])

        r = self.send_file_message(self.alice, self.conv, file_id)
        self.assertEqual(r.status, 202, r)

        # The other member downloads it whole, streamed, with the same SHA-256.
        st, headers, got, n = self.download(self.bob, file_id)
        self.assertEqual(st, 200)
        self.assertEqual(n, content.size)
        self.assertEqual(got, sha)
        self.assertEqual(headers["ETag"], f'"{sha}"')
        self.assertEqual(headers["Accept-Ranges"], "bytes")
        self.assertIn('filename="data.bin"', headers["Content-Disposition"])

        # Ranges: the start, across a chunk boundary, the last bytes (suffix), open-ended tail.
        cs = content.chunk_size
        for rng, first, last in (("bytes=0-99", 0, 99),
                                 (f"bytes={cs - 10}-{cs + 9}", cs - 10, cs + 9),
                                 ("bytes=-100", content.size - 100, content.size - 1),
                                 (f"bytes={content.size - 5}-", content.size - 5, content.size - 1)):
            st, headers, body = self.download_bytes(self.bob, file_id, {"Range": rng})
            self.assertEqual(st, 206, rng)
            self.assertEqual(headers["Content-Range"], f"bytes {first}-{last}/{content.size}")
            self.assertEqual(body, content.range(first, last), rng)
        # A large range streamed and hashed: the second half of the file.
        half = content.size // 2
        st, headers, got, n = self.download(self.bob, file_id, {"Range": f"bytes={half}-"})
        self.assertEqual((st, n), (206, content.size - half))
        h = hashlib.sha256()
        pos = half
        while pos < content.size:
            step = min(64 * MIB, content.size - pos)
            h.update(content.range(pos, pos + step - 1))
            pos += step
        self.assertEqual(got, h.hexdigest())
        st, headers, body = self.download_bytes(self.bob, file_id, {"Range": f"bytes={content.size}-"})
        self.assertEqual(st, 416)
        self.assertEqual(headers["Content-Range"], f"bytes */{content.size}")
        st, headers, body = self.download_bytes(self.bob, file_id, {"If-None-Match": f'"{sha}"'})
        self.assertEqual(st, 304)
        # Not a member of the conversation: no download.
        st, _, body = self.download_bytes(self.eve, file_id)
        self.assertEqual(st, 403, body)

    def test_interrupted_upload_resumes_with_only_the_missing_chunks(self):
        content = Content(23 * MIB, 5 * MIB)
        sha = content.sha256()
        up = self.initiate(self.alice, self.conv, content, checksum_sha256=sha)
        uid = up["upload_id"]
        self.assertEqual(up["total_chunks"], 5)
        # Half the chunks arrive, then the network drops in the middle of chunk 3.
        for n in (1, 2):
            self.assertEqual(self.put_chunk(self.alice, uid, n, content.chunk(n))[0], 200)
        s = socket.create_connection(("127.0.0.1", self.server.port))
        data = content.chunk(3)
        s.sendall((f"PUT /v1/files/{uid}/chunks/3 HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {self.alice.token}\r\nContent-Length: {len(data)}\r\n\r\n").encode())
        s.sendall(data[:len(data) // 2])
        s.close()
        # The client asks what is missing, and re-sends only that.
        def missing():
            r = self.status(self.alice, uid)
            return r.json if r.status == 200 else None
        st = wait_for(missing, what="status")
        self.assertEqual(st["status"], "UPLOADING")
        self.assertEqual(st["uploaded_chunks"], 2)
        self.assertEqual(st["missing_chunks"], [3, 4, 5])
        self.assertEqual(st["percentage"], 40)
        # Completing now is refused with the list.
        r = self.api.post(f"/v1/files/{uid}/complete", token=self.alice.token)
        self.assertError(r, 400, "missing_chunks")
        self.assertEqual(r.json["missing_chunks"], [3, 4, 5])
        sent = 0
        for n in st["missing_chunks"]:
            code, body = self.put_chunk(self.alice, uid, n, content.chunk(n), method="POST")
            self.assertEqual(code, 200, body)
            self.assertEqual(body["status"], "stored")
            sent += 1
        self.assertEqual(sent, 3)
        # A chunk sent again with the same bytes is a resume: 200, nothing changes.
        code, body = self.put_chunk(self.alice, uid, 1, content.chunk(1))
        self.assertEqual((code, body["status"]), (200, "already_stored"))
        r = self.api.post(f"/v1/files/{uid}/complete", token=self.alice.token)
        self.assertEqual(r.status, 202, r)
        final = self.wait_final(self.alice, uid)
        self.assertEqual(final["status"], "COMPLETED", final)
        st, _, got, n = self.download(self.bob, uid)
        self.assertEqual((st, n, got), (200, content.size, sha))

    def test_rejections(self):
        content = Content(6 * MIB, 5 * MIB)
        # Whole-file checksum mismatch -> FAILED with a reason.
        up = self.initiate(self.alice, self.conv, content, checksum_sha256="0" * 64)
        self.upload_all(self.alice, up["upload_id"], content)
        self.assertEqual(self.api.post(f"/v1/files/{up['upload_id']}/complete", token=self.alice.token).status, 202)
        final = self.wait_final(self.alice, up["upload_id"])
        self.assertEqual(final["status"], "FAILED")
        self.assertTrue(final["reason"].startswith("checksum_mismatch"), final)
        if key := self.s3_key(up["upload_id"]):  # S3: neither the object nor its parts stay
            self.assertEqual((s3_client.objects(key), s3_client.multipart_uploads(key)), ([], []))
        self.assertError(self.send_file_message(self.alice, self.conv, up["upload_id"]), 400, "invalid_input")

        # A chunk re-sent with different bytes -> 409; the stored chunk stays.
        up = self.initiate(self.alice, self.conv, content)
        uid = up["upload_id"]
        self.assertEqual(self.put_chunk(self.alice, uid, 1, content.chunk(1))[0], 200)
        other = bytearray(content.chunk(1))
        other[12345] ^= 0xFF
        code, body = self.put_chunk(self.alice, uid, 1, bytes(other))
        self.assertEqual(code, 409, body)
        self.assertEqual(body["error"]["code"], "chunk_conflict")
        code, body = self.put_chunk(self.alice, uid, 1, bytes(other),
                                    headers={"X-Chunk-SHA256": hashlib.sha256(other).hexdigest()})
        self.assertEqual(code, 409, body)
        # A chunk whose X-Chunk-SHA256 does not match its bytes is not stored.
        code, body = self.put_chunk(self.alice, uid, 2, content.chunk(2), headers={"X-Chunk-SHA256": "a" * 64})
        self.assertEqual(code, 400, body)
        self.assertEqual(self.status(self.alice, uid).json["missing_chunks"], [2])
        # An incomplete file in a message -> 400; so is an unknown one, and another conversation's.
        self.assertError(self.send_file_message(self.alice, self.conv, uid), 400, "invalid_input")
        self.assertError(self.send_file_message(self.alice, self.conv, new_id()), 400, "invalid_input")
        # Another user's upload -> 403 everywhere.
        self.assertError(self.status(self.bob, uid), 403, "forbidden")
        self.assertEqual(self.put_chunk(self.bob, uid, 2, content.chunk(2))[0], 403)
        self.assertError(self.api.post(f"/v1/files/{uid}/complete", token=self.bob.token), 403, "forbidden")
        # Download of an upload that is not completed -> 404.
        self.assertEqual(self.download_bytes(self.alice, uid)[0], 404)

        # Over 2 GiB -> 413.
        r = self.api.post("/v1/files/initiate", token=self.alice.token, json={
            "conversation_id": self.conv, "filename": "huge.bin", "mime_type": "application/octet-stream",
            "file_size": 2 * 1024 * MIB + 1})
        self.assertError(r, 413)

        # Declared image/png, the content is a GIF: refused (uploads.magic_mismatch = reject here).
        fake = Content(1 * MIB, 5 * MIB, head=b"GIF89a\x01\x00\x01\x00\x80\x00\x00")
        up = self.initiate(self.alice, self.conv, fake, filename="pic.png", mime_type="image/png")
        self.upload_all(self.alice, up["upload_id"], fake)
        self.api.post(f"/v1/files/{up['upload_id']}/complete", token=self.alice.token)
        final = self.wait_final(self.alice, up["upload_id"])
        self.assertEqual(final["status"], "FAILED")
        self.assertTrue(final["reason"].startswith("content_type_mismatch"), final)
        # A real PNG header: accepted, detected type recorded.
        png = Content(1 * MIB, 5 * MIB, head=bytes.fromhex("89504e470d0a1a0a0000000d49484452000000100000001008060000001ff3ff61"))
        up = self.initiate(self.alice, self.conv, png, filename="pic.png", mime_type="image/png")
        self.upload_all(self.alice, up["upload_id"], png)
        self.api.post(f"/v1/files/{up['upload_id']}/complete", token=self.alice.token)
        final = self.wait_final(self.alice, up["upload_id"])
        self.assertEqual(final["status"], "COMPLETED", final)
        self.assertEqual(final["detected_mime_type"], "image/png")
        # A COMPLETED file of another conversation cannot be sent here.
        self.assertError(self.send_file_message(self.alice, self.other_conv, up["upload_id"]), 400, "invalid_input")
        self.assertEqual(self.send_file_message(self.alice, self.conv, up["upload_id"]).status, 202)

    def test_bad_input(self):
        a = self.alice
        uid = self.initiate(a, self.conv, Content(6 * MIB, 5 * MIB))["upload_id"]
        r = self.api.request("POST", "/v1/files/initiate", raw_body=b"{not json", token=a.token)
        self.assertError(r, 400, "invalid_json")
        for bad in ({"conversation_id": "x", "filename": "a", "mime_type": "a/b", "file_size": 1},
                    {"conversation_id": self.conv, "filename": 5, "mime_type": "a/b", "file_size": 1},
                    {"conversation_id": self.conv, "filename": "a", "mime_type": "nonsense", "file_size": 1},
                    {"conversation_id": self.conv, "filename": "a", "mime_type": "a/b", "file_size": -1},
                    {"conversation_id": self.conv, "filename": "a/../b", "mime_type": "a/b", "file_size": 1},
                    {"conversation_id": self.conv, "filename": "a", "mime_type": "a/b", "file_size": 1,
                     "chunk_size": 1024},
                    {"conversation_id": self.conv, "filename": "a", "mime_type": "a/b", "file_size": 1,
                     "checksum_sha256": "xyz"},
                    {"filename": "a", "mime_type": "a/b", "file_size": 1}):
            self.assertError(self.api.post("/v1/files/initiate", json=bad, token=a.token), 400, "invalid_input",
                             msg=str(bad))
        # Unknown conversation, someone else's conversation.
        r = self.api.post("/v1/files/initiate", token=a.token, json={
            "conversation_id": 10**12, "filename": "a", "mime_type": "a/b", "file_size": 1})
        self.assertError(r, (403, 404))
        r = self.api.post("/v1/files/initiate", token=self.bob.token, json={
            "conversation_id": self.other_conv, "filename": "a", "mime_type": "a/b", "file_size": 1})
        self.assertError(r, 403)
        # Unknown ids and malformed ids.
        self.assertError(self.status(a, new_id()), 404, "not_found")
        self.assertError(self.status(a, "not-a-uuid"), 400, "invalid_input")
        self.assertError(self.api.post(f"/v1/files/{new_id()}/complete", token=a.token), 404)
        self.assertEqual(self.put_chunk(a, new_id(), 1, b"x")[0], 404)
        self.assertEqual(self.download_bytes(a, new_id())[0], 404)
        # Chunk numbers out of range, missing, malformed; wrong sizes; too large.
        self.assertEqual(self.put_chunk(a, uid, 3, b"x" * 10)[0], 400)
        self.assertEqual(self.put_chunk(a, uid, 0, b"x")[0], 400)
        code, body = self.put_chunk(a, uid, 2, b"x" * 10)  # chunk 2 is 1 MiB
        self.assertEqual(code, 400, body)
        c = self.conn()
        c.request("POST", f"/v1/files/{uid}/chunks", body=b"x", headers={"Authorization": f"Bearer {a.token}"})
        r = c.getresponse()
        self.assertEqual(r.status, 400, r.read())
        c.close()
        c = self.conn()
        c.putrequest("PUT", f"/v1/files/{uid}/chunks/1")
        c.putheader("Authorization", f"Bearer {a.token}")
        c.putheader("Content-Length", str(100 * MIB))
        c.endheaders()
        r = c.getresponse()
        self.assertEqual(r.status, 413, r.read())
        c.close()
        # Tokens: none, expired, forged.
        self.assertError(self.api.get(f"/v1/files/{uid}/status"), 401)
        expired = self.server.forge({"sub": str(a.id), "user_id": a.id, "iat": int(time.time()) - 7200,
                                     "exp": int(time.time()) - 3600, "iss": "chat4all", "scope": "user"})
        self.assertError(self.api.get(f"/v1/files/{uid}/status", token=expired), 401)
        code, body = self.put_chunk(type("U", (), {"token": expired})(), uid, 1, b"x")
        self.assertEqual(code, 401)
        self.assertEqual(self.download_bytes(type("U", (), {"token": "garbage"})(), uid)[0], 401)
        # The keep-alive connection survives streamed requests: two chunks, one connection.
        content = Content(6 * MIB, 5 * MIB)
        up = self.initiate(a, self.conv, content)
        c = self.conn()
        for n in (1, 2):
            code, body = self.put_chunk(a, up["upload_id"], n, content.chunk(n), conn=c)
            self.assertEqual(code, 200, body)
        c.request("GET", f"/v1/files/{up['upload_id']}/status", headers={"Authorization": f"Bearer {a.token}"})
        r = c.getresponse()
        self.assertEqual(json.loads(r.read())["missing_chunks"], [])
        c.close()


class UploadExpiryTest(UploadCase):
    server_env = {"CHAT4ALL_UPLOADS_EXPIRY_S": "3", "CHAT4ALL_UPLOADS_GC_INTERVAL_S": "1",
                  "CHAT4ALL_UPLOADS_MAX_ACTIVE_PER_USER": "3",
                  "CHAT4ALL_UPLOADS_MAX_BYTES_PER_USER": str(40 * MIB), **s3_env("expiry")}

    def test_abandoned_upload_expires_and_limits_hold(self):
        a = User(self.api, "owner")
        b = User(self.api, "peer")
        conv = create_conversation(self.api, a.token, [b.id], type_="private")["id"]
        content = Content(8 * MIB, 5 * MIB)
        uid = self.initiate(a, conv, content)["upload_id"]
        self.assertEqual(self.put_chunk(a, uid, 1, content.chunk(1))[0], 200)
        blob_dir = os.path.join(self.server.data_dir, "blobs", "files", uid)
        key = self.s3_key(uid)
        if key is None:
            self.assertTrue(os.path.isdir(blob_dir))
        else:  # the chunk is part 1 of the upload's S3 multipart upload
            uploads = s3_client.multipart_uploads(key)
            self.assertEqual([k for k, _ in uploads], [key])
            self.assertEqual(s3_client.parts(key, uploads[0][1]), [1])
        st = wait_for(lambda: (lambda r: r.json if r.json["status"] == "EXPIRED" else None)(self.status(a, uid)),
                      timeout=30, interval=0.3, what="upload expired")
        self.assertEqual(st["uploaded_chunks"], 0)  # the chunk rows are gone
        self.assertTrue(st["reason"].startswith("expired"))
        if key is None:
            self.assertFalse(os.path.exists(blob_dir))
        else:  # AbortMultipartUpload: the upload and its parts are gone from MinIO
            self.assertEqual(s3_client.multipart_uploads(key), [])
            self.assertIsNone(s3_client.parts(key, uploads[0][1]))
            self.assertEqual(s3_client.objects(key), [])
        code, body = self.put_chunk(a, uid, 2, content.chunk(2))
        self.assertEqual(code, 409, body)
        self.assertError(self.api.post(f"/v1/files/{uid}/complete", token=a.token), 409)
        # Per-user limits: total declared size, then the number of uploads in progress.
        self.initiate(a, conv, Content(30 * MIB, 10 * MIB))
        r = self.api.post("/v1/files/initiate", token=a.token, json={
            "conversation_id": conv, "filename": "a", "mime_type": "a/b", "file_size": 20 * MIB})
        self.assertError(r, 413, "upload_quota_exceeded")
        self.initiate(a, conv, Content(1 * MIB, 5 * MIB))
        self.initiate(a, conv, Content(1 * MIB, 5 * MIB))
        c = self.conn()
        c.request("POST", "/v1/files/initiate", headers={"Authorization": f"Bearer {a.token}",
                                                          "Content-Type": "application/json"},
                  body=json.dumps({"conversation_id": conv, "filename": "a", "mime_type": "a/b", "file_size": 10}))
        r = c.getresponse()
        self.assertEqual(r.status, 429)
        self.assertEqual(json.loads(r.read())["error"]["code"], "too_many_uploads")
        c.close()


@unittest.skipUnless(s3_env("redirect"), "needs cluster mode with CHAT4ALL_TEST_S3_ENDPOINT (MinIO)")
class UploadRedirectTest(UploadCase):
    """S3 with uploads.download_redirect: downloads answer 302 to a presigned MinIO URL."""
    server_env = {"CHAT4ALL_UPLOADS_DOWNLOAD_REDIRECT": "true", "CHAT4ALL_UPLOADS_PRESIGN_TTL_S": "120",
                  **s3_env("redirect")}

    def test_download_redirects_to_a_presigned_url(self):
        a, b = User(self.api, "alice"), User(self.api, "bob")
        conv = create_conversation(self.api, a.token, [b.id], type_="private")["id"]
        content = Content(7 * MIB, 5 * MIB)
        up = self.initiate(a, conv, content, filename="report 1.pdf", checksum_sha256=content.sha256())
        self.upload_all(a, up["upload_id"], content)
        self.assertEqual(self.api.post(f"/v1/files/{up['upload_id']}/complete", token=a.token).status, 202)
        self.assertEqual(self.wait_final(a, up["upload_id"])["status"], "COMPLETED")
        c = self.conn()
        c.request("GET", f"/v1/files/{up['upload_id']}", headers={"Authorization": f"Bearer {b.token}"})
        r = c.getresponse()
        r.read()
        c.close()
        self.assertEqual(r.status, 302)
        url = urllib.parse.urlparse(r.headers["Location"])
        self.assertEqual(f"{url.scheme}://{url.netloc}", os.environ["CHAT4ALL_TEST_S3_ENDPOINT"])
        self.assertIn("X-Amz-Signature=", url.query)
        # The presigned URL works without credentials and serves the file with its headers.
        c = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        c.request("GET", f"{url.path}?{url.query}")
        r = c.getresponse()
        sha = hashlib.sha256(r.read()).hexdigest()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(sha, content.sha256())
        self.assertIn("report%201.pdf", r.headers["Content-Disposition"])
        # Not a member: no URL.
        eve = User(self.api, "eve")
        self.assertEqual(self.download_bytes(eve, up["upload_id"])[0], 403)


def blobs_state(api: Api) -> tuple[int, dict]:
    """GET /readyz once the blob store's first check is in: (status, body)."""
    last = None

    def checked():
        nonlocal last
        last = api.get("/readyz")
        return last.json["dependencies"].get("blobs") not in (None, "starting")

    wait_for(checked, timeout=15, what="the first check of the blob store")
    return last.status, last.json


class BlobReadinessTest(UploadCase):
    """GET /readyz names the blob store's state; the class's own store answers."""

    server_env = s3_env("ready")

    def test_the_blob_store_is_ok(self):
        status, body = blobs_state(self.api)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["status"], "ready", body)
        self.assertEqual(body["dependencies"]["blobs"], "ok", body)


class BlobStoreDownTest(UploadCase):
    """An S3 endpoint that refuses connections: /readyz shows the store down but the process
    stays ready (messages go on); uploads answer 503 with Retry-After, nothing is half-made."""

    server_env = {
        "CHAT4ALL_BLOBS_BACKEND": "s3",
        "CHAT4ALL_BLOBS_S3_ENDPOINT": "http://127.0.0.1:9",  # discard port: nobody listens
        "CHAT4ALL_BLOBS_S3_BUCKET": "chat4all",
        "CHAT4ALL_BLOBS_S3_ACCESS_KEY": "test",
        "CHAT4ALL_BLOBS_S3_SECRET_KEY": "test-secret",
    }

    def test_ready_with_the_store_down_and_uploads_refused(self):
        status, body = blobs_state(self.api)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["status"], "ready", body)
        self.assertTrue(body["dependencies"]["blobs"].startswith("down: unreachable"), body)
        alice, bob = User(self.api, "alice"), User(self.api, "bob")
        conv = create_conversation(self.api, alice.token, [bob.id], "private")["id"]
        r = self.api.post("/v1/files/initiate", token=alice.token,
                          json={"conversation_id": conv, "filename": "a.bin",
                                "mime_type": "application/octet-stream", "file_size": 10 * MIB,
                                "chunk_size": 5 * MIB})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json["error"]["code"], "service_unavailable", r)
        self.assertIsNotNone(r.headers.get("Retry-After"), r)
        self.assertIn("dependency down", self.server.log_tail(200))


@unittest.skipUnless(cluster_mode() and os.environ.get("CHAT4ALL_TEST_S3_ENDPOINT"),
                     "needs MinIO (cluster mode)")
class BlobBucketMissingTest(UploadCase):
    """MinIO answers but the bucket is not there: shown as such."""

    server_env = {**s3_env("nobucket"), "CHAT4ALL_BLOBS_S3_BUCKET": "no-such-bucket-" + new_id()[:8]}

    def test_a_missing_bucket_is_named(self):
        status, body = blobs_state(self.api)
        self.assertEqual(status, 200, body)
        self.assertTrue(body["dependencies"]["blobs"].startswith("down: no bucket no-such-bucket-"), body)


if __name__ == "__main__":
    unittest.main()
