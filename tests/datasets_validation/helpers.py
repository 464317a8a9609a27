"""Builders and shortcuts shared by the validation engine tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datasets.validation import ModelSpec, Report, get_default_model, validate_stream

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
COOKBOOK = SHARED / "datasets" / "openai-cookbook"

GPT4O = "gpt-4o-2024-08-06"
GPT4O_MINI = "gpt-4o-mini-2024-07-18"
GPT35 = "gpt-3.5-turbo-0125"
BABBAGE = "babbage-002"


def model(model_id: str) -> ModelSpec:
    spec = get_default_model(model_id)
    assert spec is not None, model_id
    return spec


def chat(*turns: tuple[str, str], system: str | None = None, **extra: Any) -> dict[str, Any]:
    """A chat example from (role, content) pairs."""
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": role, "content": content} for role, content in turns]
    return {"messages": messages, **extra}


def simple(i: int = 0) -> dict[str, Any]:
    return chat(("user", f"question {i}"), ("assistant", f"answer {i}"))


def jsonl(examples: Iterable[Any]) -> bytes:
    """One JSON value per line; bytes and str items are written as they are."""
    out = []
    for item in examples:
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, str):
            out.append(item.encode())
        else:
            out.append(json.dumps(item, ensure_ascii=False).encode())
    return b"".join(line + b"\n" for line in out)


def padded(examples: list[Any], total: int = 60) -> list[Any]:
    """``examples`` followed by distinct valid chat examples up to ``total`` lines, so the
    file-level example-count findings stay out of the way."""
    return examples + [simple(1000 + i) for i in range(total - len(examples))]


def validate(data: bytes, model_id: str | None = GPT4O_MINI, **kwargs: Any) -> Report:
    return validate_stream(data, model=model(model_id) if model_id else None, **kwargs)


def codes(report: Report) -> dict[str, int]:
    return {code: group.count for code, group in report.findings.items()}


def messages_of(report: Report, code: str) -> list[str]:
    return [f.message for f in report.findings[code].examples]
