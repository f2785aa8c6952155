"""tus 1.0 with an off-the-shelf client: tus-js-client (npm, pinned in tools/tus/package.json
and package-lock.json) uploads a 50 MB file to /v1/tus/, is interrupted after about half of
it, resumes with the upload URL it stored and finishes; the file the server completed has the
source's SHA-256 (the whole-file checksum is verified by the merger, then downloaded again).

Needs node and npm: `npm ci` runs here (into the git-ignored tools/tus/node_modules, with the
npm cache in .cache/npm) when the modules are missing. Skipped without node unless CI is set.
Cluster mode runs on MinIO when CHAT4ALL_TEST_S3_ENDPOINT is set (like test_uploads)."""

import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import unittest

from harness import User, create_conversation, wait_for
from test_uploads import UploadCase, s3_env

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TUS_DIR = os.path.join(ROOT, "tools", "tus")
MIB = 1024 * 1024
SIZE = 50 * MIB
CHUNK = 5 * MIB


def ensure_tus_client():
    if not shutil.which("node") or not shutil.which("npm"):
        if os.environ.get("CI"):
            raise RuntimeError("node and npm are required in CI (scripts/setup.sh installs them)")
        raise unittest.SkipTest("node/npm not installed")
    if not os.path.isdir(os.path.join(TUS_DIR, "node_modules", "tus-js-client")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--cache", os.path.join(ROOT, ".cache", "npm")],
                       cwd=TUS_DIR, check=True, timeout=600, stdout=subprocess.DEVNULL)


class TusJsClientTest(UploadCase):
    server_env = {"CHAT4ALL_UPLOADS_DEFAULT_CHUNK_SIZE": str(CHUNK), **s3_env("tusjs")}

    @classmethod
    def setUpClass(cls):
        ensure_tus_client()
        super().setUpClass()

    def test_tus_js_client_is_interrupted_and_resumes(self):
        alice, bob = User(self.api, "alice"), User(self.api, "bob")
        conv = create_conversation(self.api, alice.token, [bob.id], type_="private")["id"]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "movie.bin")
            data = random.Random("tus-js").randbytes(SIZE)
            with open(path, "wb") as f:
                f.write(data)
            sha = hashlib.sha256(data).hexdigest()
            del data
            env = {**os.environ, "TUS_ENDPOINT": f"http://{self.server.base}/v1/tus/", "TUS_TOKEN": alice.token,
                   "TUS_CONVERSATION": str(conv), "TUS_FILE": path, "TUS_SHA256": sha}
            p = subprocess.run(["node", os.path.join(TUS_DIR, "upload_resume.mjs")], cwd=TUS_DIR, env=env,
                               capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        print(p.stdout, end="")
        events = {e["event"]: e for e in map(json.loads, p.stdout.splitlines())}
        # Interrupted after about half; the server kept whole chunks only, less than everything.
        self.assertGreaterEqual(events["aborted"]["sent"], SIZE // 2)
        self.assertLess(events["aborted"]["sent"], SIZE)
        offset = events["offset"]["offset"]
        self.assertEqual(events["offset"]["status"], 200)
        self.assertGreater(offset, 0)
        self.assertLess(offset, SIZE)
        self.assertEqual(offset % CHUNK, 0)
        upload_id = events["done"]["url"].rstrip("/").rsplit("/", 1)[-1]

        def final():
            r = self.api.get(f"/v1/files/{upload_id}/status", token=alice.token)
            return r.json if r.status == 200 and r.json["status"] in ("COMPLETED", "FAILED") else None
        st = wait_for(final, timeout=120, interval=0.2, what="tus upload merged")
        self.assertEqual(st["status"], "COMPLETED", st)
        self.assertEqual(st["sha256"], sha)
        # The other member downloads the same bytes.
        r = self.api.get(f"/v1/files/{upload_id}", token=bob.token)
        self.assertEqual(r.status, 200)
        self.assertEqual(hashlib.sha256(r.raw).hexdigest(), sha)


if __name__ == "__main__":
    unittest.main()
