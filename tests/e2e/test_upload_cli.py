"""`chat4all upload FILE --conversation N`: the terminal client uploads a file, is killed
part-way, and when run again resumes (asks the status, sends only the missing chunks),
completes, and prints the file id; the server has the file with the source's SHA-256."""

import hashlib
import json
import os
import random
import signal
import subprocess
import tempfile
import time
import unittest

from harness import DEFAULT_PASSWORD, User, binary_path, create_conversation, wait_for
from test_uploads import UploadCase, s3_env

MIB = 1024 * 1024


class UploadCliTest(UploadCase):
    server_env = {**s3_env("cli")}

    def run_cli(self, path, conv, env, *extra):
        return subprocess.Popen([binary_path(), "upload", path, "--conversation", str(conv),
                                 "--url", f"http://{self.server.base}", "--user", self.alice.name,
                                 "--chunk-size", str(5 * MIB), *extra],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_upload_is_killed_then_resumes(self):
        self.alice = User(self.api, "alice")
        bob = User(self.api, "bob")
        conv = create_conversation(self.api, self.alice.token, [bob.id], type_="private")["id"]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "video.bin")
            data = random.Random("cli").randbytes(40 * MIB + 123)
            with open(path, "wb") as f:
                f.write(data)
            sha = hashlib.sha256(data).hexdigest()
            env = {**os.environ, "XDG_CACHE_HOME": os.path.join(tmp, "cache"), "CHAT4ALL_PASSWORD": DEFAULT_PASSWORD}
            # The first run is killed once a few chunks arrived (the state file names the upload).
            p = self.run_cli(path, conv, env, "--max-rate", str(10 * MIB))  # ~4 s: time to kill it
            state_dir = os.path.join(tmp, "cache", "chat4all", "uploads")

            def some_chunks():
                files = [f for f in os.listdir(state_dir) if not f.startswith(".")] if os.path.isdir(state_dir) else []
                if not files:
                    return None
                with open(os.path.join(state_dir, files[0])) as f:
                    words = f.read().split()
                if not words:  # the CLI writes it aside and renames it: never empty, but be safe
                    return None
                uid = words[0]
                r = self.status(self.alice, uid)
                return uid if r.status == 200 and r.json["uploaded_chunks"] >= 2 else None
            uid = wait_for(some_chunks, timeout=60, interval=0.02, what="first chunks stored")
            p.send_signal(signal.SIGKILL)
            p.wait()
            before = self.status(self.alice, uid).json
            self.assertEqual(before["status"], "UPLOADING")
            self.assertGreater(len(before["missing_chunks"]), 0)
            # Run again: it resumes with only the missing chunks and completes.
            p = self.run_cli(path, conv, env)
            out, err = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn(f"resuming upload {uid}: {len(before['missing_chunks'])} of 9 chunks to send", err)
            result = json.loads(out)
            self.assertEqual(result["file_id"], uid)
            self.assertEqual(result["sha256"], sha)
            self.assertEqual(os.listdir(state_dir), [])  # the state file is gone
        st, _, got, n = self.download(bob, uid)
        self.assertEqual((st, n, got), (200, len(data), sha))

    def test_bad_invocations_fail_clearly(self):
        self.alice = User(self.api, "carol")
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "XDG_CACHE_HOME": tmp, "CHAT4ALL_PASSWORD": DEFAULT_PASSWORD}
            p = self.run_cli(os.path.join(tmp, "missing.bin"), 1, env)
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("cannot open", err)
            path = os.path.join(tmp, "a.bin")
            with open(path, "wb") as f:
                f.write(b"x" * 1000)
            p = self.run_cli(path, 10**12, env)  # no such conversation
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("initiate: HTTP 40", err)
            env["CHAT4ALL_PASSWORD"] = "wrong-password"
            p = self.run_cli(path, 1, env)
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("login failed: HTTP 401", err)


if __name__ == "__main__":
    unittest.main()
