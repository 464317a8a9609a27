"""Token counting, the way OpenAI's cookbook counts chat examples, batched for speed.

Counting rule (``num_tokens_from_messages`` in OpenAI's "Data preparation and analysis for
chat model fine-tuning" cookbook, extended to the fields it predates):

* every message costs 3 tokens, plus the tokens of each of its string values (role, content,
  name, refusal, tool_call_id), plus 1 more when it has a ``name``;
* every example costs 3 more tokens (the primed assistant reply);
* content parts: text parts count their text; image parts count an estimate (see
  ``image_tokens``); tool_calls count their id, type, function name and arguments strings;
  function_call its name and arguments;
* ``tools``/``functions`` definitions count the tokens of their compact JSON. OpenAI really
  renders them into a hidden system prompt in another syntax, so this is approximate;
* DPO examples count the input messages plus both outputs; legacy examples count the prompt
  and completion strings only.

"Trained" (assistant) tokens are the string values of assistant messages whose weight is not
0 (content, refusal, tool_calls, function_call) — or of both DPO outputs, or a legacy
completion — without the per-message overhead, as in the cookbook.

The encodings come from ``encodings`` (BPE files shipped with Tuneboard, never downloaded).

Speed: strings are counted in batches. A batch is split in halves counted concurrently
(tiktoken's Rust core releases the GIL; only the count comes back, ``encodings.
token_counter``), strings repeated within a batch —
system prompts, tool definitions — are encoded once, and repeats are remembered across batches
in a cache bounded in characters. Very short strings (roles, ids) are memoised separately.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

from .encodings import token_counter

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_EXAMPLE = 3

# gpt-4o vision pricing rules: 85 base tokens plus 170 per 512px tile at high detail.
IMAGE_BASE_TOKENS = 85
IMAGE_TILE_TOKENS = 170
# Remote images are not downloaded; assume a 1024×1024 picture (4 tiles) at high detail.
ASSUMED_REMOTE_IMAGE_TOKENS = IMAGE_BASE_TOKENS + 4 * IMAGE_TILE_TOKENS

BATCH_CHARS = 1 << 21
SHORT_CHARS = 24
_SHORT_CACHE_ENTRIES = 1 << 13
_REPEAT_CACHE_CHARS = 1 << 22
_PARALLEL_MIN_CHARS = 1 << 15


def count_tokens(text: str, encoding_name: str) -> int:
    return token_counter(encoding_name)(text)


def image_tokens(width: int | None, height: int | None, detail: str | None) -> int:
    """Estimated tokens of one image, by the gpt-4o rules (fit in 2048², shortest side to
    768, 512px tiles). "auto" is treated as "high", the worst case; unknown sizes (remote
    URLs) are assumed to be 1024×1024. Training may bill images differently."""
    if detail == "low":
        return IMAGE_BASE_TOKENS
    if not width or not height:
        return ASSUMED_REMOTE_IMAGE_TOKENS
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return IMAGE_BASE_TOKENS + IMAGE_TILE_TOKENS * tiles


def default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


@dataclass(frozen=True, slots=True)
class ExampleTokens:
    line: int
    total: int
    trained: int
    n_messages: int | None
    excerpt_source: bytes
    # "" when the OpenAI rules counted the example (every rule set's count); else the name of
    # the one rule set that counted it because no other did (Together's ``text`` lines).
    owner: str = ""


ExampleSink = Callable[[ExampleTokens], None]


class RepeatCache:
    """Token counts of strings met more than once, bounded in characters (emptied when full).

    A tally makes its own; the parallel validator hands one to every block a process
    validates, so a system prompt repeated all over the file is counted once per process,
    not once per block.
    """

    def __init__(self, max_chars: int | None = None) -> None:
        self.max_chars = _REPEAT_CACHE_CHARS if max_chars is None else max_chars
        self.counts: dict[str, int] = {}
        self.chars = 0

    def remember(self, text: str, tokens: int) -> None:
        if self.chars + len(text) > self.max_chars:
            self.counts.clear()  # in place: tallies hold this dict
            self.chars = 0
        if len(text) <= self.max_chars:
            self.counts[text] = tokens
            self.chars += len(text)


class TokenTally:
    """Collects the strings of examples, counts them a batch at a time, and hands each
    example's totals to ``sink`` in file order."""

    def __init__(
        self,
        encoding_name: str,
        sink: ExampleSink,
        threads: int = 1,
        repeats: RepeatCache | None = None,
    ) -> None:
        self.encoding_name = encoding_name
        self._len = token_counter(encoding_name)
        self._sink = sink
        self._threads = max(1, threads)
        self._executor: Executor | None = None
        self._short: dict[str, int] = {}
        self._repeats = RepeatCache() if repeats is None else repeats
        self._repeated = self._repeats.counts
        self._reset_batch()
        self._fixed = 0
        self._fixed_trained = 0
        self._ref_start = 0
        self._tref_start = 0
        # Examples ended so far: tells a later rule set whether this line was counted.
        self.n_ended = 0

    def _reset_batch(self) -> None:
        self._texts: list[str] = []
        self._index: dict[str, int] = {}
        self._dups: set[int] = set()
        self._refs: list[int] = []
        self._trefs: list[int] = []
        self._batch_chars = 0
        self._examples: list[tuple[int, int, int, int, int, int, int, int | None, bytes, str]] = []

    # --- per example -----------------------------------------------------------------

    def start(self) -> None:
        self._fixed = TOKENS_PER_EXAMPLE
        self._fixed_trained = 0
        self._ref_start = len(self._refs)
        self._tref_start = len(self._trefs)

    def start_plain(self) -> None:
        """Start an example without the chat priming tokens (legacy prompt/completion)."""
        self.start()
        self._fixed = 0

    def add_fixed(self, tokens: int) -> None:
        self._fixed += tokens

    def add(self, text: str) -> None:
        if len(text) <= SHORT_CHARS:
            self._fixed += self._short_count(text)
            return
        known = self._repeated.get(text)
        if known is not None:
            self._fixed += known
            return
        self._refs.append(self._slot(text))

    def add_trained(self, text: str) -> None:
        if len(text) <= SHORT_CHARS:
            tokens = self._short_count(text)
            self._fixed += tokens
            self._fixed_trained += tokens
            return
        known = self._repeated.get(text)
        if known is not None:
            self._fixed += known
            self._fixed_trained += known
            return
        self._trefs.append(self._slot(text))

    def end(
        self, line: int, n_messages: int | None, excerpt_source: bytes, owner: str = ""
    ) -> None:
        self.n_ended += 1
        self._examples.append(
            (
                line,
                self._fixed,
                self._fixed_trained,
                self._ref_start,
                len(self._refs),
                self._tref_start,
                len(self._trefs),
                n_messages,
                excerpt_source,
                owner,
            )
        )
        if self._batch_chars >= BATCH_CHARS:
            self.flush()

    # --- batching --------------------------------------------------------------------

    def _short_count(self, text: str) -> int:
        tokens = self._short.get(text)
        if tokens is None:
            if len(self._short) >= _SHORT_CACHE_ENTRIES:
                self._short.clear()
            tokens = self._short[text] = self._len(text)
        return tokens

    def _slot(self, text: str) -> int:
        index = self._index.get(text)
        if index is None:
            index = self._index[text] = len(self._texts)
            self._texts.append(text)
            self._batch_chars += len(text)
        else:
            self._dups.add(index)
        return index

    def flush(self) -> None:
        if not self._examples:
            return
        counts = self._count(self._texts)
        get = counts.__getitem__
        refs, trefs, sink = self._refs, self._trefs, self._sink
        for line, fixed, fixed_t, r0, r1, t0, t1, n_messages, excerpt, owner in self._examples:
            trained = fixed_t + sum(map(get, trefs[t0:t1]))
            total = fixed + sum(map(get, refs[r0:r1])) + (trained - fixed_t)
            sink(ExampleTokens(line, total, trained, n_messages, excerpt, owner))
        self._remember_repeats(counts)
        self._reset_batch()

    def _remember_repeats(self, counts: list[int]) -> None:
        remember, texts = self._repeats.remember, self._texts
        for index in self._dups:
            remember(texts[index], counts[index])

    def _count(self, texts: list[str]) -> list[int]:
        count = self._len
        if self._threads == 1 or self._batch_chars < _PARALLEL_MIN_CHARS or len(texts) < 2:
            return list(map(count, texts))
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self._threads - 1, thread_name_prefix="tuneboard-tokens"
            )
        parts = _split_by_chars(texts, self._threads, self._batch_chars)

        def work(part: list[str]) -> list[int]:
            return list(map(count, part))

        futures = [self._executor.submit(work, part) for part in parts[:-1]]
        last = work(parts[-1])  # the calling thread takes a share instead of idling
        counts: list[int] = []
        for future in futures:
            counts.extend(future.result())
        counts.extend(last)
        return counts

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _split_by_chars(texts: list[str], n_parts: int, total_chars: int) -> list[list[str]]:
    """Consecutive slices of roughly equal characters, so the threads finish together."""
    target = total_chars / n_parts
    parts: list[list[str]] = []
    start = 0
    acc = 0
    for i, text in enumerate(texts):
        acc += len(text)
        if acc >= target * (len(parts) + 1) and len(parts) < n_parts - 1:
            parts.append(texts[start : i + 1])
            start = i + 1
    parts.append(texts[start:])
    return parts
