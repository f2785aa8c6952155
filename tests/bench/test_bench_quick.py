"""`chat4all-bench all --quick` against the real server it spawns: exit 0, zero loss, and the
JSON result and HTML report written. Also: a missed target gives a non-zero exit."""

from __future__ import annotations

import os
import unittest

from bench_common import load_result, run_bench, tmpdir


class BenchQuick(unittest.TestCase):
    def test_all_quick_passes_with_zero_loss_and_writes_reports(self):
        out = tmpdir(self)
        p = run_bench(["all", "--quick"], out)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(os.path.getsize(os.path.join(out, "report.html")) > 0)
        html = open(os.path.join(out, "report.html"), encoding="utf-8").read()
        self.assertIn("<svg", html)
        r = load_result(out)
        self.assertTrue(r["passed"])
        phases = {ph["name"]: ph for ph in r["phases"]}
        self.assertEqual(set(phases), {"api-single", "api-batch", "ws", "upload"})
        for name in ("api-single", "api-batch"):
            ph = phases[name]
            self.assertEqual(ph["status"], "passed", ph)
            v = ph["summary"]["verify"]
            self.assertGreater(v["expected"], 0)
            self.assertEqual(v["found"], v["expected"])
            self.assertEqual(v["lost"], 0)
            self.assertEqual(v["duplicates"], 0)
            self.assertEqual(v["order_violations"] + v["gaps"], 0)
            self.assertGreater(ph["series"][0]["count"], 0)
        # Modes whose endpoints this server lacks are skipped, never failed.
        for name in ("ws", "upload"):
            self.assertIn(phases[name]["status"], ("passed", "skipped"), phases[name])

    def test_ws_send_batch_closed_loop_and_open_loop_with_zero_loss(self):
        def check(args, listening):
            out = tmpdir(self)
            p = run_bench(["ws", "--quick"] + args, out)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            ph = load_result(out)["phases"][0]
            self.assertEqual(ph["status"], "passed", ph)
            s = ph["summary"]
            v = s["verify"]
            self.assertGreater(v["expected"], 0)
            self.assertEqual((v["found"], v["lost"], v["duplicates"]), (v["expected"], 0, 0))
            self.assertEqual(v["order_violations"] + v["gaps"], 0)
            self.assertGreater(s["accepted_msgs_per_s"], 0)
            names = [t["name"] for t in ph["targets"]]
            self.assertIn("send ack p99 (durable accept)", names)
            if listening:
                self.assertIn("notification p99", names)
                self.assertGreater(s["notifications_received"], 0)
            else:
                self.assertNotIn("notification p99", names)
                self.assertIn("not applicable", s["notifications"])
                self.assertIn("not applicable", ph["note"])
                self.assertEqual(s["notifications_received"], 0)
            return ph

        # Closed loop, send_batch of 10, nobody listening: the send path alone.
        ph = check(["--ws-rate", "0", "--ws-batch", "10", "--ws-window", "2",
                    "--ws-listeners", "none"], False)
        self.assertEqual(ph["parameters"]["loop"], "closed")
        self.assertEqual(ph["parameters"]["send_via"], "WebSocket action send_batch")
        self.assertEqual(ph["summary"]["messages_accepted"] % 10, 0)
        # Open loop, send_batch of 5, every connection listening: notifications still timed.
        ph = check(["--ws-batch", "5"], True)
        self.assertEqual(ph["parameters"]["loop"], "open")

    def test_a_missed_target_exits_non_zero(self):
        out = tmpdir(self)
        p = run_bench(["api", "--quick", "--endpoint", "single", "--target-p99-ms", "0.000001"], out)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        r = load_result(out)
        self.assertFalse(r["passed"])
        missed = [t["name"] for t in r["phases"][0]["targets"] if not t["passed"]]
        self.assertEqual(missed, ["p99 latency (from intended send time)"])
        # The loss check still ran and found nothing lost.
        self.assertEqual(r["phases"][0]["summary"]["verify"]["lost"], 0)


if __name__ == "__main__":
    unittest.main()
