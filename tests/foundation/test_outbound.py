"""Webhook URLs (core.outbound): loopback, private, link-local and reserved addresses are
refused, when a URL is saved and on every connection a delivery makes, unless
WEBHOOK_ALLOWED_NETWORKS allows them. The tests' own settings allow loopback; these empty it."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator

import pytest

from core import outbound

REFUSED = [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1",  # noqa: S104
    "::1", "::", "fe80::1", "fc00::1", "2001:db8::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "ff02::1",
]  # fmt: skip
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"]


@pytest.fixture
def nothing_allowed(settings) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_ALLOWED_NETWORKS = []


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_refused(nothing_allowed: None, address: str) -> None:
    assert outbound.address_refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_allowed(nothing_allowed: None, address: str) -> None:
    assert not outbound.address_refused(ipaddress.ip_address(address))


def test_allow_list_opens_exactly_its_networks(settings) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8", "::1/128"]
    assert not outbound.address_refused(ipaddress.ip_address("10.9.9.9"))
    assert not outbound.address_refused(ipaddress.ip_address("::ffff:10.9.9.9"))
    assert not outbound.address_refused(ipaddress.ip_address("::1"))
    assert outbound.address_refused(ipaddress.ip_address("127.0.0.1"))
    assert outbound.address_refused(ipaddress.ip_address("192.168.0.1"))


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/hook",  # a name: resolved, every address checked
        "http://127.0.0.1/",
        "http://[::1]:9000/x",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/slack",
        "http://0x7f000001/",  # 127.0.0.1 spelt as a number
        "http://2130706433/",
    ],
)
def test_check_url_refuses_internal_targets(nothing_allowed: None, url: str) -> None:
    with pytest.raises(outbound.UnsafeURL, match="webhooks may not reach"):
        outbound.check_url(url)


def test_check_url_shape_and_unresolvable_hosts(nothing_allowed: None) -> None:
    for bad in ("ftp://example.com/x", "javascript:alert(1)", "http:///nohost"):
        with pytest.raises(outbound.UnsafeURL, match="http:// or https://"):
            outbound.check_url(bad)
    outbound.check_url("https://93.184.215.14/hook")
    # Unresolvable now: accepted when saved, checked again when delivering.
    outbound.check_url("https://hooks.invalid/services/x")


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def test_post_refuses_loopback_unless_allowed(settings, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(outbound.UnsafeURL):
            outbound.post(f"http://{host}:{receiver.port}/hook", content=b"x", timeout=5)
    assert receiver.bodies == []
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    response = outbound.post(f"http://localhost:{receiver.port}/hook", content=b"ok", timeout=5)
    assert response.status_code == 200
    assert receiver.bodies == [b"ok"]


def test_post_ignores_proxies_from_the_environment(
    settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # A proxy would make the connection for us, to an address nobody checked.
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    monkeypatch.setenv("HTTP_PROXY", "http://192.0.2.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://192.0.2.1:3128")
    response = outbound.post(f"http://127.0.0.1:{receiver.port}/hook", content=b"direct", timeout=5)
    assert response.status_code == 200 and receiver.bodies == [b"direct"]
