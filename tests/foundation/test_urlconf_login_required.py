"""Walks the whole URLconf: every URL not on the public allow-list sends anonymous users to
the login page, so views that later issues add are covered without new tests."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

from tests.permissions import LOGIN, outcome

pytestmark = pytest.mark.django_db

# Public by design: each has its own protection (none needed, a token, a signature or a key).
PUBLIC = (
    re.compile(r"^/accounts/login/$"),
    re.compile(r"^/healthz$"),
    re.compile(r"^/admin/login/$"),
    re.compile(r"^/sandbox/"),
    re.compile(r"^/share/"),
    re.compile(r"^/webhooks/"),
    # The REST API's operations: a token in every request (tests/api: 401 without one).
    re.compile(r"^/api/v1/(?!docs$|openapi\.json$)"),
    re.compile(r"^/static/"),
    re.compile(r"^/favicon\.ico$"),  # the static icon browsers ask for on every site
)

SAMPLES = {"int": "1", "str": "x", "slug": "x", "uuid": str(uuid.UUID(int=1)), "path": "x/y"}


def _route_example(pattern: object) -> str:
    if isinstance(pattern, RoutePattern):
        return re.sub(
            r"<(?:(\w+):)?\w+>", lambda m: SAMPLES.get(m.group(1) or "str", "x"), str(pattern)
        )
    if isinstance(pattern, RegexPattern):
        text = str(pattern).lstrip("^").rstrip("$").replace("\\Z", "")
        text = re.sub(r"\(\?P<\w+>[^)]*\)", "x", text)
        return text.replace("\\", "")
    raise TypeError(pattern)


def all_urls(resolver: URLResolver | None = None, prefix: str = "/") -> list[str]:
    resolver = resolver or get_resolver()
    urls = []
    for entry in resolver.url_patterns:
        part = prefix + _route_example(entry.pattern)
        if isinstance(entry, URLResolver):
            urls.extend(all_urls(entry, part))
        elif isinstance(entry, URLPattern):
            urls.append(part)
    return sorted(set(urls))


def test_walk_covers_the_urlconf() -> None:
    urls = all_urls()
    # Sanity: the walk sees the app, the admin and the public endpoints.
    for expected in ("/", "/system/", "/datasets/", "/healthz", "/accounts/login/", "/admin/"):
        assert expected in urls


def test_every_non_public_url_requires_login() -> None:
    client = Client()
    leaks = []
    for url in all_urls():
        if any(p.match(url) for p in PUBLIC):
            continue
        for method in ("get", "post"):
            got = outcome(getattr(client, method)(url))
            if got != LOGIN:
                leaks.append(f"{method.upper()} {url} -> {got}")
    assert not leaks, "reachable without login:\n" + "\n".join(leaks)


def test_public_allow_list_is_really_public() -> None:
    client = Client()
    for url in ("/accounts/login/", "/healthz", "/admin/login/"):
        assert outcome(client.get(url)) != LOGIN, url
