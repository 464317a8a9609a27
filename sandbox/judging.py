"""LLM-judge emulation: every sandbox model, asked to grade, answers with a grade.

A grading request is recognised in the last user message by its section headers, each on a line
of its own (case-insensitive, optionally in markdown bold or after ``#``s, the colon required):

* ``Reference answer:`` then ``Candidate answer:`` → **score mode**, reply ``Score: N`` with
  N = 10 × token F1 of the candidate against the reference, rounded half up (0–10).
* ``Reference answer:`` then ``Answer A:`` then ``Answer B:`` → **pairwise mode**, reply ``A``
  when F1(A, reference) exceeds F1(B, reference) by more than 0.05, ``B`` when it is lower by
  more than 0.05, else ``TIE``. Pairwise headers win over a ``Candidate answer:`` header.

The sections are found in that order (the first ``Candidate answer:``/``Answer A:`` header line
after the reference header, the first ``Answer B:`` after ``Answer A:``), and each one's text runs
up to the next known header line (those four and ``Question:``) or the end of the message. The
last section (the candidate, or answer B) also ends before the *instruction paragraph*: the last
blank-line-separated paragraph in it, other than its first, that asks for the reply format — it
has a reply verb (reply, respond, answer, output, return, …) and, in score mode, the word
"score" (or "0 to 10"), in pairwise mode the word "tie" (or "A or B"). Taking the last such
paragraph keeps blank lines, and even instruction-like text, inside the answer. Everything else
(the preamble, the ``Question:`` section, the wording of the instruction) is free. The one
ambiguity: an answer with a line that is exactly a known header is cut at that line.

Token F1 is SQuAD's: lowercase, ASCII punctuation removed, the articles a/an/the dropped,
whitespace-split, F1 over the multiset of shared tokens; two empty answers score 1, one empty 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass

PAIRWISE_MARGIN = 0.05

REFERENCE = "reference answer"
CANDIDATE = "candidate answer"
ANSWER_A = "answer a"
ANSWER_B = "answer b"
QUESTION = "question"
KNOWN_HEADERS = frozenset({QUESTION, REFERENCE, CANDIDATE, ANSWER_A, ANSWER_B})

# "Reference answer:", "**Reference answer:**", "## Reference answer:", "**Reference answer**:".
_HEADER = re.compile(
    r"^\s*(?:#{1,6}\s*)?[*_]{0,2}\s*(?P<name>[a-z][a-z ]*?)\s*(?::\s*[*_]{0,2}|[*_]{0,2}\s*:)\s*$",
    re.IGNORECASE,
)
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_REPLY_VERB = re.compile(
    r"\b(?:reply|replies|respond|response|answer|output|return|say|write|give|grade|rate)\b",
    re.IGNORECASE,
)
_SCORE_WORDS = re.compile(r"\bscore\b|\b0\s*(?:-|–|to)\s*10\b", re.IGNORECASE)
# "TIE", or the two labels side by side: 'A or B', '"A", "B"', 'A/B'.
_PAIRWISE_WORDS = re.compile(r"\b[Tt][Ii][Ee]\b|\bA\b[\"'”’]?\s*(?:,|/|or)\s*[\"'“‘]?B\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


@dataclass(frozen=True)
class GradingRequest:
    """A parsed judge prompt: ``mode`` is ``"score"`` (``answers`` = (candidate,)) or
    ``"pairwise"`` (``answers`` = (A, B))."""

    mode: str
    reference: str
    answers: tuple[str, ...]


# --- token F1 ------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, reference: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    shared = sum((Counter(predicted) & Counter(expected)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def score(candidate: str, reference: str) -> int:
    """0–10: ten times the token F1, rounded half up."""
    # The epsilon keeps an exact half (F1 0.25 computed as 0.2499…) rounding up.
    return int(10 * token_f1(candidate, reference) + 0.5 + 1e-9)


def preference(answer_a: str, answer_b: str, reference: str) -> str:
    """``"A"``, ``"B"`` or ``"TIE"``: which answer's token F1 against the reference is higher by
    more than ``PAIRWISE_MARGIN``."""
    difference = token_f1(answer_a, reference) - token_f1(answer_b, reference)
    if difference > PAIRWISE_MARGIN:
        return "A"
    if difference < -PAIRWISE_MARGIN:
        return "B"
    return "TIE"


# --- parsing ---------------------------------------------------------------------------------


def _header_name(line: str) -> str | None:
    match = _HEADER.match(line)
    return " ".join(match["name"].lower().split()) if match else None


def _headers(lines: list[str]) -> list[tuple[int, str]]:
    """(line index, header) of every known header line."""
    found = ((index, _header_name(line)) for index, line in enumerate(lines))
    return [(index, name) for index, name in found if name in KNOWN_HEADERS]


def _first(headers: list[tuple[int, str]], name: str, after: int) -> int | None:
    return next((index for index, found in headers if found == name and index > after), None)


def _section(lines: list[str], headers: list[tuple[int, str]], at: int) -> str:
    """The text under the header at line ``at``, up to the next known header line (unstripped:
    an empty answer is still a blank paragraph before the instruction)."""
    end = next((index for index, _ in headers if index > at), len(lines))
    return "\n".join(lines[at + 1 : end])


def _is_instruction(paragraph: str, mode: str) -> bool:
    keyword = _SCORE_WORDS if mode == "score" else _PAIRWISE_WORDS
    return bool(_REPLY_VERB.search(paragraph) and keyword.search(paragraph))


def _without_instruction(text: str, mode: str) -> str:
    """The last section's text up to the instruction paragraph: the last blank-line-separated
    paragraph, other than the first, that asks for the reply format."""
    breaks = list(_BLANK_LINES.finditer(text))
    for index in range(len(breaks) - 1, -1, -1):
        end = breaks[index + 1].start() if index + 1 < len(breaks) else len(text)
        if _is_instruction(text[breaks[index].end() : end], mode):
            return text[: breaks[index].start()].strip()
    return text.strip()


def parse_grading_request(text: str) -> GradingRequest | None:
    """The grading request in ``text`` (a judge prompt), or None when it is not one."""
    if ":" not in text:
        return None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    headers = _headers(lines)
    reference_at = _first(headers, REFERENCE, -1)
    if reference_at is None:
        return None
    reference = _section(lines, headers, reference_at).strip()
    a_at = _first(headers, ANSWER_A, reference_at)
    b_at = _first(headers, ANSWER_B, a_at) if a_at is not None else None
    if a_at is not None and b_at is not None:
        answer_b = _without_instruction(_section(lines, headers, b_at), "pairwise")
        answer_a = _section(lines, headers, a_at).strip()
        return GradingRequest("pairwise", reference, (answer_a, answer_b))
    candidate_at = _first(headers, CANDIDATE, reference_at)
    if candidate_at is not None:
        candidate = _without_instruction(_section(lines, headers, candidate_at), "score")
        return GradingRequest("score", reference, (candidate,))
    return None


def verdict(request: GradingRequest) -> str:
    """The judge's reply to a grading request."""
    if request.mode == "pairwise":
        return preference(request.answers[0], request.answers[1], request.reference)
    return f"Score: {score(request.answers[0], request.reference)}"


def judge_reply(text: str) -> str | None:
    """The reply every model gives to the judge prompt ``text``, or None if it is not one."""
    request = parse_grading_request(text)
    return verdict(request) if request is not None else None
