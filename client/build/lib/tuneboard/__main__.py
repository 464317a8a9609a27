"""``python -m tuneboard sync [SPOOL_DIR]``: send what earlier runs could not deliver."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tuneboard import spool
from tuneboard.sender import deliver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuneboard")
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help="deliver spooled reports")
    sync.add_argument("spool", nargs="?", default=None, help="the spool directory")
    sync.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    url, token = os.environ.get("TUNEBOARD_URL", ""), os.environ.get("TUNEBOARD_TOKEN", "")
    if not url or not token:
        print("Set TUNEBOARD_URL and TUNEBOARD_TOKEN.", file=sys.stderr)
        return 2
    root = Path(args.spool) if args.spool else spool.default_root()
    deadline = time.monotonic() + args.timeout
    left = 0
    for directory in sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []:
        if spool.unsent(directory) and not deliver(
            directory, url=url, token=token, deadline=deadline
        ):
            left += 1
    print("Everything is delivered." if not left else f"{left} run(s) still spooled.")
    return 0 if not left else 1


if __name__ == "__main__":
    sys.exit(main())
