"""One pooled httpx client per connection: auth headers, timeouts, retries, error mapping.

Everything that knows about HTTP status codes and headers lives here; the adapter above it
speaks in endpoints and records.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Self

import httpx

from jobs.providers.config import ConnectionConfig
from jobs.providers.errors import (
    OutcomeUnknownError,
    ProviderError,
    TransientProviderError,
    error_class_for_status,
)
from jobs.providers.retry import (
    backoff_seconds,
    retry_after_seconds,
    status_is_retryable,
    status_leaves_outcome_unknown,
)

log = logging.getLogger("jobs.providers")

# Keys shorter than this are not redacted from messages: replacing every occurrence of a
# two-letter "key" would mangle the text and protect nothing.
MIN_REDACTED_KEY_LENGTH = 6
MAX_SNIPPET = 300
# Failures below the HTTP layer that a new attempt can cure. Protocol errors on our side
# (LocalProtocolError), bad URLs and the like are bugs and fail at once.
RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
# Of those, the ones raised before any byte of the request left: the server cannot have
# acted, so even a request that must not be repeated blindly can be sent again.
NOT_SENT_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


@functools.cache
def tuneboard_version() -> str:
    try:
        return metadata.version("tuneboard")
    except metadata.PackageNotFoundError:
        pass
    # Not installed as a distribution (the usual case): the checkout's pyproject says it.
    try:
        with open(Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def redact(text: str, secret: str) -> str:
    if secret and len(secret) >= MIN_REDACTED_KEY_LENGTH:
        return text.replace(secret, "[redacted]")
    return text


def _request_id(response: httpx.Response) -> str | None:
    # Azure puts its id in apim-request-id; OpenAI and the sandbox in x-request-id.
    value: str | None = response.headers.get("x-request-id") or response.headers.get(
        "apim-request-id"
    )
    return value


def error_from_response(response: httpx.Response, *, api_key: str) -> ProviderError:
    status = response.status_code
    message: str | None = None
    code: Any = None
    param: Any = None
    error_type: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        message = envelope.get("message") if isinstance(envelope.get("message"), str) else None
        code, param, error_type = envelope.get("code"), envelope.get("param"), envelope.get("type")
    elif isinstance(envelope, str):
        message = envelope
    elif isinstance(body, dict) and isinstance(body.get("message"), str):
        message = body["message"]
    if not message:
        message = f"{response.reason_phrase or 'Error'} from the provider"
        content_type = response.headers.get("content-type", "")
        text = response.text.strip() if "html" not in content_type else ""
        if text and body is None:
            message += f": {text[:MAX_SNIPPET]}"
    return error_class_for_status(status)(
        redact(message, api_key),
        status=status,
        code=None if code is None else str(code),
        param=None if param is None else str(param),
        request_id=_request_id(response),
        error_type=None if error_type is None else str(error_type),
    )


def _outcome_unknown(error: ProviderError) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"{error.message}; the provider may have acted on the request",
        status=error.status,
        code=error.code,
        param=error.param,
        request_id=error.request_id,
        error_type=error.error_type,
    )


def _describe_transport_error(exc: Exception, host: str) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"Timed out connecting to {host}"
    if isinstance(exc, httpx.TimeoutException):
        return f"Timed out waiting for {host} ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"Could not connect to {host}: {exc}"
    return f"The connection to {host} failed ({type(exc).__name__}: {exc})"


def build_client(config: ConnectionConfig) -> httpx.Client:
    headers = {
        "User-Agent": f"Tuneboard/{tuneboard_version()}",
        "Accept": "application/json",
    }
    if config.is_azure:
        headers["api-key"] = config.api_key
    else:
        headers["Authorization"] = f"Bearer {config.api_key}"
    if config.organization:
        headers["OpenAI-Organization"] = config.organization
    if config.project:
        headers["OpenAI-Project"] = config.project
    params = {"api-version": config.effective_api_version} if config.is_azure else {}
    return httpx.Client(
        base_url=config.base_url.rstrip("/") + "/",
        headers=headers,
        params=params,
        # Writes get the read budget: a 64 MB part on a slow uplink needs more than the
        # connect timeout per chunk, and waiting for a pooled connection is bounded likewise.
        timeout=httpx.Timeout(
            connect=config.timeout_connect,
            read=config.timeout_read,
            write=config.timeout_read,
            pool=config.timeout_read,
        ),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30),
        follow_redirects=False,
    )


class HttpSession:
    """Sends requests with retries; counts every attempt that went out."""

    def __init__(
        self, config: ConnectionConfig, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.config = config
        self.client = build_client(config)
        self._sleep = sleep
        self._host = self.client.base_url.host
        self.rng = random.Random()  # noqa: S311 - jitter, not secrets
        self._count_lock = threading.Lock()
        self._count = 0

    @property
    def request_count(self) -> int:
        return self._count

    def close(self) -> None:
        self.client.close()

    @property
    def closed(self) -> bool:
        return self.client.is_closed

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        empty_json_body: bool = False,
        replayable: Callable[[], bool] | None = None,
        on_attempt: Callable[[], None] | None = None,
        stream: bool = False,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One logical call: retried on transient failures, raising a ProviderError at the end.

        ``idempotent=False`` marks a request that must not be sent twice (a job create: each
        one trains and bills): it is retried only after failures that prove it did not reach
        the provider (connect errors, 408/409/429); after any other failure (the connection
        dropped after sending, a read timeout, a 5xx) it raises ``OutcomeUnknownError`` at
        once, so the caller can look for the result before trying again.
        ``replayable`` tells whether a streamed body can be sent again (a one-way stream
        cannot); ``on_attempt`` runs just before each attempt (to time the last one).
        ``stream`` returns a successful response before reading its body (the caller reads
        and closes it); failed responses are read, closed and retried as usual.
        """
        kwargs: dict[str, Any] = {"params": params}
        if empty_json_body:
            # Like the official SDK: bodiless POSTs still say they carry JSON.
            kwargs["content"] = b""
            kwargs["headers"] = {"Content-Type": "application/json"}
        elif files is not None:
            kwargs["files"] = files
            kwargs["data"] = data
        elif json is not None:
            kwargs["json"] = json
        attempt = 0
        while True:
            with self._count_lock:
                self._count += 1
            if on_attempt is not None:
                on_attempt()
            cause: Exception | None = None
            delay: float | None = None
            try:
                if stream:
                    built = self.client.build_request(method, path, **kwargs)
                    response = self.client.send(built, stream=True)
                else:
                    response = self.client.request(method, path, **kwargs)
            except RETRYABLE_EXCEPTIONS as exc:
                cause = exc
                error: ProviderError = TransientProviderError(
                    redact(_describe_transport_error(exc, self._host), self.config.api_key)
                )
                if not idempotent and not isinstance(exc, NOT_SENT_EXCEPTIONS):
                    raise _outcome_unknown(error) from exc
                retry = True
            except httpx.HTTPError as exc:
                raise ProviderError(
                    redact(f"Request to {self._host} failed: {exc}", self.config.api_key)
                ) from exc
            else:
                if response.is_success:
                    return response
                if stream:
                    try:
                        response.read()  # the error envelope, for the message below
                    except httpx.HTTPError:
                        pass
                    finally:
                        response.close()
                error = error_from_response(response, api_key=self.config.api_key)
                if not idempotent and status_leaves_outcome_unknown(response.status_code):
                    raise _outcome_unknown(error)
                retry = status_is_retryable(response.status_code, response.headers)
                delay = retry_after_seconds(response.headers, cap=self.config.retry_after_cap)
            if not retry or attempt >= self.config.max_retries:
                raise error from cause
            if replayable is not None and not replayable():
                log.warning("not retrying %s %s: the upload stream cannot be rewound", method, path)
                raise error from cause
            if delay is None:
                delay = backoff_seconds(
                    attempt,
                    base=self.config.backoff_base,
                    maximum=self.config.backoff_max,
                    rng=self.rng,
                )
            attempt += 1
            log.info(
                "retrying %s %s in %.2fs (attempt %d of %d): %s",
                method, path, delay, attempt, self.config.max_retries, error,
            )  # fmt: skip
            self._sleep(delay)

    def pause(self, attempt: int) -> None:
        """Wait before looking for the result of a request whose outcome is unknown: at least
        one backoff base (jitter may draw ~0), so that what the provider made just now is
        listed when we look."""
        delay = backoff_seconds(
            attempt, base=self.config.backoff_base, maximum=self.config.backoff_max, rng=self.rng
        )
        self._sleep(max(self.config.backoff_base, delay))

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                f"The provider answered {method} {path} with something that is not JSON",
                status=response.status_code,
                request_id=_request_id(response),
            ) from exc


class SessionClient:
    """What every adapter's client is around its ``HttpSession``: one pooled, thread-safe
    connection per provider account, counted requests, closed once."""

    def __init__(
        self, config: ConnectionConfig, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.config = config
        self._session = HttpSession(config, sleep=sleep)
        self._sleep = sleep

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def request_count(self) -> int:
        """HTTP requests actually sent by this client, retries included."""
        return self._session.request_count

    @property
    def http_client(self) -> httpx.Client:
        """The pooled client (for connection reuse checks and request observation)."""
        return self._session.client

    @property
    def closed(self) -> bool:
        return self._session.closed

    def close(self) -> None:
        self._session.close()
