"""A tiny OpenAI-shaped fine-tuning API that serves whatever a test puts in it.

The sandbox is a faithful stand-in for OpenAI and never sends the odd answers real providers
and proxies do: unknown statuses, lists whose cursor never advances, the same id twice in a
page, NaN in JSON, NUL characters, missing required fields. This server does, so tests can
feed them to Tuneboard's client. Objects follow ``FineTuningJob``, ``FineTuningJobEvent``,
``FineTuningJobCheckpoint`` and the list responses of OpenAI's OpenAPI description
(``/work/shared/openai-openapi/openapi.yaml``); a test changes any field, drops it, or
answers a path with a handler of its own.

Lists are newest first, as OpenAI's are; ``after=<id>`` returns what follows that id.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

# (status, body): a body that is not bytes is sent as JSON, NaN and Infinity included.
Answer = tuple[int, Any]
Handler = Callable[[dict[str, str]], Answer]

CREATED = 1_700_000_000


def error_body(message: str, *, code: str | None = None, param: str | None = None) -> dict:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def job_object(job_id: str, status: str = "running", **fields: Any) -> dict[str, Any]:
    """A ``fine_tuning.job`` with every required field; ``fields`` override them."""
    job: dict[str, Any] = {
        "object": "fine_tuning.job",
        "id": job_id,
        "model": "gpt-4o-mini-2024-07-18",
        "created_at": CREATED,
        "finished_at": None,
        "fine_tuned_model": None,
        "organization_id": "org-odd",
        "result_files": [],
        "status": status,
        "validation_file": None,
        "training_file": f"file-train-{job_id}",
        "hyperparameters": {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8},
        "trained_tokens": None,
        "error": None,
        "seed": 42,
        "estimated_finish": None,
        "integrations": [],
        "method": {"type": "supervised"},
        "metadata": None,
    }
    job.update(fields)
    return job


def event_object(event_id: str, message: str, created_at: Any = CREATED, **fields: Any) -> dict:
    event: dict[str, Any] = {
        "object": "fine_tuning.job.event",
        "id": event_id,
        "created_at": created_at,
        "level": "info",
        "message": message,
        "type": "message",
        "data": {},
    }
    event.update(fields)
    return event


def metrics_event(event_id: str, step: int, total_steps: int, **data: Any) -> dict:
    return event_object(
        event_id,
        f"Step {step}/{total_steps}: training loss={data.get('train_loss')}",
        created_at=CREATED + step,
        type="metrics",
        data={"step": step, "total_steps": total_steps, **data},
    )


def checkpoint_object(checkpoint_id: str, job_id: str, step: int, **fields: Any) -> dict:
    checkpoint: dict[str, Any] = {
        "object": "fine_tuning.job.checkpoint",
        "id": checkpoint_id,
        "created_at": CREATED + step,
        "fine_tuned_model_checkpoint": f"ft:gpt-4o-mini-2024-07-18:org-odd::odd:ckpt-step-{step}",
        "fine_tuning_job_id": job_id,
        "metrics": {"step": step, "train_loss": 0.5, "train_mean_token_accuracy": 0.8},
        "step_number": step,
    }
    checkpoint.update(fields)
    return checkpoint


def list_body(data: list[Any], has_more: bool) -> dict[str, Any]:
    ids = [item.get("id") for item in data if isinstance(item, dict)]
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }


class OddProvider:
    """The server; ``base_url`` ends in ``/v1`` like OpenAI's. Thread-safe enough for tests:
    a test fills it before syncing and reads ``requests`` after."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}  # in creation order: listed newest first
        self.events: dict[str, list[Any]] = {}  # per job, newest first
        self.checkpoints: dict[str, list[Any]] = {}  # per job, newest first
        self.files: dict[str, bytes] = {}
        # Path (after /v1/, without the query) -> handler, consulted before everything else.
        self.routes: dict[str, Handler] = {}
        self.requests: list[str] = []  # "GET fine_tuning/jobs/x/events?after=y"
        owner = self

        class RequestHandler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path = parts.path.removeprefix("/v1/").strip("/")
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                owner.requests.append(f"GET {path}?{parts.query}" if parts.query else f"GET {path}")
                status, body = owner.answer(path, query)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    # --- content ------------------------------------------------------------------------------

    def add_job(self, job_id: str, status: str = "running", **fields: Any) -> dict[str, Any]:
        job = job_object(job_id, status, **fields)
        self.jobs[job_id] = job
        self.events.setdefault(job_id, [])
        self.checkpoints.setdefault(job_id, [])
        return job

    def count(self, fragment: str) -> int:
        """Requests whose path and query contain ``fragment``."""
        return sum(fragment in line for line in self.requests)

    # --- answers ------------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path in self.routes:
            return self.routes[path](query)
        segments = path.split("/")
        if segments[:2] == ["fine_tuning", "jobs"]:
            if len(segments) == 2:
                return 200, self._page(list(reversed(self.jobs.values())), query)
            job = self.jobs.get(segments[2])
            if job is None:
                return 404, error_body(f"No fine-tuning job {segments[2]}", code="not_found")
            if len(segments) == 3:
                return 200, job
            if segments[3] == "events":
                return 200, self._page(self.events.get(segments[2], []), query)
            if segments[3] == "checkpoints":
                return 200, self._page(self.checkpoints.get(segments[2], []), query)
        if segments[0] == "files" and len(segments) >= 2 and segments[1] in self.files:
            content = self.files[segments[1]]
            if len(segments) == 3 and segments[2] == "content":
                return 200, content
            return 200, {
                "object": "file",
                "id": segments[1],
                "bytes": len(content),
                "created_at": CREATED,
                "filename": f"{segments[1]}.jsonl",
                "purpose": "fine-tune",
                "status": "processed",
            }
        return 404, error_body(f"Nothing at {path}", code="not_found")

    @staticmethod
    def _page(items: list[Any], query: dict[str, str]) -> dict[str, Any]:
        limit = int(query.get("limit") or 20)
        start = 0
        after = query.get("after")
        if after:
            ids = [item.get("id") if isinstance(item, dict) else None for item in items]
            start = ids.index(after) + 1 if after in ids else len(items)
        page = items[start : start + limit]
        return list_body(page, start + limit < len(items))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
