"""Shared helpers of the chat4all-bench end-to-end tests (standard library only)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def binary(var: str, default: str) -> str:
    p = os.environ.get(var) or os.path.join(ROOT, "build", default)
    if not os.access(p, os.X_OK):
        raise unittest.SkipTest(f"{p} not built; set {var}")
    return p


def run_bench(args: list[str], out: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs chat4all-bench against a server it spawns itself; returns the finished process."""
    cmd = [binary("CHAT4ALL_BENCH_BIN", "chat4all-bench")] + args + [
        "--spawn", binary("CHAT4ALL_BIN", "chat4all"), "--out", out]
    # The spawned server inherits the environment: keep the caller's CHAT4ALL_* out of it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT4ALL_")}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def load_result(out: str) -> dict:
    with open(os.path.join(out, "result.json"), encoding="utf-8") as f:
        return json.load(f)


def tmpdir(test: unittest.TestCase) -> str:
    d = tempfile.TemporaryDirectory(prefix="chat4all-bench-test.")
    test.addCleanup(d.cleanup)
    return d.name
