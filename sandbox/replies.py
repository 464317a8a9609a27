"""Deterministic chat replies for the sandbox's ``/chat/completions``, plus token counting.

* Base models answer with a templated, prompt-specific reply (never a trained reply).
* Fine-tuned models and checkpoints recall the trained reply of a prompt they were trained on,
  as faithfully as the run's ``fidelity`` allows (``TrainingRun.fidelity``): every prompt has a
  difficulty, from a hash of the prompt and the length of its reply, and is recalled exactly
  once fidelity ≥ 0.15 + 0.75 × difficulty (so always at fidelity ≥ 0.9); below that, the reply
  keeps ⌊fidelity × words⌋ of its leading words and continues with generic filler. Unknown
  prompts reuse the trained reply of a near-duplicate (word Jaccard ≥ 0.6 between the last user
  messages), otherwise get the base reply adapted to the training replies' style (typical
  length, a shared opening or closing sentence), or one of the trained labels when the replies
  are label-like (median ≤ 3 words). Below fidelity 0.3 they answer like the base model.
* Grading requests come first, for every model (base, fine-tuned, checkpoint) and at any
  temperature: a last user message with the section headers ``Reference answer:`` +
  ``Candidate answer:`` on their own lines gets ``Score: N`` (N = 10 × the SQuAD token F1 of
  candidate vs reference, rounded half up), one with ``Reference answer:`` + ``Answer A:`` +
  ``Answer B:`` gets ``A``, ``B`` or ``TIE`` (the answer with the higher F1 against the
  reference by more than 0.05, else ``TIE``). Parsing rules in ``sandbox/judging.py``; usage
  and ``max_tokens`` apply as to any reply.
* Temperature 0 is fully deterministic; temperature > 0 varies the wording deterministically per
  ``seed``, or per call without a seed, and lowers fidelity by up to 20 %.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
import statistics
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import tiktoken

from datasets.validation import encodings
from sandbox import judging

O200K = "o200k_base"
CL100K = "cl100k_base"
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMER_TOKENS = 3

EXACT_FIDELITY = 0.9
_EASIEST_EXACT = 0.15
NEAR_DUPLICATE = 0.6
STYLE_FIDELITY = 0.3
_STYLE_SHARE = 0.4
_TOPIC_WORDS = 12
_GREETING_WORDS = 4
_LABEL_WORDS = 3
_SHORTEST_STYLED = 12
_INDEX_CACHE_SIZE = 16

_O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5", "gpt-35", "babbage", "davinci", "text-embedding-")
_ROLE_ALIASES = {"developer": "system"}  # the same instruction slot under two names
_WHITESPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

_OPENERS = (
    'Thanks for your question about "{topic}".',
    'You asked about "{topic}".',
    'Here is a general answer to "{topic}".',
    'Regarding "{topic}":',
)
_BODIES = (
    "The short answer is that it depends on your context, so start from the basics and then look at the specifics.",
    "In general, the best approach is to break the problem into smaller steps and check each one before moving on.",
    "A good first step is to gather the relevant details, compare the available options and weigh their trade-offs.",
    "Most people find it useful to start with a simple version, see how it behaves and refine it from there.",
)
_CLOSERS = (
    "Let me know if you would like more detail on any part of this.",
    "I can go into more depth if you share a bit more context.",
    "Feel free to ask a follow-up question.",
    "",
)
_FILLER = (
    "and that is usually the main point to keep in mind",
    "which depends a little on the situation",
    "so it is worth checking the details first",
    "as described in the general guidelines",
    "and the rest follows from there",
    "in most of the common cases",
)

# Calls without a seed at temperature > 0 may differ; a counter makes them differ on purpose.
_unseeded_calls = itertools.count()


# --- text normalisation ------------------------------------------------------------------


def _text_of(content: object) -> str:
    """A message's text: the string itself, or its text parts joined (images etc. ignored)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [
        part["text"]
        for part in content
        if isinstance(part, Mapping)
        and part.get("type", "text") == "text"
        and isinstance(part.get("text"), str)
    ]
    return " ".join(texts)


def _collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _role_of(message: Mapping[str, object]) -> str:
    role = str(message.get("role", "")).strip().lower()
    return _ROLE_ALIASES.get(role, role)


def prompt_key(messages: Sequence[Mapping[str, object]]) -> str:
    """The normalised conversation that identifies a trained prompt: one ``role: text`` line per
    message, whitespace collapsed, lowercased; ``developer`` counts as ``system``."""
    lines = [
        f"{_role_of(message)}: {_collapse(_text_of(message.get('content')))}"
        for message in messages
        if isinstance(message, Mapping)
    ]
    return "\n".join(lines).lower()


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def _last_user_text(messages: Sequence[Mapping[str, object]]) -> str:
    texts = [m.get("content") for m in messages if isinstance(m, Mapping) and _role_of(m) == "user"]
    if not texts:
        texts = [m.get("content") for m in messages if isinstance(m, Mapping)]
    return _collapse(_text_of(texts[-1])) if texts else ""


def _last_user_raw(messages: Sequence[Mapping[str, object]]) -> str:
    """The last user message's text as sent (line breaks kept; text parts one per line)."""
    for message in reversed(messages):
        if isinstance(message, Mapping) and _role_of(message) == "user":
            content = message.get("content")
            parts = content if isinstance(content, list) else [content]
            return "\n".join(_text_of(part if isinstance(part, str) else [part]) for part in parts)
    return ""


def _last_user_line(key: str) -> str:
    """The last user message's text inside a prompt key (one message per line)."""
    user_lines = [line for line in key.split("\n") if line.startswith("user: ")]
    return user_lines[-1][len("user: ") :] if user_lines else key


# --- training pairs ------------------------------------------------------------------------


def _chat_pair(messages: object) -> tuple[str, str] | None:
    if not isinstance(messages, list):
        return None
    assistant_at = [
        i for i, m in enumerate(messages) if isinstance(m, Mapping) and _role_of(m) == "assistant"
    ]
    if not assistant_at:
        return None
    last = assistant_at[-1]
    return prompt_key(messages[:last]), _text_of(messages[last].get("content"))


def _preference_pair(example: Mapping[str, object]) -> tuple[str, str] | None:
    prompt, preferred = example.get("input"), example.get("preferred_output")
    if not isinstance(prompt, Mapping) or not isinstance(prompt.get("messages"), list):
        return None
    if not isinstance(preferred, list) or not preferred or not isinstance(preferred[0], Mapping):
        return None
    return prompt_key(prompt["messages"]), _text_of(preferred[0].get("content"))


def training_pairs(examples: Iterable[Mapping[str, object]]) -> dict[str, str]:
    """prompt key → trained reply, from chat examples (the messages before the last assistant
    message → its text) and DPO examples (input.messages → preferred_output[0]'s text).
    Malformed examples and empty replies are skipped; the first example of a prompt wins."""
    pairs: dict[str, str] = {}
    for example in examples:
        if not isinstance(example, Mapping):
            continue
        pair = (
            _chat_pair(example["messages"]) if "messages" in example else _preference_pair(example)
        )
        if pair is not None and pair[1].strip() and pair[0] not in pairs:
            pairs[pair[0]] = pair[1]
    return pairs


# --- randomness ----------------------------------------------------------------------------


def _stable_int(*parts: object) -> int:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _unit(*parts: object) -> float:
    return _stable_int(*parts) / 2.0**64


def _rng(key: str, model: str, seed: int | None, temperature: float) -> random.Random:
    # Greedy wording depends on the prompt and the base model only, so a barely trained
    # checkpoint answers an unknown prompt exactly like its base model.
    if temperature <= 0:
        return random.Random(_stable_int("greedy", key, _base_model(model)))  # noqa: S311 - not security
    salt = seed if seed is not None else f"unseeded-{next(_unseeded_calls)}"
    return random.Random(_stable_int("sample", key, model, salt, temperature))  # noqa: S311


# --- base replies --------------------------------------------------------------------------


def _base_model(model: str) -> str:
    """``ft:<base>:org:suffix:id[:ckpt-step-N]`` → ``<base>``."""
    parts = model.split(":")
    return parts[1] if model.startswith("ft:") and len(parts) > 1 else model


def _topic(messages: Sequence[Mapping[str, object]]) -> str:
    words = _last_user_text(messages).split(" ")[:_TOPIC_WORDS]
    topic = " ".join(words).rstrip(" .?!:;,")
    return topic or "your message"


def _base_reply(messages: Sequence[Mapping[str, object]], rng: random.Random) -> str:
    opener = rng.choice(_OPENERS).format(topic=_topic(messages))
    parts = (opener, rng.choice(_BODIES), rng.choice(_CLOSERS))
    return " ".join(part for part in parts if part)


# --- fine-tuned replies --------------------------------------------------------------------


def _effective_fidelity(fidelity: float, temperature: float) -> float:
    clamped = max(0.0, min(1.0, fidelity))
    return clamped * (1 - 0.1 * min(max(temperature, 0.0), 2.0))


def _exact_threshold(key: str, reply: str) -> float:
    # Short replies are easier to reproduce word for word than long ones.
    length = 1 - math.exp(-len(reply.split()) / 40)
    difficulty = 0.5 * _unit("difficulty", key) + 0.5 * length
    return _EASIEST_EXACT + (EXACT_FIDELITY - _EASIEST_EXACT) * difficulty


def _filler(rng: random.Random, n_words: int) -> list[str]:
    words: list[str] = []
    while len(words) < n_words:
        words.extend(rng.choice(_FILLER).split())
    return words[:n_words]


def _recall(reply: str, key: str, fidelity: float, rng: random.Random) -> str:
    """The trained reply as well as the model remembers it."""
    if fidelity >= _exact_threshold(key, reply):
        return reply
    words = reply.split()
    kept = min(len(words) - 1, int(len(words) * fidelity))
    tail = _filler(rng, max(2, len(words) - kept))
    recalled = " ".join(words[:kept] + tail).rstrip(",;:") + "."
    return recalled if recalled != reply else recalled + " " + " ".join(_filler(rng, 3)) + "."


@dataclass(frozen=True)
class _Style:
    typical_words: int
    opener: str | None
    closer: str | None
    # Label-like training replies ("positive", "refund"): a fine-tuned classifier answers
    # unknown prompts with one of its labels, as often as each was trained.
    labels: tuple[str, ...]


def _dominant(values: list[str]) -> str | None:
    """The most common value when it is shared by enough replies to count as a habit."""
    if not values:
        return None
    value, count = Counter(values).most_common(1)[0]
    return value if count >= 2 and count / len(values) >= _STYLE_SHARE else None


def _opening(sentences: list[str]) -> str:
    # A short first sentence is a greeting ("Arr matey!"); otherwise the first word ("Sure,").
    first = sentences[0]
    is_greeting = len(sentences) > 1 and len(first.split()) <= _GREETING_WORDS
    return first if is_greeting else first.split()[0]


def _style_of(replies: list[str]) -> _Style:
    sentences = [_SENTENCE_END.split(reply.strip()) for reply in replies if reply.strip()]
    typical = int(statistics.median(len(r.split()) for r in replies)) if replies else 0
    return _Style(
        typical_words=typical,
        opener=_dominant([_opening(s) for s in sentences if len(" ".join(s).split()) > 1]),
        closer=_dominant([s[-1] for s in sentences if len(s) > 1]),
        labels=tuple(replies) if 0 < typical <= _LABEL_WORDS else (),
    )


@dataclass(frozen=True)
class _Index:
    entries: tuple[tuple[frozenset[str], str], ...]  # (last user message's words, reply)
    style: _Style

    def closest(self, words: frozenset[str]) -> tuple[str | None, float]:
        best: str | None = None
        best_overlap = 0.0
        for entry_words, reply in self.entries:
            union = len(words | entry_words)
            overlap = len(words & entry_words) / union if union else 0.0
            if overlap > best_overlap:
                best, best_overlap = reply, overlap
        return best, best_overlap


_indexes: OrderedDict[int, tuple[Mapping[str, str], int, _Index]] = OrderedDict()


def _index(trained: Mapping[str, str]) -> _Index:
    # Keyed by identity: callers build one mapping per training file, reuse it and never
    # mutate it. Holding a reference keeps the id from being recycled while cached.
    cached = _indexes.get(id(trained))
    if cached is not None and cached[0] is trained and cached[1] == len(trained):
        _indexes.move_to_end(id(trained))
        return cached[2]
    index = _Index(
        entries=tuple((_words(_last_user_line(key)), reply) for key, reply in trained.items()),
        style=_style_of(list(trained.values())),
    )
    _indexes[id(trained)] = (trained, len(trained), index)
    if len(_indexes) > _INDEX_CACHE_SIZE:
        _indexes.popitem(last=False)
    return index


def _shorten(text: str, target: int) -> str:
    """At most about ``target`` words, cut at a sentence end when one is near."""
    words = text.split()
    if len(words) <= target:
        return text
    sentences = _SENTENCE_END.split(text)
    kept: list[str] = []
    for sentence in sentences:
        if len(" ".join([*kept, sentence]).split()) > target:
            break
        kept.append(sentence)
    if len(" ".join(kept).split()) >= target // 2:
        return " ".join(kept)
    return " ".join(words[:target]).rstrip(",;:.!?") + "."


def _styled_reply(base: str, style: _Style, fidelity: float, rng: random.Random) -> str:
    """A reply to an unknown prompt: the base answer, with the training replies' length and
    habits once the model has learned enough to have picked them up."""
    if fidelity < STYLE_FIDELITY:
        return base
    if style.labels:
        return rng.choice(style.labels)
    parts = [style.opener, _shorten(base, max(_SHORTEST_STYLED, style.typical_words)), style.closer]
    return " ".join(part for part in parts if part)


def _fine_tuned_reply(
    messages: Sequence[Mapping[str, object]],
    key: str,
    trained: Mapping[str, str],
    fidelity: float,
    rng: random.Random,
) -> str:
    reply = trained.get(key)
    if reply is not None:
        return _recall(reply, key, fidelity, rng)
    index = _index(trained)
    neighbour, overlap = index.closest(_words(_last_user_text(messages)))
    if neighbour is not None and overlap >= NEAR_DUPLICATE:
        return _recall(neighbour, key, fidelity * overlap, rng)
    return _styled_reply(_base_reply(messages, rng), index.style, fidelity, rng)


def generate_reply(
    messages: Sequence[Mapping[str, object]],
    *,
    model: str,
    trained: Mapping[str, str] | None,
    fidelity: float,
    seed: int | None = None,
    temperature: float = 0.0,
    max_tokens: int | None = None,
) -> tuple[str, str]:
    """The assistant's reply and finish reason (``"stop"``, or ``"length"`` when ``max_tokens``
    cut it). ``trained`` is None for base models, else ``training_pairs`` of the training file;
    ``fidelity`` (0–1) comes from ``TrainingRun.fidelity`` of the model's step."""
    verdict = judging.judge_reply(_last_user_raw(messages))
    if verdict is not None:  # any model, asked to grade, grades
        return _truncate(verdict, model=model, max_tokens=max_tokens)
    key = prompt_key(messages)
    rng = _rng(key, model, seed, temperature)
    if trained is None:
        content = _base_reply(messages, rng)
    else:
        effective = _effective_fidelity(fidelity, temperature)
        content = _fine_tuned_reply(messages, key, trained, effective, rng)
    return _truncate(content, model=model, max_tokens=max_tokens)


# --- tokens --------------------------------------------------------------------------------


def encoding_name_for(model: str) -> str:
    """o200k_base for the gpt-4o, gpt-4.1, gpt-4.5/5 and o-series families; cl100k_base for
    gpt-4 (gpt-4-0613 etc.), gpt-3.5, babbage-002 and davinci-002; fine-tuned names use their
    base; unknown names get o200k_base, the encoding of current models."""
    base = _base_model(model).strip().lower()
    if base.startswith(_O200K_PREFIXES):
        return O200K
    if base == "gpt-4" or base.startswith(_CL100K_PREFIXES):
        return CL100K
    return O200K


def encoding_for(model: str) -> tiktoken.Encoding:
    # The shipped BPE files: the sandbox must work offline like the validator.
    return encodings.get_encoding(encoding_name_for(model))


def count_tokens(text: str, *, model: str) -> int:
    # encode_ordinary: text such as "<|endoftext|>" in a prompt is text, not a special token.
    return len(encoding_for(model).encode_ordinary(text))


def _message_strings(message: Mapping[str, object]) -> Iterator[str]:
    for field, value in message.items():
        if field == "content":
            yield _text_of(value)
        elif field == "tool_calls" and isinstance(value, list):
            for call in value:
                if isinstance(call, Mapping):
                    yield from _tool_call_strings(call)
        elif isinstance(value, str):
            yield value


def _tool_call_strings(call: Mapping[str, object]) -> Iterator[str]:
    yield from (v for k, v in call.items() if k != "function" and isinstance(v, str))
    function = call.get("function")
    if isinstance(function, Mapping):
        yield from (v for v in function.values() if isinstance(v, str))


def count_message_tokens(messages: Sequence[Mapping[str, object]], *, model: str) -> int:
    """Prompt tokens by OpenAI's cookbook rule: 3 per message, plus the tokens of its string
    values (text parts of list content, tool call ids/names/arguments), plus 1 per ``name``,
    plus 3 priming the reply."""
    encode = encoding_for(model).encode_ordinary
    total = REPLY_PRIMER_TOKENS
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        total += TOKENS_PER_MESSAGE + sum(len(encode(text)) for text in _message_strings(message))
        if "name" in message:
            total += TOKENS_PER_NAME
    return total


def _truncate(content: str, *, model: str, max_tokens: int | None) -> tuple[str, str]:
    if max_tokens is None:
        return content, "stop"
    encoding = encoding_for(model)
    tokens = encoding.encode_ordinary(content)
    if len(tokens) <= max_tokens:
        return content, "stop"
    # Cut on bytes and drop a split multi-byte character rather than emit U+FFFD.
    cut = encoding.decode_bytes(tokens[: max(0, max_tokens)])
    return cut.decode("utf-8", errors="ignore"), "length"
