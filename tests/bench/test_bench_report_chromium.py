"""The HTML report renders in headless Chromium with no network: a screenshot is taken and the
DOM holds the SVG charts. Skipped only when Chromium is missing outside CI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from bench_common import run_bench, tmpdir


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class ReportInChromium(unittest.TestCase):
    def setUp(self):
        self.browser = chromium()
        if not self.browser:
            if os.environ.get("CI"):
                self.fail("chromium is not installed (scripts/setup.sh installs it)")
            raise unittest.SkipTest("chromium is not installed")

    def headless(self, *args: str) -> subprocess.CompletedProcess:
        profile = tempfile.TemporaryDirectory(prefix="chat4all-chromium.")
        self.addCleanup(profile.cleanup)
        cmd = [self.browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile.name}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def test_report_renders_its_charts(self):
        out = tmpdir(self)
        p = run_bench(["api", "--quick"], out)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        url = "file://" + os.path.join(out, "report.html")

        dom = self.headless("--dump-dom", url)
        self.assertEqual(dom.returncode, 0, dom.stderr)
        svgs = len(re.findall(r"<svg\b", dom.stdout))
        lines = len(re.findall(r"<polyline\b", dom.stdout))
        # Two api phases, each: throughput, latency over time, percentile spectrum, histogram,
        # error breakdown.
        self.assertGreaterEqual(svgs, 10, dom.stdout[:2000])
        self.assertGreaterEqual(lines, 2 * (1 + 4 + 1 + 1))
        self.assertIn("chat4all-bench report", dom.stdout)

        png = os.path.join(out, "report.png")
        shot = self.headless(f"--screenshot={png}", "--window-size=1000,3000", "--hide-scrollbars", url)
        self.assertEqual(shot.returncode, 0, shot.stderr)
        self.assertTrue(os.path.exists(png), shot.stderr)
        with open(png, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"\x89PNG\r\n\x1a\n"))
        self.assertGreater(len(data), 10_000)  # a blank page compresses to far less


if __name__ == "__main__":
    unittest.main()
