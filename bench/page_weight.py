"""Page weight: cold and warm loads of the run, compare, dataset and share pages in Chromium.

    python bench/page_weight.py [--rounds 5] [--out var/bench/page-weight.md]

How it runs: through the browser suite (``python -m runtime test`` on
tests/e2e/test_page_weight.py, with its embedded PostgreSQL and Redis under var/test), so the
pages, their data and the static files are exactly what that test checks: static files
collected as in production (hashed names, Brotli and gzip copies) and served by WhiteNoise from
a threaded Django server on loopback, the system's Chromium (headless) through Playwright.

* Data: a finished run of 2,000 steps (its page), a comparison of four such runs, a validated
  dataset of 200 chat examples, and the run's share link; the runs list as the baseline, a
  page without charts.
* Each page is loaded once unmeasured (the server's own first-view work is bench/pages.py's
  subject), then per round: a new browser context (empty cache) loads it cold, then warm.
* Figures are Chromium's navigation timing, in ms from the start of the navigation, medians
  over the rounds: HTML received (responseEnd), first paint (first-contentful-paint),
  DOMContentLoaded, load (loadEventEnd) and charts drawn (the first frame with every chart's
  SVG); bytes are the page's and every resource's transferSize (compressed, with headers).

Loopback has no network cost, so these times are the server's and the browser's work; on a
shared, busy machine compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="cold+warm loads per page")
    parser.add_argument("--out", type=Path, default=BASE_DIR / "var" / "bench" / "page-weight.md")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.unlink(missing_ok=True)
    env = dict(os.environ, PAGE_WEIGHT_REPORT=str(args.out.resolve()),
               PAGE_WEIGHT_ROUNDS=str(args.rounds))  # fmt: skip
    test = "tests/e2e/test_page_weight.py::test_page_weight_report"
    command = [sys.executable, "-m", "runtime", "test", test, "-p", "no:randomly", "-n", "0", "-q"]
    result = subprocess.run(command, cwd=BASE_DIR, env=env, check=False)
    if result.returncode or not args.out.exists():
        sys.exit(result.returncode or 1)
    print(f"\n{args.rounds} rounds, medians (written to {args.out}):\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
