"""Parallel validation: blocks of whole lines, validated by worker processes and this one,
merge into exactly the single pass's report."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.validation import engine, parallel, validate_stream
from datasets.validation.engine import Validation
from datasets.validation.lines import (
    OversizedLine,
    block_lines,
    count_lines,
    iter_blocks,
    iter_lines,
)
from datasets.validation.parallel import ParallelValidation

from .helpers import GPT4O_MINI, chat, jsonl, model, simple

ROOT = Path(__file__).resolve().parents[2]
IMAGE = {"type": "image_url", "image_url": {"url": "https://e.com/a.png", "detail": "low"}}

# Lines a random file is made of. Drawn again and again, they make duplicates, near and far
# apart (so across block boundaries); several hold multi-byte UTF-8 that block cuts may fall
# next to.
POOL: list[bytes] = [
    json.dumps(simple(1)).encode(),
    json.dumps(chat(("user", "Grüße aus Zürich 🙂"), ("assistant", "東京は晴れ"))).encode(),
    json.dumps(chat(("user", "x" * 300), ("assistant", "ÿ" * 150)), ensure_ascii=False).encode(),
    json.dumps(chat(("user", "q"), ("assistant", "a"), system="Be terse. " * 30)).encode(),
    json.dumps(
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi"}, IMAGE]},
                {"role": "assistant", "content": "a cat"},
            ]
        }
    ).encode(),
    json.dumps({"prompt": "2+2=", "completion": " 4"}).encode(),
    json.dumps(
        {
            "input": {"messages": [{"role": "user", "content": "pick"}]},
            "preferred_output": [{"role": "assistant", "content": "this"}],
            "non_preferred_output": [{"role": "assistant", "content": "that"}],
        }
    ).encode(),
    json.dumps(chat(("user", "no reply"))).encode(),
    json.dumps(chat(("user", "<|endoftext|>"), ("assistant", "ok"), weight=0)).encode(),
    b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "s"}]}',
    b"",
    b"   \t",
    b'{"messages": [',
    b'{"a": NaN}',
    b"[1, 2]",
    b'"just text"',
    b'{"prompt": "\xff\xfe"}',
    b'{"unknown": "format"}',
    b"\xef\xbb\xbf" + json.dumps(simple(7)).encode(),
    # Together AI's formats and rules: generic text (tokenized for Together only), roles out
    # of turn, integer weights, a preference input ending with the assistant, two formats in
    # one line.
    json.dumps({"text": "Plain text to train on, Grüße 🙂"}, ensure_ascii=False).encode(),
    json.dumps({"text": "x" * 400}).encode(),
    json.dumps({"text": ""}).encode(),
    json.dumps(chat(("assistant", "first"), ("user", "q"), ("assistant", "a"))).encode(),
    json.dumps(
        {
            "messages": [
                {"role": "user", "content": "q", "weight": 0},
                {"role": "assistant", "content": "a", "weight": 1.0},
            ]
        }
    ).encode(),
    json.dumps(
        {
            "input": {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "preferred_output": [{"role": "assistant", "content": "this"}],
            "non_preferred_output": [{"role": "assistant", "content": ""}],
        }
    ).encode(),
    json.dumps({"text": "both", "prompt": "p", "completion": "c"}).encode(),
]
MODELS = st.sampled_from([GPT4O_MINI, "gpt-4o-2024-08-06", "babbage-002", None])
FRESH = st.builds(
    lambda user, reply: json.dumps(
        chat(("user", user), ("assistant", reply)), ensure_ascii=False
    ).encode(),
    st.text(max_size=40),
    st.text(min_size=1, max_size=40),
)


@st.composite
def files(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.sampled_from(POOL) | FRESH, max_size=90))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = newline.join(lines)
    if lines and draw(st.booleans()):
        data += newline  # else the last line has no newline
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def single_pass(data: bytes, model_id: str | None, max_line_bytes: int) -> dict[str, Any]:
    spec = model(model_id) if model_id else None
    return Validation(model=spec, max_line_bytes=max_line_bytes).run(data).to_dict()


def in_blocks(
    data: bytes,
    model_id: str | None,
    *,
    processes: int,
    block_bytes: int,
    chunk: int,
    max_line_bytes: int,
) -> tuple[ParallelValidation, dict[str, Any]]:
    runner = ParallelValidation(
        model=model(model_id) if model_id else None,
        processes=processes,
        block_bytes=block_bytes,
        max_line_bytes=max_line_bytes,
    )

    report = runner.run(chunked(data, chunk), total_bytes=len(data))
    return runner, report.to_dict()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# --- cutting a stream into blocks ---------------------------------------------------------


@settings(deadline=None, max_examples=300)
@given(
    st.lists(
        st.binary(max_size=40) | st.sampled_from([b"\r", "é東🙂".encode(), b"\xef\xbb\xbf"]),
        max_size=40,
    ),
    st.booleans(),
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=1, max_value=128),
    st.integers(min_value=1, max_value=80),
)
def test_blocks_hold_the_lines_iter_lines_gives(
    pieces: list[bytes], trailing: bool, chunk: int, block_bytes: int, max_line_bytes: int
) -> None:
    data = b"\n".join(pieces) + (b"\n" if trailing else b"")
    expected = list(iter_lines(chunked(data, chunk), max_line_bytes))
    got: list[bytes | OversizedLine] = []
    blocks = list(iter_blocks(chunked(data, chunk), block_bytes, max_line_bytes))
    for i, block in enumerate(blocks):
        if isinstance(block, OversizedLine):
            got.append(block)
            continue
        assert block and (block.endswith(b"\n") or i == len(blocks) - 1)
        lines = list(block_lines(block, max_line_bytes))
        assert len(lines) == count_lines(block)
        for offset, line in lines:
            if not isinstance(line, OversizedLine):
                assert block[offset : offset + len(line) + 1] in (line + b"\n", line)
        got.extend(line for _, line in lines)
    assert got == expected


# --- the merged report is the single pass's report ----------------------------------------


@settings(
    deadline=None,
    max_examples=250,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    files(),
    MODELS,
    st.integers(min_value=1, max_value=600),
    st.integers(min_value=1, max_value=300),
    st.sampled_from([120, 400, 32 << 20]),
)
def test_blocks_merge_into_the_single_pass_report(
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
    model_id: str | None,
    block_bytes: int,
    chunk: int,
    max_line_bytes: int,
) -> None:
    # A cap of 3 image examples instead of 50,000, so files of a few lines pass it: the cap
    # is counted in the merge, across blocks.
    monkeypatch.setattr(engine, "MAX_IMAGE_EXAMPLES", 3)
    monkeypatch.setattr(parallel, "MAX_IMAGE_EXAMPLES", 3)
    # All blocks in this process: the cuts and the merge are what is under test (quick
    # enough for hundreds of files); the next test hands blocks to worker processes.
    runner, merged = in_blocks(
        data,
        model_id,
        processes=1,
        block_bytes=block_bytes,
        chunk=chunk,
        max_line_bytes=max_line_bytes,
    )
    assert merged == single_pass(data, model_id, max_line_bytes)
    assert merged["n_bytes"] == len(data)
    assert runner.blocks_here >= (1 if data else 0)


@settings(deadline=None, max_examples=8, suppress_health_check=[HealthCheck.too_slow])
@given(files(), st.integers(min_value=50, max_value=2000), st.sampled_from([120, 32 << 20]))
def test_worker_processes_give_the_single_pass_report(
    data: bytes, block_bytes: int, max_line_bytes: int
) -> None:
    runner, merged = in_blocks(
        data,
        GPT4O_MINI,
        processes=3,
        block_bytes=block_bytes,
        chunk=256,
        max_line_bytes=max_line_bytes,
    )
    assert merged == single_pass(data, GPT4O_MINI, max_line_bytes)
    assert runner.worker_failure is None
    assert len(runner.worker_pids) == 2
    assert all(gone(pid) for pid in runner.worker_pids)


def test_duplicates_across_blocks_name_their_first_line() -> None:
    examples = [simple(i) for i in range(300)]
    examples[250] = examples[3]
    examples[280] = chat(("user", "Grüße"), ("assistant", "🙂"))
    examples[290] = chat(("user", "Grüße"), ("assistant", "🙂"))
    data = jsonl(examples)
    runner, merged = in_blocks(
        data, GPT4O_MINI, processes=2, block_bytes=1024, chunk=4096, max_line_bytes=1 << 20
    )
    assert runner.blocks_in_workers > 0 and runner.blocks_here > 0
    assert merged == single_pass(data, GPT4O_MINI, 1 << 20)
    (group,) = [g for g in merged["findings"] if g["code"] == "duplicate_example"]
    assert group["count"] == 2
    assert [(f["line"], f["message"]) for f in group["examples"]] == [
        (251, "same as line 4"),
        (291, "same as line 281"),
    ]
    assert group["examples"][1]["excerpt"] == json.dumps(examples[290], ensure_ascii=False)


def test_workers_take_blocks_and_exit_when_done(caplog: pytest.LogCaptureFixture) -> None:
    data = jsonl([simple(i) for i in range(2000)])
    caplog.set_level(logging.INFO, logger="datasets.validation.parallel")
    report = validate_stream(
        data, model=model(GPT4O_MINI), total_bytes=len(data), processes=2, parallel_min_bytes=0
    )
    assert report.to_dict() == single_pass(data, GPT4O_MINI, 32 << 20)
    (message,) = [
        r.getMessage() for r in caplog.records if r.name == "datasets.validation.parallel"
    ]
    pids = json.loads(message.rsplit(" ", 1)[1])
    assert len(pids) == 1 and pids[0] != os.getpid() and gone(pids[0])


def test_small_files_and_unknown_sizes_keep_to_one_pass(caplog: pytest.LogCaptureFixture) -> None:
    data = jsonl([simple(i) for i in range(100)])
    caplog.set_level(logging.INFO, logger="datasets.validation.parallel")
    validate_stream(data, total_bytes=len(data), processes=4)  # under PARALLEL_MIN_BYTES
    validate_stream(data, processes=4, parallel_min_bytes=0)  # size unknown
    validate_stream(data, total_bytes=len(data), processes=1, parallel_min_bytes=0)
    assert not [r for r in caplog.records if r.name == "datasets.validation.parallel"]


@pytest.mark.parametrize(
    ("signum", "failure"),
    [
        (signal.SIGKILL, "the worker process exited (exit status -9)"),
        # Stopped, as a deadlocked worker would be: it never answers.
        (signal.SIGSTOP, "a worker gave no answer in 1 s"),
    ],
)
def test_a_worker_that_dies_or_stops_answering_leaves_its_blocks_to_this_process(
    monkeypatch: pytest.MonkeyPatch, signum: int, failure: str
) -> None:
    monkeypatch.setattr(parallel, "WORKER_PATIENCE", 1.0)
    data = jsonl([simple(i) for i in range(1500)])
    runner = ParallelValidation(model=model(GPT4O_MINI), processes=2, block_bytes=2048)

    def source() -> Iterator[bytes]:
        # The worker is started before the file is read; it is gone or stopped before it
        # answers anything.
        (pid,) = runner.worker_pids
        os.kill(pid, signum)
        yield from chunked(data, 1000)

    report = runner.run(source(), total_bytes=len(data))
    assert report.to_dict() == single_pass(data, GPT4O_MINI, 32 << 20)
    assert runner.worker_failure == failure
    assert runner.blocks_in_workers == 0
    assert runner.blocks_here == len(list(iter_blocks(chunked(data, 1000), 2048)))
    assert all(gone(pid) for pid in runner.worker_pids)


def test_cancelling_stops_the_workers() -> None:
    data = jsonl([simple(i) for i in range(30_000)])  # ~1.9 MB: progress every ~1 MB
    runner = ParallelValidation(model=model(GPT4O_MINI), processes=3, block_bytes=64 << 10)

    class Cancelled(Exception):
        pass

    def progress(done: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        runner.run(chunked(data, 1 << 16), total_bytes=len(data), progress=progress)
    assert len(runner.worker_pids) == 2
    assert all(gone(pid) for pid in runner.worker_pids)


def test_workers_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    # A parent that starts its worker, reads the file from our pipe, and is killed mid-file
    # (Celery's hard time limit): the worker reads EOF and exits instead of lingering.
    script = textwrap.dedent(
        """
        import sys
        from datasets.validation.parallel import ParallelValidation

        runner = ParallelValidation(processes=2, block_bytes=1024)

        def source():
            print(runner.worker_pids[0], flush=True)
            while chunk := sys.stdin.buffer.read1(4096):
                yield chunk

        runner.run(source(), total_bytes=1 << 30)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None and parent.stdin is not None
        worker = psutil.Process(int(parent.stdout.readline()))
        assert worker.ppid() == parent.pid
        parent.stdin.write(jsonl([simple(i) for i in range(200)]))
        parent.stdin.flush()
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        worker.wait(timeout=30)  # raises TimeoutExpired if the worker outlives its parent
    finally:
        parent.kill()
        parent.wait()
