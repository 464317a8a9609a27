"""The rule sets ("provider families") a file is validated against, as data.

Every provider Tuneboard launches on speaks one of these: OpenAI's rules cover OpenAI, Azure
OpenAI and the sandbox's OpenAI surface; Together's cover Together AI. A rule set names the
per-example checker that runs in the single validation pass, the file formats it accepts and
the training methods each of them trains, its minimum file size, and what its token counts
are worth. Code asks this table; nothing branches on a provider's name.

The first rule set is the primary one: its findings are the report's own top-level findings,
exactly as before other rule sets existed (stored reports, the sandbox and the API-style error
texts keep reading them). Another rule set keeps only its own findings beside them; the file
and line problems every provider shares (``SHARED_CODES``: encoding, JSON, blank lines,
duplicates…) are found once and belong to every rule set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .checks import Outcome
from .findings import FindingCollector
from .together_rules import TogetherChecker
from .tokens import TokenTally

SUPERVISED = "supervised"
DPO = "dpo"
METHOD_LABELS = {SUPERVISED: "supervised", DPO: "DPO"}

FORMAT_LABELS = {
    "chat": "Chat",
    "chat_tools": "Chat with tools",
    "vision": "Vision",
    "dpo": "Preference (DPO)",
    "legacy_completion": "Legacy prompt/completion",
    "text": "Text",
    "mixed": "Mixed",
    "unknown": "Unknown",
}

# Findings of the file and of lines that never reach a rule set's checker: every rule set has
# them. Everything else a rule set's checker or file checks find is its own.
SHARED_CODES = frozenset(
    {
        "bom",
        "invalid_utf8",
        "lone_surrogate",
        "line_too_long",
        "blank_line",
        "invalid_json",
        "not_an_object",
        "duplicate_example",
        "internal_error",
    }
)


class ExtraChecker(Protocol):
    """The checker of a rule set other than the primary one."""

    def check(
        self, obj: dict[str, object], line: int, text: str, raw: bytes, *, counted: bool
    ) -> Outcome: ...


@dataclass(frozen=True)
class RuleSet:
    name: str  # stable: stored in reports and in Dataset.validity
    label: str
    # file format → the training methods a file of that format can train
    formats: Mapping[str, tuple[str, ...]]
    # The checker for a rule set other than the primary; the primary's is ExampleChecker.
    checker: Callable[[FindingCollector, TokenTally], ExtraChecker] | None = None
    # When a file has fewer examples (0 = no minimum here; the primary's minimum and advice
    # live in ``engine``, unchanged).
    min_examples: int = 0
    too_few_code: str = ""
    mixed_code: str = ""
    format_labels: Mapping[str, str] = field(default_factory=dict)
    # Said beside a method a format trains only on some models.
    format_notes: Mapping[str, str] = field(default_factory=dict)
    # How exact the report's token counts are for this rule set; {encoding} is the encoding
    # the pass counted with. Empty: counted with the chosen model's own tokenizer.
    tokenizer_note: str = ""

    def format_label(self, fmt: str) -> str:
        return self.format_labels.get(fmt) or FORMAT_LABELS.get(fmt, fmt)


OPENAI = RuleSet(
    name="openai",
    label="OpenAI",
    formats={
        "chat": (SUPERVISED,),
        "chat_tools": (SUPERVISED,),
        "vision": (SUPERVISED,),
        "dpo": (DPO,),
        "legacy_completion": (SUPERVISED,),
    },
    format_notes={"legacy_completion": "babbage-002 and davinci-002 only"},
)

TOGETHER = RuleSet(
    name="together",
    label="Together AI",
    formats={
        "chat": (SUPERVISED,),
        "chat_tools": (SUPERVISED,),
        "vision": (SUPERVISED,),
        "legacy_completion": (SUPERVISED,),
        "text": (SUPERVISED,),
        "dpo": (DPO,),
    },
    checker=TogetherChecker,
    # Together's SDK: MIN_SAMPLES = 1.
    min_examples=1,
    too_few_code="together_no_examples",
    mixed_code="together_mixed_formats",
    format_labels={
        "chat": "Conversational",
        "chat_tools": "Conversational with tools",
        "vision": "Conversational with images",
        "legacy_completion": "Instruction (prompt/completion)",
        "text": "Generic text",
    },
    tokenizer_note=(
        "Token counts for Together AI are an estimate made with {encoding}: Together trains "
        "open models, whose own tokenizers ship in no package Tuneboard depends on (tiktoken "
        "holds OpenAI's only)."
    ),
)

RULE_SETS: tuple[RuleSet, ...] = (OPENAI, TOGETHER)
PRIMARY = RULE_SETS[0]
EXTRA_RULE_SETS = RULE_SETS[1:]
_BY_NAME = {r.name: r for r in RULE_SETS}


def rule_set(name: str) -> RuleSet | None:
    return _BY_NAME.get(name)
