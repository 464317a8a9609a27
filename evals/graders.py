"""Deterministic graders and LLM-judge text helpers for evaluations (pure: no Django, no I/O).

A grader turns one (output, reference) pair into a score in [0, 1]. Specs are validated once
by :func:`parse_specs` so that :func:`grade` can run over thousands of cells without raising:
every problem a user can cause (bad regex, bad schema, unknown option) surfaces at parse time
as a :class:`GraderError` with a message fit for a form.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


class GraderError(ValueError):
    """A grader or judge configuration a user must fix; the message is shown as it is."""


KINDS: dict[str, str] = {
    "exact_match": "Exact match",
    "contains": "Contains",
    "regex": "Regex",
    "json_valid": "JSON valid",
    "json_equals": "JSON equals reference",
    "json_schema": "JSON schema valid",
    "token_f1": "Token F1",
}

MAX_GRADERS = 12
MAX_PATTERN_LENGTH = 500
MAX_LABEL_LENGTH = 100
# Python's `re` has no timeout. Capping the searched text bounds polynomial blow-ups (and the
# cost of ordinary patterns); it cannot stop exponential backtracking such as `(a+)+$`, which
# would need a separate process to kill.
REGEX_SEARCH_LIMIT = 100_000
_ID_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_LABEL_SNIPPET = 30


@dataclass(frozen=True)
class _Option:
    type: type
    default: Any = None
    required: bool = False


_OPTIONS: dict[str, dict[str, _Option]] = {
    "exact_match": {
        "ignore_case": _Option(bool, False),
        "ignore_whitespace": _Option(bool, True),
        "ignore_punctuation": _Option(bool, False),
    },
    "contains": {
        "text": _Option(str, ""),
        "ignore_case": _Option(bool, False),
    },
    "regex": {
        "pattern": _Option(str, required=True),
        "ignore_case": _Option(bool, False),
    },
    "json_valid": {},
    "json_equals": {},
    "json_schema": {"schema": _Option(dict, required=True)},
    "token_f1": {},
}
_TYPE_NAMES = {bool: "true or false", str: "a string", dict: "a JSON object"}


@dataclass(frozen=True)
class GraderSpec:
    """One validated grader. Options are complete (defaults filled in) and JSON-serialisable.

    Equality compares every field; the options dict makes instances unhashable.
    """

    id: str
    kind: str
    label: str
    options: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "options": copy.deepcopy(self.options),
        }


# --- parsing -----------------------------------------------------------------------------


def parse_specs(raw: list[dict[str, Any]]) -> list[GraderSpec]:
    """Validate and normalise grader configurations; raise GraderError on the first problem."""
    if not isinstance(raw, list):
        raise GraderError("Graders must be a list.")
    if not raw:
        raise GraderError("Choose at least one grader.")
    if len(raw) > MAX_GRADERS:
        raise GraderError(f"At most {MAX_GRADERS} graders per evaluation (got {len(raw)}).")
    items = [_parse_item(item) for item in raw]
    ids = _assign_ids([(item.kind, item.id) for item in items])
    return [
        GraderSpec(
            id=grader_id,
            kind=item.kind,
            label=item.label or _label(item.kind, item.options),
            options=item.options,
        )
        for grader_id, item in zip(ids, items, strict=True)
    ]


@dataclass(frozen=True)
class _Item:
    kind: str
    id: str | None
    label: str | None
    options: dict[str, Any]


def _parse_item(item: Any) -> _Item:
    if not isinstance(item, dict):
        raise GraderError("Each grader must be an object with a 'kind'.")
    unknown = set(item) - {"kind", "options", "id", "label"}
    if unknown:
        raise GraderError(f"Unknown grader field {_quote_list(unknown)}.")
    kind = item.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise GraderError(f"Unknown grader kind {kind!r} (expected one of: {', '.join(KINDS)}).")
    given_id = item.get("id")
    if given_id is not None and not (isinstance(given_id, str) and _ID_RE.fullmatch(given_id)):
        raise GraderError(
            f"{_who(kind)}: id {given_id!r} must be 1-40 lowercase letters, digits or "
            "underscores, starting with a letter."
        )
    return _Item(
        kind,
        given_id,
        _parse_label(kind, item.get("label")),
        _parse_options(kind, item.get("options")),
    )


def _parse_label(kind: str, raw: Any) -> str | None:
    # A stored label is kept as it is, so an evaluation's column headers never change under
    # it; a missing or blank one is derived from the options.
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise GraderError(f"{_who(kind)}: label must be a string.")
    label = " ".join(raw.split())
    if len(label) > MAX_LABEL_LENGTH:
        raise GraderError(f"{_who(kind)}: label is longer than {MAX_LABEL_LENGTH} characters.")
    return label or None


def _parse_options(kind: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise GraderError(f"{_who(kind)}: options must be an object.")
    allowed = _OPTIONS[kind]
    unknown = set(raw) - set(allowed)
    if unknown:
        raise GraderError(f"{_who(kind)}: unknown option {_quote_list(unknown)}.")
    options: dict[str, Any] = {}
    for name, option in allowed.items():
        if name not in raw:
            if option.required:
                raise GraderError(f"{_who(kind)}: option '{name}' is required.")
            options[name] = option.default
            continue
        value = raw[name]
        # bool is checked exactly: True would otherwise pass as an int, and 1 as a bool.
        if type(value) is not option.type:
            raise GraderError(f"{_who(kind)}: option '{name}' must be {_TYPE_NAMES[option.type]}.")
        options[name] = copy.deepcopy(value)
    _check_options(kind, options)
    return options


def _check_options(kind: str, options: dict[str, Any]) -> None:
    if kind == "regex":
        _check_pattern(options["pattern"], options["ignore_case"])
    elif kind == "json_schema":
        _check_schema(options["schema"])


def _check_pattern(pattern: str, ignore_case: bool) -> None:
    if not pattern:
        raise GraderError("Regex grader: the pattern is empty.")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise GraderError(
            f"Regex grader: the pattern is longer than {MAX_PATTERN_LENGTH} characters."
        )
    try:
        re.compile(pattern, _regex_flags(ignore_case))
    except re.error as error:
        where = f" at position {error.pos}" if error.pos is not None else ""
        raise GraderError(f"Regex grader: {error.msg}{where}") from error
    except (OverflowError, RecursionError) as error:
        # `a{99999999999}` overflows instead of raising re.error.
        raise GraderError(f"Regex grader: {error}") from error


def _check_schema(schema: dict[str, Any]) -> None:
    try:
        json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise GraderError("JSON schema grader: the schema is not plain JSON.") from error
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = "/" + "/".join(str(part) for part in error.path)
        raise GraderError(
            f"JSON schema grader: invalid schema at {where}: {error.message}"
        ) from error


def _assign_ids(kinds_and_ids: list[tuple[str, str | None]]) -> list[str]:
    # Explicit ids are reserved first so that an automatic "regex_2" never steals one.
    taken: set[str] = set()
    for kind, given_id in kinds_and_ids:
        if given_id is None:
            continue
        if given_id in taken:
            raise GraderError(f"{_who(kind)}: id '{given_id}' is used twice.")
        taken.add(given_id)
    ids = []
    for kind, given_id in kinds_and_ids:
        if given_id is None:
            given_id = next(c for c in _id_candidates(kind) if c not in taken)
            taken.add(given_id)
        ids.append(given_id)
    return ids


def _id_candidates(kind: str) -> Iterator[str]:
    yield kind
    n = 2
    while True:
        yield f"{kind}_{n}"
        n += 1


def _label(kind: str, options: dict[str, Any]) -> str:
    base = KINDS[kind]
    qualifiers: list[str] = []
    if kind == "contains":
        base = (
            f"Contains “{_snippet(options['text'])}”" if options["text"] else "Contains reference"
        )
    elif kind == "regex":
        base = f"Regex /{_snippet(options['pattern'])}/"
    if options.get("ignore_case"):
        qualifiers.append("case-insensitive")
    if kind == "exact_match":
        if not options["ignore_whitespace"]:
            qualifiers.append("exact whitespace")
        if options["ignore_punctuation"]:
            qualifiers.append("ignoring punctuation")
    return f"{base} ({', '.join(qualifiers)})" if qualifiers else base


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LABEL_SNIPPET else text[: _LABEL_SNIPPET - 1] + "…"


# Names for error messages: "JSON schema valid grader" reads badly.
_NAMES = {**KINDS, "json_equals": "JSON equals", "json_schema": "JSON schema"}


def _who(kind: str) -> str:
    return f"{_NAMES[kind]} grader"


def _quote_list(names: set[Any]) -> str:
    return ", ".join(f"'{name}'" for name in sorted(map(str, names)))


# --- grading -----------------------------------------------------------------------------


def grade(spec: GraderSpec, *, output: str | None, reference: str) -> float | None:
    """Score one output against its reference: None for a failed cell, else a float in [0, 1]."""
    if output is None:
        return None
    grader = _GRADERS.get(spec.kind)
    if grader is None:
        raise GraderError(f"Unknown grader kind {spec.kind!r}.")
    options = {name: option.default for name, option in _OPTIONS[spec.kind].items()}
    options.update(spec.options)
    return float(grader(options, output, reference))


def grade_all(
    specs: Sequence[GraderSpec], *, output: str | None, reference: str
) -> dict[str, float | None]:
    return {spec.id: grade(spec, output=output, reference=reference) for spec in specs}


def _exact_match(options: dict[str, Any], output: str, reference: str) -> float:
    def normal(text: str) -> str:
        # NFC first: composed and decomposed "é" are the same text to a reader.
        text = unicodedata.normalize("NFC", text)
        if options["ignore_punctuation"]:
            text = "".join(ch for ch in text if not _is_punctuation(ch))
        if options["ignore_whitespace"]:
            text = " ".join(text.split())
        if options["ignore_case"]:
            # casefold, not lower: "Straße" and "STRASSE" should match.
            text = text.casefold()
        return text

    return _score(normal(output) == normal(reference))


def _contains(options: dict[str, Any], output: str, reference: str) -> float:
    # A reference usually carries an incidental trailing newline; the explicit text is
    # taken literally because the user typed it.
    needle = options["text"] or reference.strip()
    haystack = unicodedata.normalize("NFC", output)
    needle = unicodedata.normalize("NFC", needle)
    if options["ignore_case"]:
        haystack, needle = haystack.casefold(), needle.casefold()
    if not needle:
        # "" is in every string; an empty reference means "expected nothing", so only an
        # empty (or blank) output satisfies it.
        return _score(not haystack.strip())
    return _score(needle in haystack)


def _regex(options: dict[str, Any], output: str, reference: str) -> float:
    flags = _regex_flags(options["ignore_case"])
    return _score(re.search(options["pattern"], output[:REGEX_SEARCH_LIMIT], flags) is not None)


def _regex_flags(ignore_case: bool) -> re.RegexFlag:
    # Other flags are available inline: (?m), (?s), (?x).
    return re.IGNORECASE if ignore_case else re.NOFLAG


def _json_valid(options: dict[str, Any], output: str, reference: str) -> float:
    return _score(_load_json(output) is not _INVALID)


def _json_equals(options: dict[str, Any], output: str, reference: str) -> float:
    got = _load_json(output)
    expected = _load_json(reference)
    if got is _INVALID or expected is _INVALID:
        return 0.0
    return _score(_json_equal(got, expected))


def _json_schema(options: dict[str, Any], output: str, reference: str) -> float:
    instance = _load_json(output)
    if instance is _INVALID:
        return 0.0
    try:
        return _score(_validator(_canonical(options["schema"])).is_valid(instance))
    except Exception:
        # A schema that passed check_schema can still fail while validating (an
        # unresolvable $ref, a pathological pattern); one bad cell must not stop a run.
        return 0.0


def _token_f1(options: dict[str, Any], output: str, reference: str) -> float:
    predicted = _squad_tokens(output)
    gold = _squad_tokens(reference)
    if not predicted and not gold:
        return 1.0
    overlap = sum((Counter(predicted) & Counter(gold)).values())
    # 2PR/(P+R) simplified: one division, so rounding can never push the result above 1.
    return 2 * overlap / (len(predicted) + len(gold))


_GRADERS: dict[str, Callable[[dict[str, Any], str, str], float]] = {
    "exact_match": _exact_match,
    "contains": _contains,
    "regex": _regex,
    "json_valid": _json_valid,
    "json_equals": _json_equals,
    "json_schema": _json_schema,
    "token_f1": _token_f1,
}


def _score(ok: bool) -> float:
    return 1.0 if ok else 0.0


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def _squad_tokens(text: str) -> list[str]:
    # SQuAD's normalisation, widened from ASCII to Unicode punctuation so that «» and 、 count.
    text = unicodedata.normalize("NFC", text).casefold()
    text = "".join(ch for ch in text if ch not in string.punctuation and not _is_punctuation(ch))
    return _ARTICLES.sub(" ", text).split()


# --- JSON --------------------------------------------------------------------------------

_INVALID = object()
_FENCE_TAG = re.compile(r"json(?![\w-])", re.IGNORECASE)


def _load_json(text: str) -> Any:
    """The JSON value in text, or _INVALID. Tolerates one surrounding ``` or ```json fence."""
    text = text.strip()
    if len(text) >= 6 and text.startswith("```") and text.endswith("```"):
        inner = text[3:-3]
        tag = _FENCE_TAG.match(inner)
        # No JSON value starts with "j", so dropping a leading "json" tag is unambiguous.
        text = inner[tag.end() :] if tag else inner
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError, NaN/Infinity and over-long integers.
        return _INVALID


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are Python extensions, not JSON (RFC 8259).
    raise ValueError(f"{name} is not JSON")


def _json_equal(a: Any, b: Any) -> bool:
    # An explicit stack, not recursion: json.loads accepts nesting deep enough that a
    # recursive comparison would overflow Python's stack.
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                return False
            pending.extend((x[key], y[key]) for key in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif not _json_scalar_equal(x, y):
            return False
    return True


def _json_scalar_equal(x: Any, y: Any) -> bool:
    # Plain == would say true == 1 and false == 0; JSON booleans are not numbers.
    if isinstance(x, bool) or isinstance(y, bool):
        return type(x) is type(y) and x == y
    if isinstance(x, int | float) and isinstance(y, int | float):
        return x == y  # 1 and 1.0 are the same JSON number
    return type(x) is type(y) and x == y


def _canonical(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Draft202012Validator:
    # Building a validator per cell is most of the cost of this grader; key on the schema text.
    return Draft202012Validator(json.loads(schema_json))


# --- LLM judge ---------------------------------------------------------------------------

JUDGE_PROMPT = (
    "You are grading an answer against a reference answer.\n\n"
    "Question:\n{prompt}\n\n"
    "Reference answer:\n{reference}\n\n"
    "Candidate answer:\n{output}\n\n"
    "How well does the candidate answer match the reference in meaning and correctness? "
    'Reply with "Score: N" where N is an integer from 0 (wrong) to 10 (equivalent).'
)
PAIRWISE_PROMPT = (
    "You are comparing two answers to the same question against a reference answer.\n\n"
    "Question:\n{prompt}\n\n"
    "Reference answer:\n{reference}\n\n"
    "Answer A:\n{output}\n\n"
    "Answer B:\n{baseline}\n\n"
    "Which answer is closer to the reference in meaning and correctness? "
    'Reply with exactly one of "A", "B" or "TIE".'
)

# {prompt} is optional everywhere (a judge may not need the question). A reference judge
# needs the reference; a pairwise judge may compare without one.
_JUDGE_NAMES = ("prompt", "reference", "output")
_JUDGE_REQUIRED = ("reference", "output")
_PAIRWISE_REQUIRED = ("output", "baseline")


def check_template(template: str, *, pairwise: bool) -> None:
    """Raise GraderError unless template is a usable judge prompt."""
    allowed = ("prompt", "reference", "output", "baseline") if pairwise else _JUDGE_NAMES
    names = [name for _, name in _template_parts(template) if name is not None]
    for name in names:
        if name not in allowed:
            hint = " ({baseline} is only for pairwise judges)" if name == "baseline" else ""
            raise GraderError(
                f"Judge template: unknown placeholder {{{name}}}{hint}. Available: "
                + ", ".join(f"{{{n}}}" for n in allowed)
                + ". Write {{ and }} for literal braces."
            )
    missing = [n for n in (_PAIRWISE_REQUIRED if pairwise else _JUDGE_REQUIRED) if n not in names]
    if missing:
        raise GraderError(
            "Judge template: missing placeholder " + ", ".join(f"{{{n}}}" for n in missing) + "."
        )


def judge_messages(
    template: str,
    *,
    prompt_text: str,
    reference: str,
    output: str,
    baseline: str | None = None,
) -> list[dict[str, str]]:
    """The judge's chat messages: template filled with the values inserted verbatim.

    A pairwise template is expected exactly when a baseline is given.
    """
    check_template(template, pairwise=baseline is not None)
    values = {"prompt": prompt_text, "reference": reference, "output": output}
    if baseline is not None:
        values["baseline"] = baseline
    # Filling piecewise instead of str.format: braces inside values must stay untouched, and
    # an output containing "{reference}" must not be expanded.
    content = "".join(
        literal + (values[name] if name is not None else "")
        for literal, name in _template_parts(template)
    )
    return [{"role": "user", "content": content}]


def _template_parts(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder name or None) pairs, with {{ and }} already unescaped."""
    if not isinstance(template, str):
        raise GraderError("Judge template must be text.")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        # Formatter's messages ("Single '{' encountered in format string") are clear enough.
        reason = str(error)
        raise GraderError(
            f"Judge template: {reason[:1].lower()}{reason[1:]}. Write {{{{ and }}}} for literal braces."
        ) from error
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (spec or conversion):
            suffix = f"!{conversion}" if conversion else ""
            suffix += f":{spec}" if spec else ""
            raise GraderError(
                f"Judge template: unknown placeholder {{{name}{suffix}}}; "
                "placeholders take no format or conversion."
            )
        parts.append((literal, name))
    return parts


# "Score: 8", "**Score:** 8", "score = 8/10", "Score: 8 out of 10"; a denominator other than
# 10 means another scale, so it is rejected rather than misread.
_SCORE_RE = re.compile(
    r"\bscore\b[\s*_]*[:=][\s*_]*(-?[0-9]+(?:\.[0-9]+)?)"
    r"(?:[\s*_]*(?:/|out\s+of)\s*([0-9]+))?",
    re.IGNORECASE,
)
_BARE_SCORE_RE = re.compile(r"\s*([0-9]+)\s*")


def parse_judge_score(reply: str | None) -> float | None:
    """N/10 for the last "Score: N" in the reply (or a reply that is just N); else None."""
    if not reply:
        return None
    matches = list(_SCORE_RE.finditer(reply))
    if matches:
        number, scale = matches[-1].groups()
        if scale is not None and int(scale) != 10:
            return None
    else:
        bare = _BARE_SCORE_RE.fullmatch(reply)
        if bare is None:
            return None
        number = bare.group(1)
    return _score_from(number)


def _score_from(number: str) -> float | None:
    value = float(number)
    if not value.is_integer() or not 0 <= value <= 10:
        return None
    return int(value) / 10


_PAIRWISE_RE = re.compile(r"(?:answer\s*:?\s*)?(a|b)|tie", re.IGNORECASE)
_PAIRWISE_SCORES = {"a": 1.0, "b": 0.0, "tie": 0.5}


def parse_pairwise(reply: str | None) -> float | None:
    """1.0 when the candidate (A) wins, 0.0 when the baseline (B) wins, 0.5 for a tie."""
    if not reply:
        return None
    # Models decorate one-word answers: quotes, bold, a full stop.
    text = reply.strip().strip("\"'`*").strip().rstrip(".!。").strip().strip("\"'`*").strip()
    match = _PAIRWISE_RE.fullmatch(text)
    if match is None:
        return None
    return _PAIRWISE_SCORES[(match.group(1) or match.group(0)).lower()]


_PART_PLACEHOLDERS = {
    "image_url": "[image]",
    "input_image": "[image]",
    "input_audio": "[audio]",
    "file": "[file]",
}


def prompt_text(messages: Sequence[object]) -> str:
    """A chat prompt as "role: content" lines, for a judge that cannot see the original."""
    return "\n".join(
        f"{message.get('role', 'unknown')}: {_message_text(message)}"
        for message in messages
        if isinstance(message, dict)
    )


def _message_text(message: dict[str, Any]) -> str:
    pieces = [_content_text(message.get("content"))]
    for call in message.get("tool_calls") or ():
        function = call.get("function", {}) if isinstance(call, dict) else {}
        name = function.get("name", "?") if isinstance(function, dict) else "?"
        pieces.append(f"[tool call: {name}]")
    return "\n".join(piece for piece in pieces if piece)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_part_text(part) for part in content)
    return str(content)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return str(part)
    kind = part.get("type")
    text = part.get("text")
    if kind in ("text", "input_text") and isinstance(text, str):
        return text
    refusal = part.get("refusal")
    if kind == "refusal" and isinstance(refusal, str):
        return refusal
    # A non-string type (say a list, from a hand-written file) is no placeholder key.
    if isinstance(kind, str) and kind in _PART_PLACEHOLDERS:
        return _PART_PLACEHOLDERS[kind]
    return f"[{kind or 'part'}]"
