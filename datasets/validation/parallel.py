"""Validating a large file with every core, with exactly the report of the single pass.

The parent reads the file and cuts it at line boundaries into blocks of about 2 MB
(``lines.iter_blocks``). It hands each block to a worker process while one has room (see
``processes``: forks of this process, which start at once and share its tokenizer) and
validates the others itself, so N processes keep N cores busy and the parent's own core is
not spent waiting. Every block is validated by the single pass's own per-line code
(``blocks.BlockValidation``), numbering lines from where the block starts, and comes back as a
``BlockResult``. The parent merges the results in file order, which is what keeps the
merged report equal to the single pass's:

* counts, per-format counts and token distributions add up;
* the findings and samples kept (the first 20 of each kind) are the first 20 of the earliest
  blocks; the longest examples are the longest of every block's longest, ties going to the
  earlier line as in the single pass;
* what needs every line before it is left to the parent: blocks report, per example, the
  64-bit key of its text (and, per image example, its line), and the parent looks the keys up
  in one table in file order — so duplicates across blocks are found — and counts image
  examples against the cap. For the excerpt of the few such findings it keeps, the parent reads
  the line again from the block, which it holds until the block is merged.

Small files (under ``PARALLEL_MIN_BYTES``) and streams of unknown size keep to the single pass:
for them, the fork, the pipes and the merge would cost more than a second core gives.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

from .blocks import BlockResult, BlockSettings, BlockValidation
from .encodings import get_encoding
from .engine import JSON_WHITESPACE, Validation
from .findings import MAX_EXAMPLES_PER_CATEGORY
from .lines import (
    MAX_LINE_BYTES,
    UTF8_BOM,
    ByteProgress,
    OversizedLine,
    Source,
    count_lines,
    iter_blocks,
    iter_chunks,
)
from .models import DEFAULT_ENCODING, ModelSpec
from .processes import WorkerDied, WorkerPool
from .report import Report
from .tokens import RepeatCache
from .vision import MAX_IMAGE_EXAMPLES
from .worker import serve

log = logging.getLogger(__name__)

PARALLEL_MIN_BYTES = 16 << 20
BLOCK_BYTES = 2 << 20
# The smallest block, near the end of the file.
TAIL_BLOCK_BYTES = 256 << 10
# A worker that has not answered a block in this long is taken for stuck (a block takes well
# under a second, two queued ones on a loaded machine a few): the workers are stopped and the
# rest is validated here, instead of the task hanging until its time limit.
WORKER_PATIENCE = 120.0


def validate_stream(
    source: Source,
    *,
    model: ModelSpec | None = None,
    total_bytes: int | None = None,
    progress: Callable[[int], None] | None = None,
    processes: int = 1,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
) -> Report:
    """Validate a JSONL training file.

    ``source`` is a binary file object, an iterable of bytes chunks, or bytes. ``progress``
    gets the number of bytes done so far, at most every ~1 MB (or 1% of ``total_bytes``) and
    once at the end; an exception it raises aborts the validation (a way to cancel).

    ``processes`` is how many processes may validate at once, this one included. With more
    than one, a file of ``total_bytes >= parallel_min_bytes`` is validated in blocks by worker
    processes and this one (``ParallelValidation``); anything else in one streaming pass. The
    report is the same either way.
    """
    if processes > 1 and total_bytes is not None and total_bytes >= parallel_min_bytes:
        runner: Validation = ParallelValidation(model=model, processes=processes)
    else:
        runner = Validation(model=model)
    return runner.run(source, total_bytes=total_bytes, progress=progress)


# --- the whole file ------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    block: bytes | OversizedLine
    first_line: int
    n_lines: int
    read: int  # bytes read from the source when the block was cut
    future: Future[BlockResult]


class ParallelValidation(Validation):
    """Blocks of the file validated by ``processes`` processes (this one included), merged
    here into the single pass's report. ``blocks_here`` and ``blocks_in_workers`` say who did
    the work, ``worker_pids`` by which processes."""

    def __init__(
        self,
        *,
        model: ModelSpec | None = None,
        processes: int = 2,
        max_line_bytes: int = MAX_LINE_BYTES,
        block_bytes: int = BLOCK_BYTES,
    ) -> None:
        super().__init__(model=model, max_line_bytes=max_line_bytes, threads=1)
        self.processes = max(1, processes)
        self.block_bytes = block_bytes
        self.settings = BlockSettings(
            encoding=model.encoding if model else DEFAULT_ENCODING,
            max_line_bytes=max_line_bytes,
        )
        self._repeats = RepeatCache()
        # Blocks wait here until every block before them is merged: at most this many, so
        # the memory they hold is bounded (about max_pending × block_bytes) whatever the
        # file's size. Enough for each worker's queue plus the blocks done here meanwhile.
        self.max_pending = 3 * self.processes
        self.blocks_here = 0
        self.blocks_in_workers = 0
        self.worker_pids: list[int] = []
        self.worker_failure: str | None = None
        self._pool: WorkerPool | None = None

    def run(
        self,
        source: Source,
        *,
        total_bytes: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Report:
        counter = ByteProgress(progress, total_bytes)
        read = 0

        def chunks() -> Iterator[bytes]:
            nonlocal read
            for chunk in iter_chunks(source):
                read += len(chunk)
                yield chunk

        pending: deque[_Pending] = deque()
        first_line = 1
        finished = False
        self._start_workers()
        try:
            sizes = self._block_sizes(total_bytes)
            for block in iter_blocks(chunks(), sizes, self.max_line_bytes):
                n_lines = 1 if isinstance(block, OversizedLine) else count_lines(block)
                pending.append(
                    _Pending(block, first_line, n_lines, read, self._submit(block, first_line))
                )
                first_line += n_lines
                self._merge_ready(pending, counter, wait=len(pending) > self.max_pending)
            while pending:
                self._merge_ready(pending, counter, wait=True)
            finished = True
        finally:
            self._stop_workers(kill=not finished)
        counter.update(read)
        counter.finish()
        log.info(
            "validated %d bytes in %d blocks: %d here, %d in worker processes %s",
            read,
            self.blocks_here + self.blocks_in_workers,
            self.blocks_here,
            self.blocks_in_workers,
            self.worker_pids,
        )
        return self._report(read)

    # --- handing out blocks ----------------------------------------------------------

    def _block_sizes(self, total_bytes: int | None) -> int | Callable[[int], int]:
        """Blocks shrink towards the end of the file: once the last block is cut, what the
        workers still hold is all that is left to do, and each process waits for the others
        at most about one (small) block."""
        if total_bytes is None:
            return self.block_bytes
        full, share = self.block_bytes, 4 * self.processes
        smallest = min(full, TAIL_BLOCK_BYTES)

        def size(done: int) -> int:
            return max(smallest, min(full, (total_bytes - done) // share))

        return size

    def _start_workers(self) -> None:
        if self.processes < 2:
            return
        try:
            # Built before the fork, so every worker shares this process's tables.
            get_encoding(self.settings.encoding)
            self._pool = WorkerPool(self.processes - 1, partial(serve, self.settings))
        except WorkerDied as exc:
            self._worker_failed(str(exc))
            return
        self.worker_pids = [w.pid for w in self._pool.workers]

    def _stop_workers(self, *, kill: bool) -> None:
        if self._pool is not None:
            self._pool.close(kill=kill)
            self._pool = None

    def _worker_failed(self, reason: str) -> None:
        if self.worker_failure is None:
            self.worker_failure = reason
            log.warning("validation worker failed (%s); validating its blocks here", reason)
        self._stop_workers(kill=True)

    def _submit(self, block: bytes | OversizedLine, first_line: int) -> Future[BlockResult]:
        """A worker's future for the block when one has room, else the block validated here."""
        if self._pool is not None and isinstance(block, bytes):
            future = self._pool.submit((first_line, block))
            if future is not None:
                self.blocks_in_workers += 1
                return future
        done: Future[BlockResult] = Future()
        done.set_result(self._validate_here(block, first_line))
        return done

    def _validate_here(self, block: bytes | OversizedLine, first_line: int) -> BlockResult:
        self.blocks_here += 1
        return BlockValidation(self.settings, self._repeats).run_block(block, first_line)

    def _result(self, item: _Pending) -> BlockResult:
        try:
            return item.future.result(timeout=WORKER_PATIENCE)
        except TimeoutError:
            reason = f"a worker gave no answer in {WORKER_PATIENCE:g} s"
        except WorkerDied as exc:
            reason = str(exc)
        self._worker_failed(reason)
        self.blocks_in_workers -= 1
        return self._validate_here(item.block, item.first_line)

    # --- merging, in file order ------------------------------------------------------

    def _merge_ready(self, pending: deque[_Pending], counter: ByteProgress, *, wait: bool) -> None:
        """Merge the finished blocks at the head of ``pending``; with ``wait``, wait for the
        first one."""
        while pending and (wait or pending[0].future.done()):
            item = pending.popleft()
            result = self._result(item)
            if result.n_lines != item.n_lines:
                raise RuntimeError(
                    f"block at line {item.first_line}: {result.n_lines} lines validated, "
                    f"{item.n_lines} expected"
                )
            self._merge(result, item.block)
            counter.update(item.read)
            wait = False

    def _merge(self, result: BlockResult, block: bytes | OversizedLine) -> None:
        self.n_lines += result.n_lines
        self.n_examples += result.n_examples
        self.n_blank += result.n_blank
        self.n_invalid += result.n_invalid
        for group in result.findings:
            self.findings.merge(group)
        for kind, count in result.format_counts.items():
            self.format_counts[kind] = self.format_counts.get(kind, 0) + count
        for family, line in result.family_first.items():
            self._family_first.setdefault(family, line)
        for sample_key, samples in result.samples.items():
            mine = self.samples.setdefault(sample_key, [])
            mine.extend(samples[: MAX_EXAMPLES_PER_CATEGORY - len(mine)])
        self.tokens.total.merge(result.total)
        self.tokens.trained.merge(result.trained)
        self.tokens.messages.merge(result.messages)
        for entry in result.largest:
            self._keep_largest(entry)
        for part, state in zip(self.parts, result.parts, strict=True):
            part.state.merge(state)

        seen, findings = self.seen.add_key, self.findings
        for key, line, offset in zip(
            result.keys, result.key_lines, result.key_offsets, strict=True
        ):
            first = seen(key, line)
            if first is not None:
                text = (
                    _line_text(block, offset, line)
                    if findings.has_room("duplicate_example")
                    else ""
                )
                findings.add("duplicate_example", line, f"same as line {first}", text)
        for line, offset in zip(result.image_lines, result.image_offsets, strict=True):
            self.n_image_examples += 1
            if self.n_image_examples > MAX_IMAGE_EXAMPLES:
                wanted = findings.has_room("too_many_image_examples")
                self._image_example(line, _line_text(block, offset, line) if wanted else "")


def _line_text(block: bytes | OversizedLine, offset: int, line: int) -> str:
    """The text of the example whose line starts at ``offset``, as the single pass has it."""
    assert isinstance(block, bytes), "examples come from blocks, not oversized lines"
    end = block.find(b"\n", offset)
    raw = block[offset:] if end < 0 else block[offset:end]
    if line == 1 and raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    return raw.strip(JSON_WHITESPACE).decode("utf-8")
