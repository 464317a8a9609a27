"""The playground: one conversation sent to up to four models side by side, and the prompt saved
into a small test dataset with one click.

Selectors and services only; the pages are in ``evals.views_playground``. Provider calls go
through ``evals.runner.run_calls`` on the request's thread (no transaction is open while they
are in flight); datasets are stored through ``datasets.services`` like any upload.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.utils.text import slugify

from core.crypto import DecryptionError
from datasets.incoming import UploadRejected
from datasets.lineindex import seek_line
from datasets.models import Dataset
from datasets.services import StoreOutcome, dataset_create_from_upload
from datasets.uploads import max_upload_bytes
from datasets.validation.jsontext import find_lone_surrogate, has_surrogates, storable_text
from datasets.validation.lines import OversizedLine, iter_chunks, iter_lines
from evals.choices import ModelChoice
from evals.examples import content_text
from evals.runner import Answer, Call, run_calls

MAX_MODELS = 4
MAX_MESSAGES = 100
MAX_CONVERSATION_BYTES = 200 * 1024
ROLES = ("system", "user", "assistant", "developer", "tool")
# What chat completions accept in a message; training-only keys (``weight``) are dropped.
MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")
# A page is waiting: every model is asked at once, each call with the short interactive
# timeouts (PROVIDER_INTERACTIVE_TIMEOUT in all, no retry), so every model has answered or
# failed within that budget however slow the provider.
DERIVATION_KIND = "playground"
DEFAULT_DATASET_NAME = "Playground prompts"
PLAYGROUND_TAG = "playground"
PICKER_DATASETS = 200
APPEND_TARGETS = 100
CHAT_FORMATS = (Dataset.Format.CHAT, Dataset.Format.CHAT_TOOLS)


class PlaygroundError(Exception):
    """Input the playground cannot use; the message is shown to the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the conversation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    messages: list[dict[str, Any]]  # the prompt sent to every model
    reference: str | None = None  # a final assistant reply pasted with it, dropped from the prompt


def _message(index: int, item: Any) -> dict[str, Any]:
    where = f"Message {index + 1}"
    if not isinstance(item, dict):
        raise PlaygroundError(f"{where} is not a JSON object with a role and a content.")
    bad = find_lone_surrogate(item)
    if bad is not None:
        # "\ud800" parses, but it is no character: no request can carry it, no page show it.
        path, escape = bad
        raise PlaygroundError(
            f"{where} holds a lone surrogate ({escape}) in {path}: it stands for no character "
            "and cannot be sent. Fix the text (it was split in the middle of a character)."
        )
    role = item.get("role")
    if role not in ROLES:
        shown = json.dumps(role, ensure_ascii=False)[:40] if role is not None else "missing"
        raise PlaygroundError(f"{where} has the role {shown}; the roles are {', '.join(ROLES)}.")
    content = item.get("content")
    if content is None:
        if not (role == "assistant" and item.get("tool_calls")):
            raise PlaygroundError(f"{where} ({role}) has no content.")
    elif content_text(content) is None and not isinstance(content, list):
        raise PlaygroundError(f"{where} ({role}): the content must be text or a list of parts.")
    return {key: item[key] for key in MESSAGE_KEYS if key in item}


def _from_json(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.msg == "Extra data":
            hint = " Paste one conversation (one JSONL line), not several."
        raise PlaygroundError(
            f"This looks like JSON (it starts with “{text[0]}”) but is not valid: {exc.msg} at "
            f"line {exc.lineno}, column {exc.colno}.{hint} To send it as plain text, put a word "
            "before it."
        ) from None
    except RecursionError:
        raise PlaygroundError("The JSON is nested too deeply.") from None
    if isinstance(value, dict) and "messages" in value:
        value = value["messages"]
        if not isinstance(value, list):
            raise PlaygroundError("“messages” must be a list of messages.")
    elif isinstance(value, dict) and "role" in value:
        value = [value]
    if not isinstance(value, list):
        raise PlaygroundError(
            'Paste plain text, a JSON list of messages, or a training line {"messages": [...]}.'
        )
    return value


def parse_conversation(text: str, *, system: str = "") -> Conversation:
    """The prompt in ``text``: plain text is one user message; JSON is a list of messages, one
    message, or a training line ``{"messages": [...]}``. A final assistant reply is dropped
    from the prompt and returned as the reference. ``system`` replaces the conversation's
    leading system (or developer) message, or is put before it."""
    # surrogatepass: a lone surrogate must reach the check that names it, not crash here.
    size = len(text.encode("utf-8", "surrogatepass")) + len(system.encode("utf-8", "surrogatepass"))
    if size > MAX_CONVERSATION_BYTES:
        raise PlaygroundError(
            f"The conversation is {size / 1024:,.0f} KB; the playground takes at most "
            f"{MAX_CONVERSATION_BYTES // 1024} KB."
        )
    stripped = text.strip()
    if not stripped:
        raise PlaygroundError("Type or paste a conversation.")
    if stripped[0] in "[{":
        raw = _from_json(stripped)
        if not raw:
            raise PlaygroundError("The conversation has no messages.")
        if len(raw) > MAX_MESSAGES:
            raise PlaygroundError(
                f"The conversation has {len(raw)} messages; the playground takes at most "
                f"{MAX_MESSAGES}."
            )
        messages = [_message(i, item) for i, item in enumerate(raw)]
    else:
        messages = [_message(0, {"role": "user", "content": stripped})]
    reference = None
    if messages and messages[-1]["role"] == "assistant":
        reference = content_text(messages[-1].get("content")) or ""
        messages = messages[:-1]
    system = system.strip()
    if system and has_surrogates(system):
        raise PlaygroundError("The system message holds a lone surrogate and cannot be sent.")
    if system:
        if messages and messages[0]["role"] in ("system", "developer"):
            messages = [{"role": messages[0]["role"], "content": system}, *messages[1:]]
        else:
            messages = [{"role": "system", "content": system}, *messages]
    if not any(m["role"] == "user" for m in messages):
        raise PlaygroundError("The conversation needs at least one user message.")
    return Conversation(messages, reference)


def conversation_text(messages: list[dict[str, Any]], reference: str | None = None) -> str:
    """What the conversation box shows for ``messages``: the text itself for one plain user
    message, else a training line, pretty-printed."""
    if reference is None and len(messages) == 1 and messages[0]["role"] == "user":
        content = messages[0].get("content")
        if isinstance(content, str) and content.strip() and content.strip()[0] not in "[{":
            return content
    if reference is not None:
        messages = [*messages, {"role": "assistant", "content": reference}]
    return json.dumps({"messages": messages}, ensure_ascii=False, indent=2)


# --- asking the models ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One column of the playground: a model's reply, or why there is none."""

    key: str
    label: str
    group: str
    content: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    latency_ms: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "group": self.group,
            "content": self.content,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        def text(name: str) -> str | None:
            value = data.get(name)
            # Replies come back from the page in a hidden field: anything may be in it.
            return storable_text(value) if isinstance(value, str) else None

        def number(name: str) -> int | None:
            value = data.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(
            key=text("key") or "",
            label=text("label") or "?",
            group=text("group") or "",
            content=text("content"),
            finish_reason=text("finish_reason"),
            prompt_tokens=number("prompt_tokens"),
            completion_tokens=number("completion_tokens"),
            total_tokens=number("total_tokens"),
            latency_ms=number("latency_ms"),
            error=text("error") or "",
        )


def _reply_text(answer: Answer) -> str | None:
    result = answer.result
    if result is None:
        return None
    if result.content is not None:
        return result.content
    # No text: a tool call, or a refusal. Show what came back rather than nothing.
    choices = result.raw.get("choices") if isinstance(result.raw, dict) else None
    message = choices[0].get("message") if isinstance(choices, list) and choices else None
    if isinstance(message, dict):
        if message.get("refusal"):
            return f"(refused) {message['refusal']}"
        if message.get("tool_calls"):
            return json.dumps(message["tool_calls"], ensure_ascii=False, indent=2)
    return None


def _reply(choice: ModelChoice, answer: Answer | None) -> Reply:
    common = {"key": choice.key, "label": choice.label, "group": choice.group}
    if answer is None:
        return Reply(**common, error="Not asked: the other models took too long.")
    if answer.error is not None:
        return Reply(**common, error=str(answer.error) or type(answer.error).__name__)
    result = answer.result
    assert result is not None
    content = _reply_text(answer)
    return Reply(
        **common,
        content=storable_text(content) if content is not None else None,
        finish_reason=result.finish_reason,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.total_tokens,
        latency_ms=round(result.latency_seconds * 1000),
    )


def playground_ask(
    *,
    choices: list[ModelChoice],
    messages: list[dict[str, Any]],
    temperature: float | None,
    max_tokens: int | None,
    seed: int | None,
) -> list[Reply]:
    """Ask every model at once; one reply per choice, in order. A provider error becomes that
    column's ``error`` and never stops the others."""
    if not choices:
        return []
    if len(choices) > MAX_MODELS:
        raise PlaygroundError(f"Choose at most {MAX_MODELS} models.")
    calls = [
        Call(
            key=index,
            connection_id=choice.connection_id,
            model=choice.model_name,
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
        )
        for index, choice in enumerate(choices)
    ]
    answers: dict[int, Answer] = {}
    try:
        run_calls(
            calls,
            on_answer=lambda answer: answers.__setitem__(answer.call.key, answer),
            should_stop=lambda: False,
            deadline=time.monotonic() + settings.PROVIDER_INTERACTIVE_TIMEOUT,
            concurrency=MAX_MODELS,
            interactive=True,
        )
    except DecryptionError:
        message = (
            "The connection's API key cannot be decrypted (was the secret key changed?); "
            "an admin needs to enter it again."
        )
        return [Reply(key=c.key, label=c.label, group=c.group, error=message) for c in choices]
    return [_reply(choice, answers.get(index)) for index, choice in enumerate(choices)]


# --- datasets: picking an example, saving the prompt ---------------------------------------------


def picker_datasets() -> QuerySet[Dataset]:
    """Valid chat datasets an example can be picked from, newest first."""
    return (
        Dataset.objects.filter(status=Dataset.Status.VALID, format__in=CHAT_FORMATS)
        .only("id", "name", "line_count", "uploaded_at")
        .order_by("-uploaded_at", "-id")[:PICKER_DATASETS]
    )


def picker_dataset_get(pk: int) -> Dataset | None:
    return Dataset.objects.filter(
        pk=pk, status=Dataset.Status.VALID, format__in=CHAT_FORMATS
    ).first()


def dataset_line_conversation(dataset: Dataset, line: int) -> Conversation:
    """The conversation on ``line`` (1-based) of a chat dataset: its prompt, and its last
    assistant reply as the reference."""
    if line < 1 or line > dataset.line_count:
        raise PlaygroundError(
            f"“{dataset.name}” has {dataset.line_count:,} lines; choose a line from 1 to "
            f"{dataset.line_count:,}."
        )
    try:
        with dataset.file.open("rb") as fh:
            if not seek_line(fh, line, dataset.line_index):
                raise PlaygroundError(f"“{dataset.name}” has no line {line:,}.")
            raw = next(iter_lines(iter_chunks(fh), MAX_CONVERSATION_BYTES), b"")
    except OSError as exc:
        raise PlaygroundError(
            f"The file of “{dataset.name}” cannot be read ({exc.strerror or exc})."
        ) from None
    if isinstance(raw, OversizedLine):
        raise PlaygroundError(
            f"Line {line:,} is {raw.size / 1024:,.0f} KB; the playground takes at most "
            f"{MAX_CONVERSATION_BYTES // 1024} KB."
        )
    raw = raw.removeprefix(b"\xef\xbb\xbf").strip()
    if not raw:
        raise PlaygroundError(f"Line {line:,} of “{dataset.name}” is blank.")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise PlaygroundError(f"Line {line:,} of “{dataset.name}” is not valid JSON.") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise PlaygroundError(f"Line {line:,} of “{dataset.name}” is not a chat example.")
    try:
        return parse_conversation(json.dumps({"messages": obj["messages"]}, ensure_ascii=False))
    except PlaygroundError as exc:
        raise PlaygroundError(f"Line {line:,} of “{dataset.name}”: {exc.message}") from None


def _is_playground() -> dict[str, Any]:
    return {"derivation__kind": DERIVATION_KIND}


def playground_datasets() -> QuerySet[Dataset]:
    """Every dataset the playground made (each append is a new version), newest first."""
    return Dataset.objects.filter(**_is_playground()).order_by("-uploaded_at", "-id")


def playground_dataset_heads() -> list[Dataset]:
    """The latest version of each playground dataset: what "append to" offers."""
    return list(
        playground_datasets()
        .exclude(children__derivation__kind=DERIVATION_KIND)
        .only("id", "name", "line_count", "uploaded_at")[:APPEND_TARGETS]
    )


def playground_line(messages: list[dict[str, Any]], reference: str) -> bytes:
    """One test example: the prompt and the reference as its final assistant message."""
    example = {"messages": [*messages, {"role": "assistant", "content": reference}]}
    return json.dumps(example, ensure_ascii=False).encode() + b"\n"


def _existing_content(dataset: Dataset, room: int) -> bytes:
    if dataset.size > room:
        raise PlaygroundError(
            f"“{dataset.name}” is too large to append to (the upload limit would be exceeded)."
        )
    try:
        with dataset.file.open("rb") as fh:
            content = fh.read()
    except OSError as exc:
        raise PlaygroundError(
            f"The file of “{dataset.name}” cannot be read ({exc.strerror or exc}); "
            "nothing was saved."
        ) from None
    if content and not content.endswith(b"\n"):
        content += b"\n"
    return content


def playground_save(
    *,
    messages: list[dict[str, Any]],
    reference: str,
    user: AbstractBaseUser | None,
    name: str = DEFAULT_DATASET_NAME,
    append_to: Dataset | None = None,
) -> StoreOutcome:
    """Save the prompt and its reference as a test example: a new dataset of that one line,
    or a new version of ``append_to`` with the line added at the end (``parent`` = the old
    version). Datasets are immutable and content-addressed: identical content returns the
    dataset that already holds it (``created=False``) and changes nothing."""
    line = playground_line(messages, reference)
    if append_to is not None:
        content = _existing_content(append_to, max_upload_bytes() - len(line)) + line
        name = append_to.name
        description = f"Playground prompts: “{append_to.name}” (#{append_to.pk}) and one more."
        tags = list(dict.fromkeys([*append_to.tags, PLAYGROUND_TAG]))
        model = append_to.report_model or append_to.requested_model
    else:
        content = line
        name = name.strip() or DEFAULT_DATASET_NAME
        description = "Prompts saved from the playground."
        tags = [PLAYGROUND_TAG]
        model = None
    file_name = f"{slugify(name)[:100] or 'playground'}.jsonl"
    upload = SimpleUploadedFile(file_name, content, content_type="application/jsonl")
    outcome: StoreOutcome | None = None
    try:
        with transaction.atomic():
            outcome = dataset_create_from_upload(
                upload=upload,
                name=name[:200],
                description=description,
                tags=tags,
                uploaded_by=user,
                model=model,
            )
            if outcome.created:
                Dataset.objects.filter(pk=outcome.dataset.pk).update(
                    parent=append_to, derivation={"kind": DERIVATION_KIND, "appended": 1}
                )
                outcome.dataset.refresh_from_db()
    except UploadRejected as exc:
        raise PlaygroundError(f"The dataset was not saved: {exc.message}") from None
    except BaseException:
        # The row was rolled back: the file stored for it goes too.
        if outcome is not None and outcome.created:
            default_storage.delete(outcome.dataset.file.name)
        raise
    return outcome
