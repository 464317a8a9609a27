"""What the sandbox learns from a training file: the same validation rules as Tuneboard's
dataset validator, the facts the simulation needs, and the trained replies."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from datasets.validation import get_default_model, validate_stream
from sandbox import replies
from sandbox.catalog import base_of
from sandbox.models import SandboxFile

INVALID_FILE_PREFIX = "The job failed due to an invalid training file. "
_DPO_FORMATS = {"dpo"}


@dataclass(frozen=True)
class DataFacts:
    n_examples: int
    tokens_per_epoch: int
    format: str
    error: str | None  # the API-style sentence for the first blocking error


def analyze(file: SandboxFile, *, model: str, method: str, rules: str = "openai") -> DataFacts:
    """The file as the provider the surface ``rules`` stands for sees it (its rule set in
    ``datasets.validation``: OpenAI's, or Together's formats and checks)."""
    spec = get_default_model(base_of(model))
    with file.content.open("rb") as handle:
        full = validate_stream(handle, model=spec, total_bytes=file.bytes)
    report = full.for_family(rules) or full
    context = spec.training_context if spec else None
    tokens = report.tokens.total.capped_total(context)
    error = None
    first = report.first_error()
    if first is not None:
        error = first.located_message()
    elif method == "dpo" and report.format not in _DPO_FORMATS:
        error = "A DPO job needs preference data (input, preferred_output, non_preferred_output) on every line."
    elif method != "dpo" and report.format in _DPO_FORMATS:
        error = "Preference (DPO) data was given to a supervised job; use method type 'dpo'."
    return DataFacts(report.n_examples, tokens, report.format, error)


_PAIRS_CACHE: OrderedDict[str, dict[str, str]] = OrderedDict()
_PAIRS_CACHE_SIZE = 32


def trained_pairs(file: SandboxFile) -> dict[str, str]:
    """prompt key → trained reply for a training file (cached: files never change)."""
    cached = _PAIRS_CACHE.get(file.id)
    if cached is not None:
        _PAIRS_CACHE.move_to_end(file.id)
        return cached
    examples: list[Any] = []
    with file.content.open("rb") as handle:
        for raw in handle:
            try:
                examples.append(json.loads(raw))
            except ValueError:
                continue
    pairs = replies.training_pairs(e for e in examples if isinstance(e, dict))
    _PAIRS_CACHE[file.id] = pairs
    if len(_PAIRS_CACHE) > _PAIRS_CACHE_SIZE:
        _PAIRS_CACHE.popitem(last=False)
    return pairs
