"""Wire conventions of the OpenAI API: key auth, the error envelope, x-request-id, JSON bodies,
cursor pagination, and fault injection for resilience tests."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import random
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from sandbox import ids, ratelimit
from sandbox.models import SandboxAccount, SandboxFault

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body = {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }
        response = JsonResponse(body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def not_found(kind: str, object_id: str, param: str = "id") -> ApiError:
    return ApiError(404, f"No such {kind} object: {object_id}", param=param)


def error_response(status: int, message: str, **kwargs: Any) -> JsonResponse:
    response = ApiError(status, message, **kwargs).response()
    response["x-request-id"] = ids.request_id()
    return response


@dataclass(frozen=True)
class Caller:
    owner: str
    organization_id: str
    account: SandboxAccount

    @property
    def realism(self) -> bool:
        return self.account.profile == SandboxAccount.Profile.REALISM


def owner_for_key(key: str) -> str:
    return "org-" + hashlib.sha256(key.encode()).hexdigest()[:20]


def _authenticate(request: HttpRequest) -> Caller:
    # Azure OpenAI sends the key in `api-key`; OpenAI as a Bearer token.
    key = request.headers.get("api-key", "").strip()
    header = request.headers.get("Authorization", "")
    if not key and header.lower().startswith("bearer "):
        key = header[7:].strip()
    if not key:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    if key not in settings.SANDBOX_API_KEYS:
        shown = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * len(key)
        raise ApiError(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key in Tuneboard's "
            "settings (SANDBOX_API_KEYS).",
            code="invalid_api_key",
        )
    owner = owner_for_key(key)
    account, _ = SandboxAccount.objects.get_or_create(owner=owner)
    return Caller(owner=owner, organization_id=owner, account=account)


def parse_json(request: HttpRequest, *, allow_empty: bool = False) -> dict[str, Any]:
    if not request.body:
        if allow_empty:
            return {}
        raise ApiError(
            400, "We could not parse the JSON body of your request. (HINT: it is empty.)"
        )
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)",
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    if _contains_nul(body):
        raise ApiError(400, "The request body contains a NUL character, which is not allowed.")
    return body


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


def reject_unknown(body: dict[str, Any], allowed: Sequence[str], prefix: str = "") -> None:
    for key in body:
        if key not in allowed:
            raise ApiError(
                400,
                f"invalid {prefix}{key}: Extra inputs are not permitted",
                param=f"{prefix}{key}",
                code="unknown_parameter",
            )


_DIGITS = re.compile(r"[0-9]+")


def _single(request: HttpRequest, name: str) -> str | None:
    values = request.GET.getlist(name)
    return values[-1] if values else None


def int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = _single(request, name)
    if raw is None:
        return default
    # ASCII digits only: int() would also take " 5", "+5", "5_0" and other scripts' digits.
    if not _DIGITS.fullmatch(raw):
        got = "an empty string" if raw == "" else f"'{raw[:40]}'"
        raise ApiError(
            400, f"Invalid '{name}': expected an integer, but got {got} instead.", param=name
        )
    value = int(raw) if len(raw) <= 12 else None
    if value is None or not low <= value <= high:
        raise ApiError(
            400, f"Invalid '{name}': must be between {low} and {high}, got {raw[:40]}.", param=name
        )
    return value


def choice_param(request: HttpRequest, name: str, default: str, choices: Sequence[str]) -> str:
    raw = _single(request, name)
    if raw is None:
        return default
    if raw not in choices:
        allowed = " or ".join(f"'{c}'" for c in choices)
        raise ApiError(400, f"Invalid '{name}': expected {allowed}, got '{raw[:40]}'.", param=name)
    return raw


def after_param(request: HttpRequest) -> str | None:
    """The pagination cursor: absent, or a non-empty object id."""
    raw = _single(request, "after")
    if raw == "":
        raise ApiError(
            400, "Invalid 'after': expected an object id, but got an empty string.", param="after"
        )
    return raw


def unknown_cursor(after: str) -> ApiError:
    # Answering the first page again would make a client that pages with it loop forever.
    return ApiError(
        400, f"Invalid 'after': no object with id '{after[:64]}' in this list.", param="after"
    )


def after_anchor(queryset: QuerySet[Any], anchor: Any, ordering: Sequence[str]) -> QuerySet[Any]:
    """Keyset pagination: the rows of ``queryset`` that come after ``anchor`` in ``ordering``
    (field names, ``-`` for descending; the last one must be unique)."""
    condition = Q()
    equal: dict[str, Any] = {}
    for spec in ordering:
        field = spec.lstrip("-")
        lookup = "lt" if spec.startswith("-") else "gt"
        value = getattr(anchor, field)
        condition |= Q(**equal, **{f"{field}__{lookup}": value})
        equal[field] = value
    return queryset.filter(condition).order_by(*ordering)


def keyset_page(queryset: QuerySet[Any], limit: int) -> tuple[list[Any], bool]:
    page = list(queryset[: limit + 1])
    return page[:limit], len(page) > limit


def list_body(data: list[dict[str, Any]], has_more: bool, **extra: Any) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, **extra}


# --- Fault injection ------------------------------------------------------------------------


def _claim_fault(owner: str, path: str) -> SandboxFault | None:
    # No row locks: concurrent requests must each see every fault (a skip-locked scan let a
    # request for another path hide a fault from a concurrent one). The conditional UPDATE
    # alone keeps a counted fault from firing more often than asked.
    faults = (
        SandboxFault.objects.filter(owner=owner)
        .filter(Q(remaining__isnull=True) | Q(remaining__gt=0))
        .order_by("pk")
    )
    for fault in faults:
        if fault.path_regex and not re.search(fault.path_regex, path):
            continue
        if fault.rate < 1 and random.random() >= fault.rate:  # noqa: S311 - not crypto
            continue
        claim = SandboxFault.objects.filter(pk=fault.pk)
        updates: dict[str, Any] = {"injected": F("injected") + 1}
        if fault.remaining is not None:
            claim = claim.filter(remaining__gt=0)
            updates["remaining"] = F("remaining") - 1
        if claim.update(**updates):
            return fault
    return None


def _find_socket(environ: dict[str, Any]) -> socket.socket | None:
    if isinstance(environ.get("gunicorn.socket"), socket.socket):
        return environ["gunicorn.socket"]
    # wsgiref / Django's test servers: wsgi.input wraps the socket's file object.
    stack = [environ.get("wsgi.input")]
    seen = 0
    while stack and seen < 12:
        obj = stack.pop()
        seen += 1
        if isinstance(obj, socket.socket):
            return obj
        for attr in ("stream", "_stream", "raw", "_sock", "rfile"):
            inner = getattr(obj, attr, None)
            if inner is not None:
                stack.append(inner)
        # Django's LimitedStream keeps only the bound `read` of the stream it wraps.
        owner = getattr(getattr(obj, "_read", None), "__self__", None)
        if owner is not None:
            stack.append(owner)
    return None


def _inject(fault: SandboxFault, request: HttpRequest) -> HttpResponse | None:
    kind = random.choice(fault.kinds)  # noqa: S311
    if kind == SandboxFault.Kind.HANG:
        time.sleep(fault.hang_seconds)
        return error_response(
            504, "The sandbox held this request on purpose (fault injection).", type="server_error"
        )
    if kind == SandboxFault.Kind.DROP:
        sock = _find_socket(request.META)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return HttpResponse(status=500)
        return error_response(502, "Connection dropped (fault injection).", type="server_error")
    if kind == SandboxFault.Kind.RATE_LIMIT:
        retry_after = fault.retry_after
        return error_response(
            429,
            "Rate limit reached for requests (fault injection).",
            type="requests",
            code="rate_limit_exceeded",
            headers={
                "retry-after": f"{retry_after:g}",
                "retry-after-ms": str(int(retry_after * 1000)),
            },
        )
    status = int(kind)
    return error_response(
        status,
        "The server had an error while processing your request (fault injection).",
        type="server_error",
    )


# --- Rate limit -----------------------------------------------------------------------------


def rate_limit_of(account: SandboxAccount) -> int:
    """Requests per window for this key; 0 means none."""
    return settings.SANDBOX_RATE_LIMIT if account.rate_limit is None else account.rate_limit


def _rate_headers(verdict: ratelimit.Verdict) -> dict[str, str]:
    # OpenAI's names; its reset values are durations such as "1s" or "6m0s".
    return {
        "x-ratelimit-limit-requests": str(verdict.limit),
        "x-ratelimit-remaining-requests": str(verdict.remaining),
        "x-ratelimit-reset-requests": f"{verdict.reset_seconds:.3f}s",
    }


def _rate_limit(caller: Caller) -> dict[str, str]:
    """Counts this request; raises the 429 when the key is over its limit, otherwise returns
    the headers that tell the client where it stands."""
    limit = rate_limit_of(caller.account)
    if limit <= 0:
        return {}
    window = settings.SANDBOX_RATE_LIMIT_WINDOW
    verdict = ratelimit.check(caller.owner, limit=limit, window=window)
    if verdict is None:
        return {}
    headers = _rate_headers(verdict)
    if not verdict.admitted:
        retry_after = verdict.retry_after
        raise ApiError(
            429,
            f"Rate limit reached for requests in organization {caller.organization_id} on "
            f"requests per {window} s: Limit {limit}, Used {limit}, Requested 1. Please try "
            f"again in {retry_after}s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={
                **headers,
                "retry-after": str(retry_after),
                "retry-after-ms": str(math.ceil(verdict.reset_seconds * 1000)),
            },
        )
    return headers


# --- The view decorator ---------------------------------------------------------------------


def _reject_nul(request: HttpRequest, kwargs: dict[str, Any]) -> None:
    # PostgreSQL text cannot hold NUL; such ids and cursors can match nothing anyway.
    pairs = [*request.GET.items(), *kwargs.items()]
    if request.content_type == "multipart/form-data":
        pairs += [*request.POST.items(), *((k, f.name) for k, f in request.FILES.items())]
    for name, value in pairs:
        if _contains_nul(value):
            raise ApiError(400, f"Invalid '{name}': contains a NUL character.", param=name)


Recorder = Callable[[HttpRequest, Caller], Callable[[HttpResponseBase], None]]


def _start_recording(record: Recorder, request: HttpRequest, caller: Caller) -> Any:
    try:
        return record(request, caller)
    except Exception:
        log.exception("sandbox: could not start recording %s %s", request.method, request.path)
        return None


def _finish_recording(finish: Any, request: HttpRequest, response: HttpResponseBase) -> None:
    try:
        finish(response)
    except Exception:
        log.exception("sandbox: could not record %s %s", request.method, request.path)


def endpoint(
    *methods: str, faults: bool = True, record: Recorder | None = None
) -> Callable[[Callable[..., Any]], Callable[..., HttpResponse]]:
    """Wraps a sandbox view: method check, key auth, rate limit, faults, error envelope,
    x-request-id.

    ``faults=False`` is for the control endpoints, which must stay reachable to clear faults
    (and to raise a key's rate limit), so neither faults nor the rate limit apply to them.
    ``record(request, caller)`` is called once the caller is authenticated, before faults and
    the view; the callable it returns gets the final response, whether the view, an injected
    fault or an error produced it. Recording errors are logged and never change the response.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            finish = None
            rate_headers: dict[str, str] = {}
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        f"Invalid method for URL ({request.method} {request.path}).",
                        code="method_not_allowed",
                        headers={"Allow": ", ".join(methods)},
                    )
                caller = _authenticate(request)
                if record is not None:
                    finish = _start_recording(record, request, caller)
                if faults:
                    rate_headers = _rate_limit(caller)
                _reject_nul(request, kwargs)
                fault = _claim_fault(caller.owner, request.path) if faults else None
                response = _inject(fault, request) if fault else None
                if response is None:
                    result = view(request, caller, *args, **kwargs)
                    response = (
                        result
                        if isinstance(result, HttpResponseBase)
                        else JsonResponse(result, safe=False)
                    )
            except ApiError as exc:
                response = exc.response()
            except MultiPartParserError as exc:
                response = ApiError(400, f"Malformed multipart body: {exc}").response()
            except Exception:
                log.exception("sandbox: unexpected error on %s %s", request.method, request.path)
                response = ApiError(
                    500,
                    "The server had an error while processing your request.",
                    type="server_error",
                ).response()
            for name, value in rate_headers.items():
                response[name] = value
            response["x-request-id"] = ids.request_id()
            if finish is not None:
                _finish_recording(finish, request, response)
            return response

        return login_not_required(csrf_exempt(wrapper))

    return decorate


@login_not_required
@csrf_exempt
def unknown_route(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(404, f"Invalid URL ({request.method} {request.path})", code="unknown_url")


def model_not_found(name: str) -> ApiError:
    return ApiError(
        404,
        f"The model `{name}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )
