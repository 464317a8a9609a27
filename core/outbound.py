"""Webhooks out: URLs that users type, which the server then POSTs to.

Such a URL must not let a user reach into the server's own network (the metadata service at
169.254.169.254, a database on 10.x, an admin port on localhost). The host is resolved and every
address it resolves to must be public; ``WEBHOOK_ALLOWED_NETWORKS`` lists the networks allowed
anyway (the tests' loopback receivers, an intranet chat server). The check runs when a URL is
saved (an early, friendly answer) and again on every connection the POST makes, against the very
addresses it connects to, so a name that later resolves elsewhere (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpcore
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = ("http", "https")


class UnsafeURL(ValueError):
    """The URL points at an address webhooks may not reach (or is no http(s) URL)."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n) for n in settings.WEBHOOK_ALLOWED_NETWORKS]


def address_refused(address: IPAddress) -> bool:
    """Whether a webhook may not connect to ``address``: anything but a public unicast address,
    unless ``WEBHOOK_ALLOWED_NETWORKS`` allows it."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in network for network in _allowed_networks()):
        return False
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal resolves to itself, without DNS).
    Raises ``socket.gaierror`` when it does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _checked_addresses(host: str, port: int) -> list[IPAddress]:
    addresses = _resolve(host, port)
    refused = [a for a in addresses if address_refused(a)]
    if refused:
        raise UnsafeURL(
            f"{host} resolves to {refused[0]}, a loopback, private, link-local or reserved "
            "address that webhooks may not reach (WEBHOOK_ALLOWED_NETWORKS can allow it)."
        )
    return addresses


def check_url(url: str) -> None:
    """Raise ``UnsafeURL`` unless ``url`` is an http(s) URL whose host resolves to allowed
    addresses only. A host that does not resolve now is let through: DNS may be down for a
    moment, and every delivery checks the addresses it connects to anyway."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UnsafeURL(f"Not a URL: {exc}") from None
    if parsed.scheme not in SCHEMES or not parsed.host:
        raise UnsafeURL("Enter an http:// or https:// URL.")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        _checked_addresses(parsed.host, port)
    except (socket.gaierror, UnicodeError):
        return


class _CheckedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses it when any address is not allowed, and connects to
    the addresses it checked (TLS still verifies the certificate against the host name)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = _checked_addresses(host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        last_error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"{host} has no address")


class _CheckedTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__(trust_env=False)
        # httpx offers no public way to choose the network backend; its pool does.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_CheckedBackend()
        )


def post(url: str, *, timeout: httpx.Timeout | float, **kwargs: Any) -> httpx.Response:
    """POST to a webhook URL, connecting only to allowed addresses. Raises ``UnsafeURL`` when
    the URL (or what its host resolves to now) is refused, and httpx's errors otherwise. No
    proxy from the environment (it would connect for us, unchecked), no redirects."""
    parsed = httpx.URL(url)
    if parsed.scheme not in SCHEMES:
        raise UnsafeURL("Enter an http:// or https:// URL.")
    with httpx.Client(
        transport=_CheckedTransport(), trust_env=False, timeout=timeout, follow_redirects=False
    ) as client:
        return client.post(url, **kwargs)
