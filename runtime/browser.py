"""Make sure the browser tests (``tests/e2e``) have a Chromium: run by `make test` before pytest.

The tests drive the system's Chromium through Playwright (no browser download: Playwright's own
builds cannot be fetched here). When it is missing and this machine can install it (root with
apt-get, as on CI), it is installed from the distribution's packages. When it cannot be
installed, the browser tests skip themselves; that is fine on a developer's machine, but on CI
it would hide them, so there the exit status is 1.

    python -m runtime.browser      # CI=true makes a missing browser an error
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

DEFAULT_CHROMIUM = "/usr/bin/chromium"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
# Wait for another apt/dpkg run (unattended upgrades) instead of failing on its lock at once.
APT_LOCK = ["-o", "DPkg::Lock::Timeout=120"]
APT_UPDATE = ["apt-get", "update", "-qq", *APT_LOCK]
APT_INSTALL = [
    "apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_LOCK, "chromium",
]  # fmt: skip
FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})


def chromium_path(env: Mapping[str, str] | None = None) -> str:
    """The Chromium the browser tests launch: ``CHROMIUM_PATH``, else Debian's."""
    value = (os.environ if env is None else env).get("CHROMIUM_PATH", "").strip()
    return value or DEFAULT_CHROMIUM


def is_ci(env: Mapping[str, str] | None = None) -> bool:
    # CI services spell it "true", "True" or "1"; anything but an explicit no counts.
    return (os.environ if env is None else env).get("CI", "").strip().lower() not in FALSE_VALUES


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _is_root() -> bool:
    return os.geteuid() == 0


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )


@dataclass(frozen=True)
class System:
    """The operating-system calls the decision depends on (replaced in the unit tests)."""

    executable: Callable[[str], bool] = _executable
    is_root: Callable[[], bool] = _is_root
    which: Callable[[str], str | None] = shutil.which
    run: Callable[[list[str], Mapping[str, str]], subprocess.CompletedProcess[str]] = _run


def _tail(result: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    text = ((result.stdout or "") + (result.stderr or "")).strip()
    return "\n".join(text.splitlines()[-lines:])


def ensure_browser(
    *,
    ci: bool,
    env: Mapping[str, str] | None = None,
    system: System | None = None,
    out: TextIO | None = None,
) -> int:
    """0 when Chromium is there (or was just installed) or when its absence is acceptable
    (not on CI: the browser tests skip); 1 on CI when it is missing and cannot be installed."""
    env = os.environ if env is None else env
    system = system or System()
    out = out or sys.stdout
    path = chromium_path(env)
    if system.executable(path):
        return 0
    missing = 1 if ci else 0
    consequence = "the browser tests (tests/e2e) cannot run" if ci else "browser tests skipped"
    if env.get("CHROMIUM_PATH", "").strip():
        # An explicit choice is not second-guessed: installing Debian's package would not
        # put a browser at that path.
        print(f"CHROMIUM_PATH={path} is not an executable file: {consequence}.", file=out)
        return missing
    if not (system.is_root() and system.which("apt-get")):
        print(
            f"Chromium is not installed ({path} is missing) and it can be installed only as "
            f"root with apt-get: {consequence}. Install it with "
            "`sudo apt-get install chromium`, or set CHROMIUM_PATH to a Chromium binary.",
            file=out,
        )
        return missing
    print("Installing Chromium for the browser tests (apt-get install chromium)…", file=out)
    out.flush()
    for argv in (APT_UPDATE, APT_INSTALL):
        result = system.run(argv, APT_ENV)
        if result.returncode != 0:
            print(
                f"`{' '.join(argv)}` failed with exit code {result.returncode}: "
                f"{consequence}.\n{_tail(result)}",
                file=out,
            )
            return missing
    if not system.executable(path):
        print(f"apt-get installed chromium but {path} is still missing: {consequence}.", file=out)
        return missing
    print(f"Chromium installed at {path}.", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(ensure_browser(ci=is_ci()))
