"""The client's address for per-address login throttling (django-axes).

Behind reverse proxies the connection comes from the nearest proxy, so every client would share
its address and one client's failed logins would lock everyone out. With
``TRUSTED_PROXY_COUNT = n`` the address is the one the n-th proxy from us appended to
``X-Forwarded-For``; entries further left are whatever the client sent and are never trusted.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:
        # A request that did not pass through every proxy: only its connection is known.
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
