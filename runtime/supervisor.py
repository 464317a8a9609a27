"""`make run` and `make test`: start what is missing, run Tuneboard or its tests, stop it all.

`make run` keeps every child running (``runtime.children``): web, worker, beat, Redis and
PostgreSQL are restarted when one dies, and Ctrl-C stops them in order (web, worker and beat,
then Redis and PostgreSQL), waiting for each.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from cryptography.fernet import Fernet

from config.env import EnvError, env_bool, env_int, env_str, persistent_secret
from runtime.children import GaveUp, Supervisor
from runtime.embedded import EmbeddedServices

BASE_DIR = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Shutdown(Exception):
    """Raised from the signal handler to unwind start-up or the wait loop."""


class AlreadyRunning(Exception):
    pass


def var_dir(env: dict[str, str]) -> Path:
    value = env.get("TUNEBOARD_VAR_DIR", "").strip()
    return Path(value).expanduser().resolve() if value else BASE_DIR / "var"


# Development secrets, kept under var/ (mode 600) and passed to every process `make run` and
# `make test` start: settings alone refuse to start without them, so that no production machine
# silently invents its own.
DEVELOPMENT_SECRETS: tuple[tuple[str, str, Callable[[], str]], ...] = (
    ("SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50)),
    ("FIELD_ENCRYPTION_KEY", "field_encryption_key", lambda: Fernet.generate_key().decode()),
    ("SANDBOX_API_KEYS", "sandbox_api_key", lambda: "sk-sandbox-" + secrets.token_urlsafe(24)),
)
LOOPBACK_NETWORKS = "127.0.0.0/8,::1/128"


def _unset(env: dict[str, str], name: str) -> bool:
    return not env.get(name, "").strip()


def apply_defaults(env: dict[str, str]) -> None:
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env["PYTHONUNBUFFERED"] = "1"
    for name, filename, factory in DEVELOPMENT_SECRETS:
        if _unset(env, name):
            env[name] = persistent_secret(var_dir(env) / filename, factory)
    if _unset(env, "SANDBOX_ENABLED"):
        env["SANDBOX_ENABLED"] = "true"


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held open for the lock's whole lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise AlreadyRunning(owner) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        handle.close()


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _install_signal_handlers() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        # Further signals must not interrupt the orderly stop that the first one started.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Shutdown(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _server_argv(env: dict[str, str], host: str, port: int, debug: bool) -> list[str]:
    if debug:
        return [PYTHON, "manage.py", "runserver", f"{host}:{port}"]
    workers = env_int("WEB_CONCURRENCY", 2, minimum=1, environ=env)
    return [
        PYTHON, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        # Threaded workers keep heart-beating during long requests such as 1 GB uploads.
        "--workers", str(workers), "--worker-class", "gthread", "--threads", "4",
        "--timeout", "120", "--access-logfile", "-", "--graceful-timeout", "10",
    ]  # fmt: skip


def run(env: dict[str, str]) -> int:
    apply_defaults(env)
    root = var_dir(env)
    try:
        debug = env_bool("DEBUG", False, environ=env)
        host = env_str("HOST", "127.0.0.1", environ=env) or "127.0.0.1"
        port = env_int("PORT", 8000, minimum=1, maximum=65535, environ=env)
        concurrency = env_int("CELERY_CONCURRENCY", 2, minimum=1, environ=env)
    except EnvError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if host in LOOPBACK_HOSTS:
        # Plain HTTP on this machine only: an https redirect or Secure-only cookies would make
        # the printed URL unusable. Any other bind address keeps the secure defaults (TLS at
        # the proxy), and explicit variables always win.
        env.setdefault("SECURE_SSL_REDIRECT", "false")
        env.setdefault("SECURE_COOKIES", "false")
        # The sandbox's webhooks may reach this machine's Tuneboard.
        env.setdefault("WEBHOOK_ALLOWED_NETWORKS", LOOPBACK_NETWORKS)
    try:
        with exclusive_lock(root / "run.lock"):
            if port_in_use(host, port):
                print(
                    f"Port {port} on {host} is already in use (another server, or Tuneboard "
                    "running from another folder). Set PORT to use another port.",
                    file=sys.stderr,
                )
                return 1
            return _run_locked(env, root, host, port, debug, concurrency)
    except AlreadyRunning as exc:
        print(
            f"Tuneboard is already running from {root} (pid {exc}). Stop it with Ctrl-C in its "
            "terminal first.",
            file=sys.stderr,
        )
        return 1


def _worker_argv(name: str, queues: str, port: int, concurrency: int) -> list[str]:
    return [
        PYTHON, "-m", "celery", "-A", "config", "worker", "-l", "INFO",
        "-Q", queues, "-c", str(concurrency), "--hostname", f"{name}-{port}@%h",
    ]  # fmt: skip


def _beat_argv(root: Path) -> list[str]:
    return [
        PYTHON, "-m", "celery", "-A", "config", "beat", "-l", "INFO",
        "-s", str(root / "celerybeat-schedule"), "--pidfile", str(root / "celerybeat.pid"),
    ]  # fmt: skip


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def _run_locked(
    env: dict[str, str], root: Path, host: str, port: int, debug: bool, concurrency: int
) -> int:
    services = EmbeddedServices(root, env)
    supervisor = Supervisor(env, cwd=BASE_DIR)
    _install_signal_handlers()
    try:
        # Piped: the supervisor labels their lines and keeps them running from now on.
        services.start(output=subprocess.PIPE)
        for server in services.servers:
            supervisor.adopt(server)
        _manage(env, "migrate", "--noinput", "-v", "0")
        if not debug:
            _manage(env, "collectstatic", "--noinput", "-v", "0")
        url_host = f"[{host}]" if ":" in host else host
        if host in ("0.0.0.0", "::"):  # noqa: S104 - reach the sandbox on loopback
            url_host = "127.0.0.1"
        _manage(env, "tuneboard_bootstrap", "--sandbox-url", f"http://{url_host}:{port}/sandbox/v1")
        supervisor.spawn("web", _server_argv(env, host, port, debug))
        supervisor.spawn(
            "worker", _worker_argv("worker", "default,polling,validation", port, concurrency)
        )
        # Provider-bound work (launches, syncs, controls, imports, evaluations) in a worker
        # of its own: a hanging provider cannot hold up validations or the heartbeat.
        supervisor.spawn("provider", _worker_argv("provider", "provider", port, concurrency))
        supervisor.spawn("beat", _beat_argv(root))
        shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::1", "::") else host  # noqa: S104
        deadline = time.monotonic() + 60
        while not wait_for_port(host, port, timeout=0.5):
            supervisor.check()
            if time.monotonic() > deadline:
                print("The web server did not start; see the messages above.", file=sys.stderr)
                return 1
        print(
            f"\nTuneboard is running at http://{shown_host}:{port}/  (Ctrl-C stops it)\n",
            flush=True,
        )
        supervisor.watch()
        return 0  # not reached: watch() ends with Shutdown or GaveUp
    except GaveUp as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return 1
    except Shutdown as stop:
        print(f"\nReceived {stop}; stopping Tuneboard…", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"Start-up step failed: {' '.join(map(str, exc.cmd[1:]))}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # an embedded server did not start
        print(f"Start-up failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_children()
        services.stop()
        print("Tuneboard stopped.", flush=True)


def _parallel_args(env: dict[str, str], pytest_args: list[str]) -> list[str]:
    """pytest-xdist processes for the suite (TEST_PROCESSES, default one more than the cores):
    most tests wait on a worker, a browser or the database, so the cores stay busy with one
    process more than there are (2 cores: 660 s of tests with 3 processes, 866 s with 2).
    Whole files go to one process (their module fixtures start once), and
    tests/xdist_isolation.py gives each process a broker database of its own."""
    asked = any(
        a in ("-n", "--numprocesses", "no:xdist") or a.startswith(("-n", "--numprocesses="))
        for a in pytest_args
    )
    processes = env_int("TEST_PROCESSES", (os.cpu_count() or 1) + 1, minimum=1, environ=env)
    if asked or processes == 1:
        return []
    return ["-n", str(processes), "--dist", "loadfile"]


def test(env: dict[str, str], pytest_args: list[str]) -> int:
    apply_defaults(env)
    # Tests get their own services under var/test so that they never share a broker (and
    # so their tasks) with a `make run` that may be running from the same checkout.
    root = var_dir(env) / "test"
    # Test servers speak plain HTTP on loopback, like a local `make run`.
    env.setdefault("SECURE_SSL_REDIRECT", "false")
    env.setdefault("SECURE_COOKIES", "false")
    env.setdefault("MEDIA_ROOT", str(root / "media"))
    # Live-server threads must not keep connections that block dropping the test database.
    env.setdefault("DATABASE_CONN_MAX_AGE", "0")
    # Polling tests should not wait 15 s between provider syncs.
    env.setdefault("POLL_INTERVAL", "1")
    # Webhook receivers in tests listen on loopback; the refusal is tested with this emptied.
    env.setdefault("WEBHOOK_ALLOWED_NETWORKS", LOOPBACK_NETWORKS)
    try:
        with exclusive_lock(root / "test.lock"):
            services = EmbeddedServices(root, env, durable=False)
            _install_signal_handlers()
            try:
                services.start()
                # A developer mid-way through a model change can skip the check locally.
                if not env_bool("SKIP_MIGRATIONS_CHECK", False, environ=env):
                    subprocess.run(
                        [PYTHON, "manage.py", "makemigrations", "--check", "--dry-run"],
                        cwd=BASE_DIR, env=env, check=True,
                    )  # fmt: skip
                return subprocess.run(
                    [PYTHON, "-m", "pytest", *_parallel_args(env, pytest_args), *pytest_args],
                    cwd=BASE_DIR, env=env,
                ).returncode  # fmt: skip
            except Shutdown:
                return 130
            except subprocess.CalledProcessError:
                print(
                    "makemigrations --check failed: a model change has no migration.",
                    file=sys.stderr,
                )
                return 1
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                services.stop()
    except AlreadyRunning as exc:
        print(f"Tests are already running from this checkout (pid {exc}).", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print("usage: python -m runtime {run | test [pytest args…]}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    return run(env) if argv[0] == "run" else test(env, argv[1:])
