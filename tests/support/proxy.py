"""A loopback HTTP proxy in front of the sandbox that loses answers on purpose.

The sandbox's own faults fire before its view runs, so they can only show failures where the
request had no effect. The faults that matter for a create are the other kind: the provider
did the work and the answer never arrived. This proxy forwards each request to the upstream
and then, per rule, throws the answer away (closes the connection), holds it past the
client's timeout, replaces it with an error status, or rewrites the request first (to play a
provider that ignores a query filter). Everything else passes through unchanged.

    with FaultProxy(live_server.url) as proxy:
        proxy.add(Rule(method="POST", path=r"/fine_tuning/jobs$", action="drop", count=1))
        base_url = proxy.url + "/sandbox/v1"

Threaded (one thread per client connection, HTTP/1.1 keep-alive, as httpx pools them); each
request goes upstream on a fresh connection. Bodies are buffered: it is for small test
traffic, not for measuring anything.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

Action = Literal["drop", "delay", "answer_after", "refuse", "rewrite", "transform"]
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "host",
    }
)


@dataclass(frozen=True)
class ProxyRequest:
    method: str
    target: str  # path and query, as the client sent them
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


def metadata_value(key: str) -> Callable[[ProxyRequest], str]:
    """A ``once_per`` key: the value of ``metadata[key]`` in a JSON request body (for a job
    create, the Tuneboard job it is for), "" when there is none."""

    def value(request: ProxyRequest) -> str:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return ""
        metadata = body.get("metadata") if isinstance(body, dict) else None
        return str(metadata.get(key, "")) if isinstance(metadata, dict) else ""

    return value


@dataclass
class Rule:
    """What to do to matching requests.

    ``action``:
      - ``drop``: forward, then close the connection without answering (the work is done,
        the client sees a dropped connection);
      - ``delay``: forward, then hold the answer ``seconds`` before sending it (past the
        client's read timeout, the work is done and the client sees a timeout);
      - ``answer_after``: forward, then answer ``status`` instead (a 5xx after the work);
      - ``refuse``: answer ``status`` without forwarding (the work is not done);
      - ``rewrite``: forward with the query parameters matching ``drop_params`` removed;
      - ``transform``: forward, then answer ``transform(body)`` instead of the upstream's body
        (a provider that answers values our own sandbox never sends).
    ``only_success`` limits drop/delay/answer_after to answers the upstream gave with 2xx.
    ``count`` caps how often the rule fires; ``once_per`` (a key per request, e.g. one per
    launch) makes it fire at most once per key.
    """

    action: Action
    method: str | None = None
    path: str = ""  # regex searched in the path (without the query)
    status: int = 502
    seconds: float = 0.0
    drop_params: str = ""  # regex matched against query parameter names
    transform: Callable[[bytes], bytes] | None = None
    only_success: bool = True
    count: int | None = None
    once_per: Callable[[ProxyRequest], str] | None = None
    fired: int = 0
    keys: set[str] = field(default_factory=set)

    def matches(self, request: ProxyRequest) -> bool:
        if self.method is not None and request.method != self.method.upper():
            return False
        return not self.path or re.search(self.path, request.path) is not None


@dataclass(frozen=True)
class Exchange:
    """One request the proxy handled: what it did and what the upstream answered."""

    method: str
    target: str
    upstream_status: int | None  # None: not forwarded
    action: str  # "pass" or the rule's action


class FaultProxy:
    def __init__(self, upstream: str, *, port: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http://host:port URL, got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.rules: list[Rule] = []
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        # Set on close: held answers are let go at once instead of outliving the test.
        self._closing = threading.Event()
        # Client connections, so that closing the proxy cuts them like a server that stops.
        self._connections: set[socket.socket] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def handled(self, method: str, path: str = "") -> list[Exchange]:
        """The exchanges for ``method`` whose path matches the regex ``path``."""
        with self._lock:
            return [
                e
                for e in self.exchanges
                if e.method == method and re.search(path, urlsplit(e.target).path)
            ]

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop like a server that goes away: no new connection is accepted and the open
        ones are cut."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=10)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------------

    def _rules_for(self, request: ProxyRequest) -> Iterator[Rule]:
        with self._lock:
            rules = list(self.rules)
        return (rule for rule in rules if rule.matches(request))

    def _claim(self, rule: Rule, request: ProxyRequest) -> bool:
        """Whether ``rule`` fires for this request, counting it if so."""
        with self._lock:
            if rule.count is not None and rule.fired >= rule.count:
                return False
            if rule.once_per is not None:
                key = rule.once_per(request)
                if key in rule.keys:
                    return False
                rule.keys.add(key)
            rule.fired += 1
            return True

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def _forward(
        self, request: ProxyRequest, target: str
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            headers["Content-Length"] = str(len(request.body))
            upstream.request(request.method, target, body=request.body, headers=headers)
            response = upstream.getresponse()
            body = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, response.reason, kept, body
        finally:
            upstream.close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        request = ProxyRequest(
            method=handler.command,
            target=handler.path,
            headers={k: v for k, v in handler.headers.items()},
            body=_read_body(handler),
        )
        target = request.target
        fired: Rule | None = None
        for rule in self._rules_for(request):
            if rule.action == "rewrite":
                if self._claim(rule, request):
                    target = _without_params(target, rule.drop_params)
                continue
            if rule.action == "refuse":
                if self._claim(rule, request):
                    self._record(Exchange(request.method, request.target, None, "refuse"))
                    _answer(handler, rule.status, "Refused", [], _error_body(rule.status))
                    return
                continue
            if rule.count is None or rule.fired < rule.count:  # else a later rule may fire
                fired = rule
                break
        status, reason, headers, body = self._forward(request, target)
        action = "pass"
        wanted = fired is not None and (not fired.only_success or 200 <= status < 300)
        if wanted and fired is not None and self._claim(fired, request):
            action = fired.action
        self._record(Exchange(request.method, request.target, status, action))
        if action == "drop":
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if action == "delay" and fired is not None:
            self._closing.wait(fired.seconds)
        if action == "answer_after" and fired is not None:
            status, reason, headers, body = fired.status, "Error", [], _error_body(fired.status)
        if action == "transform" and fired is not None and fired.transform is not None:
            encoded = any(k.lower() == "content-encoding" and v == "gzip" for k, v in headers)
            body = fired.transform(gzip.decompress(body) if encoded else body)
            headers = [(k, v) for k, v in headers
                       if k.lower() not in ("content-length", "content-encoding")]  # fmt: skip
        _answer(handler, status, reason, headers, body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                super().finish()

            def _any(self) -> None:
                try:
                    proxy._handle(self)
                except OSError:  # the client went away
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _any

            def log_message(self, format: str, *args: object) -> None:
                pass  # the exchanges list is the log

        return Handler


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # the CRLF after each chunk
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _without_params(target: str, names: str) -> str:
    parts = urlsplit(target)
    kept = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not re.search(names, k)
    ]
    return parts.path + (f"?{urlencode(kept)}" if kept else "")


def _error_body(status: int) -> bytes:
    return (
        b'{"error": {"message": "The proxy answered %d on purpose.", "type": "server_error",'
        b' "param": null, "code": null}}' % status
    )


def _answer(
    handler: BaseHTTPRequestHandler,
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    handler.send_response_only(status, reason)
    for name, value in headers:
        handler.send_header(name, value)
    if not any(name.lower() == "content-type" for name, _ in headers):
        handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()
