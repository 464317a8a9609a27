"""`make test`'s browser check (dashboard/runtime/browser.py): when it installs Chromium, when it
only warns, and when it fails the run. The operating system is replaced by a fake: nothing is
installed here. These tests drive no browser, so they run (unmarked) even without one."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from runtime import browser
from runtime.browser import System, ensure_browser, is_ci
from tests.conftest import BASE_DIR

DEBIAN = "/usr/bin/chromium"


@dataclass
class FakeOS:
    """Which files exist, who we are, and what apt-get does; records the commands run."""

    present: set[str] = field(default_factory=set)
    root: bool = True
    apt: bool = True
    failing: str | None = None  # "update" or "install"
    installs_to: str = DEBIAN
    commands: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)

    def run(self, argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        self.commands.append((argv, dict(env)))
        if argv[1] == self.failing:
            return subprocess.CompletedProcess(argv, 100, "", "E: Unable to locate package")
        if argv[1] == "install":
            self.present.add(self.installs_to)
        return subprocess.CompletedProcess(argv, 0, "", "")

    def system(self) -> System:
        return System(
            executable=lambda path: path in self.present,
            is_root=lambda: self.root,
            which=lambda name: f"/usr/bin/{name}" if self.apt and name == "apt-get" else None,
            run=self.run,
        )


def check(fake: FakeOS, *, ci: bool, env: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    status = ensure_browser(ci=ci, env=env or {}, system=fake.system(), out=out)
    return status, out.getvalue()


@pytest.mark.parametrize("ci", [False, True])
def test_an_installed_chromium_is_enough(ci: bool) -> None:
    fake = FakeOS(present={DEBIAN})
    assert check(fake, ci=ci) == (0, "")
    assert fake.commands == []


def test_chromium_path_names_the_browser() -> None:
    fake = FakeOS(present={"/opt/chrome/chrome"})
    assert check(fake, ci=True, env={"CHROMIUM_PATH": "/opt/chrome/chrome"}) == (0, "")
    assert browser.chromium_path({"CHROMIUM_PATH": " /opt/chrome/chrome "}) == "/opt/chrome/chrome"
    assert browser.chromium_path({"CHROMIUM_PATH": ""}) == DEBIAN


@pytest.mark.parametrize("ci", [False, True])
def test_root_with_apt_installs_it_quietly(ci: bool) -> None:
    fake = FakeOS()
    status, output = check(fake, ci=ci)
    assert status == 0
    assert [argv for argv, _ in fake.commands] == [browser.APT_UPDATE, browser.APT_INSTALL]
    install = fake.commands[1][0]
    assert install[:3] == ["apt-get", "install", "-y"] and install[-1] == "chromium"
    assert "--no-install-recommends" in install and "-qq" in install
    assert all(e == {"DEBIAN_FRONTEND": "noninteractive"} for _, e in fake.commands)
    assert output.splitlines() == [
        "Installing Chromium for the browser tests (apt-get install chromium)…",
        f"Chromium installed at {DEBIAN}.",
    ]


@pytest.mark.parametrize(("root", "apt"), [(False, True), (True, False), (False, False)])
def test_without_root_and_apt_it_warns_locally_and_fails_on_ci(root: bool, apt: bool) -> None:
    fake = FakeOS(root=root, apt=apt)
    status, output = check(fake, ci=False)
    assert status == 0 and fake.commands == []
    assert "Chromium is not installed (/usr/bin/chromium is missing)" in output
    assert "browser tests skipped" in output and "sudo apt-get install chromium" in output
    status, output = check(fake, ci=True)
    assert status == 1 and fake.commands == []
    assert "the browser tests (tests/e2e) cannot run" in output


@pytest.mark.parametrize("failing", ["update", "install"])
def test_a_failed_install_is_reported(failing: str) -> None:
    fake = FakeOS(failing=failing)
    status, output = check(fake, ci=True)
    assert status == 1
    assert f"`apt-get {failing}" in output and "failed with exit code 100" in output
    assert "E: Unable to locate package" in output
    assert len(fake.commands) == (1 if failing == "update" else 2)
    assert check(FakeOS(failing=failing), ci=False)[0] == 0


def test_an_install_that_leaves_no_browser_is_reported() -> None:
    fake = FakeOS(installs_to="/usr/lib/chromium/chromium")
    status, output = check(fake, ci=True)
    assert (
        status == 1
        and "apt-get installed chromium but /usr/bin/chromium is still missing" in output
    )


def test_a_missing_chromium_path_is_not_papered_over_with_an_install() -> None:
    fake = FakeOS()
    env = {"CHROMIUM_PATH": "/opt/nowhere/chrome"}
    status, output = check(fake, ci=True, env=env)
    assert status == 1 and fake.commands == []
    assert "CHROMIUM_PATH=/opt/nowhere/chrome is not an executable file" in output
    assert check(fake, ci=False, env=env)[0] == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), ("1", True), ("yes", True),
     ("", False), ("false", False), ("0", False), ("no", False), (None, False)],
)  # fmt: skip
def test_ci_is_read_from_the_environment(value: str | None, expected: bool) -> None:
    assert is_ci({} if value is None else {"CI": value}) is expected


@pytest.mark.parametrize(("ci", "status"), [("", 0), ("true", 1)])
def test_the_command_line_entry_point(ci: str, status: int) -> None:
    # CHROMIUM_PATH pointing nowhere: the real check runs and never reaches apt-get.
    env = {"PATH": "/usr/bin:/bin", "CHROMIUM_PATH": "/nonexistent/chromium", "CI": ci}
    result = subprocess.run(
        [sys.executable, "-m", "runtime.browser"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == status, result.stdout + result.stderr
    assert "CHROMIUM_PATH=/nonexistent/chromium is not an executable file" in result.stdout
