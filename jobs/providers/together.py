"""The adapter for Together AI's fine-tuning API (``https://api.together.xyz/v1``), on the
same HTTP session as the OpenAI one (retries, timeouts, error bodies, a create never sent
twice blind).

Together's lists are not paged (every job, event or checkpoint in one answer): the adapter
pages them itself with the same ``after`` cursors as OpenAI's, newest first, so the sync's
paging (bounded, terminating) works unchanged. Jobs carry no metadata: a launch's marker
rides in the suffix and comes back in ``suffix`` and ``model_output_name``
(``together_records``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, TypeVar

from jobs.providers import parameters, uploads
from jobs.providers import together_records as records
from jobs.providers.errors import (
    BadRequestError,
    NotFoundError,
    OutcomeUnknownError,
    ProviderError,
)
from jobs.providers.openai_compat import send_chat_completion
from jobs.providers.records import (
    MARKER_KEY,
    ChatResult,
    CheckpointInfo,
    EventInfo,
    FileInfo,
    JobInfo,
    JobSpec,
    ModelInfo,
    Page,
)

log = logging.getLogger("jobs.providers")

T = TypeVar("T")
# Tuneboard's hyperparameter names that Together takes under another name or shape.
_SPEC_KEYS = {
    "n_epochs": "n_epochs",
    "n_checkpoints": "n_checkpoints",
    "n_evals": "n_evals",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "warmup_ratio": "warmup_ratio",
    "weight_decay": "weight_decay",
    "max_grad_norm": "max_grad_norm",
    "max_seq_length": "max_seq_length",
    "from_checkpoint": "from_checkpoint",
    "wandb_project_name": "wandb_project_name",
    "wandb_name": "wandb_name",
    "wandb_entity": "wandb_entity",
    "wandb_base_url": "wandb_base_url",
}
_LORA_KEYS = ("lora_r", "lora_alpha", "lora_dropout", "lora_trainable_modules")
_DPO_KEYS = ("dpo_beta", "rpo_alpha", "simpo_gamma")


_segment = uploads.segment


def _bool(value: Any) -> bool | str | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "auto":
            return "auto"
    return None


def job_body(spec: JobSpec, *, suffix: str | None) -> dict[str, Any]:
    """Together's create body from a provider-neutral spec. ``"auto"`` and None values are
    left out (Together's defaults apply, as "auto" asks)."""
    hp = {k: v for k, v in spec.hyperparameters.items() if v is not None and v != "auto"}
    body: dict[str, Any] = {"model": spec.model, "training_file": spec.training_file}
    if spec.validation_file:
        body["validation_file"] = spec.validation_file
    for key, name in _SPEC_KEYS.items():
        if key in hp:
            body[name] = hp[key]
    if isinstance(body.get("batch_size"), str) and body["batch_size"] != "max":
        body.pop("batch_size")
    scheduler = hp.get("lr_scheduler")
    if scheduler in ("linear", "cosine"):
        args: dict[str, Any] = {"min_lr_ratio": float(hp.get("min_lr_ratio", 0.0))}
        if scheduler == "cosine":
            args["num_cycles"] = float(hp.get("num_cycles", 0.5))
        body["lr_scheduler"] = {"lr_scheduler_type": scheduler, "lr_scheduler_args": args}
    if str(hp.get("training_type", "lora")).lower() == "full":
        body["training_type"] = {"type": "Full"}
    else:
        lora: dict[str, Any] = {"type": "Lora"}
        lora.update({k: hp[k] for k in _LORA_KEYS if k in hp})
        # Both are required in a LoRA block; Together's documented defaults fill a gap.
        lora.setdefault("lora_r", 8)
        lora.setdefault("lora_alpha", 2 * int(lora["lora_r"]))
        body["training_type"] = lora
    if spec.method == "dpo":
        method: dict[str, Any] = {"method": "dpo"}
        method.update({k: hp[k] for k in _DPO_KEYS if k in hp})
        if "beta" in hp and "dpo_beta" not in method:
            method["dpo_beta"] = hp["beta"]
    else:
        train_on_inputs = _bool(hp.get("train_on_inputs", "auto"))
        method = {
            "method": "sft",
            "train_on_inputs": "auto" if train_on_inputs is None else train_on_inputs,
        }
    body["training_method"] = method
    if suffix:
        body["suffix"] = suffix
    if spec.seed is not None:
        body["random_seed"] = spec.seed
    return body


def _items(body: Any, key: str = "data") -> list[dict[str, Any]]:
    items = body.get(key) if isinstance(body, dict) else body
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def page_of(
    items: Sequence[T], *, after: str | None, limit: int, key: Callable[[T], str]
) -> Page[T]:
    """One page of a list the provider sends whole, after the item whose id is ``after``. An
    unknown cursor is an empty last page: paging always terminates."""
    start = 0
    if after is not None:
        ids = [key(item) for item in items]
        if after not in ids:
            return Page(data=[], has_more=False)
        start = ids.index(after) + 1
    limit = max(1, limit)
    chunk = list(items[start : start + limit])
    return Page(data=chunk, has_more=start + limit < len(items))


class TogetherProvider(uploads.FileClient):
    """One Together connection's client. Thread-safe like the OpenAI one."""

    traits = parameters.Traits(
        family="together",
        label="Together AI",
        parameters=parameters.TOGETHER,
        refreshes_catalog=True,
        quotes_price=True,
        # The launch marker (``tb`` + 24 hex digits and a hyphen) takes the rest.
        suffix_max=records.MAX_SUFFIX - records.MARKER_LENGTH - 1,
        exact_token_counts=False,
        continues_fine_tuned=False,
        wandb_integration=False,
        pauses=False,
    )

    @staticmethod
    def parameters_for(
        limits: dict[str, Any], *, method: str, training_type: str
    ) -> tuple[parameters.Parameter, ...]:
        return parameters.together_for_model(limits, method=method, training_type=training_type)

    def __repr__(self) -> str:
        return f"<TogetherProvider {self.config.base_url}>"

    # --- Files ---------------------------------------------------------------------------

    def upload_file(
        self,
        *,
        filename: str,
        stream: BinaryIO,
        size: int,
        purpose: str = "fine-tune",
        sha256: str | None = None,
    ) -> FileInfo:
        """``POST /files/upload``; with the content's ``sha256``, never twice (see
        ``jobs.providers.uploads``: the name carries the hash and a lost answer is looked up)."""
        filename, lookup = uploads.marked(
            filename, sha256=sha256, size=size, purpose=purpose, find=self.find_file
        )

        return uploads.upload_single(
            self._session,
            filename=filename,
            stream=stream,
            size=size,
            purpose=purpose,
            lookup=lookup,
            path="files/upload",
            fields={"file_name": filename, "file_type": "jsonl"},
            parse=records.file_info,
        )

    def _files(self) -> list[FileInfo]:
        files = [records.file_info(d) for d in _items(self._session.json("GET", "files"))]
        return sorted(files, key=lambda f: (f.created_at or 0, f.id), reverse=True)

    def list_files(
        self, *, purpose: str | None = None, after: str | None = None, limit: int = 100
    ) -> Page[FileInfo]:
        files = [f for f in self._files() if purpose is None or f.purpose == purpose]
        return page_of(files, after=after, limit=limit, key=lambda f: f.id)

    def find_file(
        self,
        *,
        filename: str,
        size: int,
        purpose: str = "fine-tune",
        max_pages: int = uploads.FIND_FILE_MAX_PAGES,
        page_size: int = uploads.FIND_FILE_PAGE_SIZE,
    ) -> FileInfo | None:
        for info in self._files()[: max_pages * page_size]:
            same = info.filename == filename and info.bytes == size and info.purpose == purpose
            if same and info.status not in uploads.FILE_UNUSABLE_STATUSES:
                return info
        return None

    def retrieve_file(self, file_id: str) -> FileInfo:
        return records.file_info(self._dict("GET", f"files/{_segment(file_id)}"))

    def download_results_csv(self, file_id: str) -> str:
        raise NotFoundError("Together keeps no results file; its metrics have their own endpoint")

    # --- Jobs ----------------------------------------------------------------------------

    def create_job(self, spec: JobSpec, *, marker: str | None = None) -> JobInfo:
        """Create the job; never twice. ``marker`` names the ``spec.metadata`` key whose value
        (the Tuneboard job id) is carried in the suffix; after a failure that may have come
        after Together made the job, the job is looked up by it before creating again."""
        value = (spec.metadata or {}).get(marker) if marker is not None else None
        if marker is not None and not value:
            raise ValueError(f"spec.metadata has no value for the marker {marker!r}")
        suffix = records.suffix_with_marker(spec.suffix, value) if value else spec.suffix
        body = job_body(spec, suffix=suffix)
        attempt = 0
        while True:
            try:
                return self._create_once(body)
            except OutcomeUnknownError as exc:
                if marker is None or value is None or attempt >= self.config.max_retries:
                    raise
                log.info("create of Together job %s may have happened (%s): looking", value, exc)
            self._session.pause(attempt)
            attempt += 1
            found = self.find_job(metadata_key=marker, value=value)
            if found is not None:
                return found
            log.info("Together job %s was not created: creating it again", value)

    def _create_once(self, body: dict[str, Any]) -> JobInfo:
        response = self._session.request("POST", "fine-tunes", json=body, idempotent=False)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        info = records.job_info(answer, now=int(time.time())) if isinstance(answer, dict) else None
        if info is None or not info.id:
            raise OutcomeUnknownError(
                "Together answered the job create with something that is not a job",
                status=response.status_code,
            )
        return info

    def find_job(
        self, *, metadata_key: str, value: str, max_pages: int = 10, page_size: int = 100
    ) -> JobInfo | None:
        """The newest job whose suffix or output name carries the marker of ``value``."""
        wanted = records.marker_value(value)
        for info in self._jobs()[: max_pages * page_size]:
            if (info.metadata or {}).get(MARKER_KEY) == wanted:
                return info
        return None

    def _jobs(self) -> list[JobInfo]:
        now = int(time.time())
        jobs = [
            records.job_info(d, now=now) for d in _items(self._session.json("GET", "fine-tunes"))
        ]
        return sorted(jobs, key=lambda j: (j.created_at or 0, j.id), reverse=True)

    def retrieve_job(self, job_id: str) -> JobInfo:
        return records.job_info(
            self._dict("GET", f"fine-tunes/{_segment(job_id)}"), now=int(time.time())
        )

    def list_jobs(
        self, *, after: str | None = None, limit: int = 100, metadata: dict[str, str] | None = None
    ) -> Page[JobInfo]:
        jobs = self._jobs()
        if metadata:
            # No metadata at Together: only Tuneboard's own key can be matched, by its marker.
            wanted = {records.marker_value(v) for v in metadata.values()}
            jobs = [j for j in jobs if (j.metadata or {}).get(MARKER_KEY) in wanted]
        return page_of(jobs, after=after, limit=limit, key=lambda j: j.id)

    def list_events(
        self, job_id: str, *, after: str | None = None, limit: int = 100
    ) -> Page[EventInfo]:
        items = _items(self._session.json("GET", f"fine-tunes/{_segment(job_id)}/events"))
        events = [records.event_info(job_id, d) for d in items]
        # Oldest first from Together; newest first here, like OpenAI's (the sync's cursor).
        order = sorted(
            range(len(events)), key=lambda i: (events[i].created_at or 0, i), reverse=True
        )
        unique: dict[str, EventInfo] = {}
        for i in order:
            unique.setdefault(events[i].id, events[i])
        return page_of(list(unique.values()), after=after, limit=limit, key=lambda e: e.id)

    def list_checkpoints(
        self, job_id: str, *, after: str | None = None, limit: int = 100
    ) -> Page[CheckpointInfo]:
        items = _items(self._session.json("GET", f"fine-tunes/{_segment(job_id)}/checkpoints"))
        checkpoints = {c.id: c for c in (records.checkpoint_info(job_id, d, None) for d in items)}
        ordered = sorted(checkpoints.values(), key=lambda c: c.step_number or 0, reverse=True)
        return page_of(ordered, after=after, limit=limit, key=lambda c: c.id)

    def list_metrics(self, job_id: str, *, after_step: int | None = None) -> list[dict[str, float]]:
        """Every metric dictionary after ``after_step``, oldest first, under Tuneboard's names."""
        # In the query, as the official SDK sends them (the spec shows a body on the GET).
        query = {"global_step_from": after_step + 1} if after_step is not None else None
        body = self._session.json("GET", f"fine-tunes/{_segment(job_id)}/metrics", params=query)
        rows = [records.metric_row(d) for d in _items(body, "metrics")]
        return [r for r in rows if "step" in r and (after_step is None or r["step"] > after_step)]

    def cancel_job(self, job_id: str) -> JobInfo:
        body = self._dict("POST", f"fine-tunes/{_segment(job_id)}/cancel", empty_json_body=True)
        return records.job_info(body, now=int(time.time()))

    def pause_job(self, job_id: str) -> JobInfo:
        raise BadRequestError("Together cannot pause a fine-tuning job", status=400)

    def resume_job(self, job_id: str) -> JobInfo:
        raise BadRequestError("Together cannot resume a fine-tuning job", status=400)

    def delete_job(self, job_id: str) -> bool:
        self._session.json("DELETE", f"fine-tunes/{_segment(job_id)}")
        return True

    # --- Models --------------------------------------------------------------------------

    def delete_model(self, model: str) -> bool:
        """Together deletes a fine-tuned model with its job."""
        for info in self._jobs():
            if info.fine_tuned_model == model or info.raw.get("model_output_name") == model:
                return self.delete_job(info.id)
        raise NotFoundError(f"No Together job made the model {model}")

    def list_models(self) -> list[ModelInfo]:
        body = self._session.json("GET", "fine-tunes/models/supported")
        names = body.get("models") if isinstance(body, dict) else None
        return [
            ModelInfo(id=str(n), created=None, owned_by="together")
            for n in names or []
            if isinstance(n, str)
        ]

    def model_limits(self, model: str) -> dict[str, Any]:
        return self._dict("GET", "fine-tunes/models/limits", params={"model_name": model})

    def estimate_price(self, spec: JobSpec) -> dict[str, Any]:
        body = job_body(spec, suffix=None)
        return self._dict("POST", "fine-tunes/estimate-price", json=body)

    def retrieve_model(self, model: str) -> ModelInfo:
        for info in self._jobs():
            if info.fine_tuned_model == model:
                return ModelInfo(id=model, created=info.finished_at, owned_by="together")
        if any(m.id == model for m in self.list_models()):
            return ModelInfo(id=model, created=None, owned_by="together")
        raise NotFoundError(f"Together serves no model {model}")

    def chat_completion(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ChatResult:
        # Together's chat API is OpenAI's shape, but takes ``max_tokens`` under that name.
        return send_chat_completion(
            self._session,
            model=model,
            messages=messages,
            temperature=temperature,
            seed=seed,
            extra={
                **({"max_tokens": max_tokens} if max_tokens is not None else {}),
                **(extra or {}),
            },
        )

    def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = self._session.json(method, path, **kwargs)
        if not isinstance(body, dict):
            raise ProviderError(
                f"Together answered {method} {path} with something that is not an object"
            )
        return body
