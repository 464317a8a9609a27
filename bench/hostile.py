"""Benchmark: validation and the example browser on hostile files ("JSON bombs").

    python bench/hostile.py [--mb 17]

Builds files of about ``--mb`` MB of each hostile kind, and a plain chat file of the same size
as the baseline, then times in this process (best of ``--repeat`` runs):

a) the validator (``Validation(threads=1).run``) over each file;
b) the example browser's first page (``examples_page``, with the line index the upload
   builds), and the size of what it would render (characters of text shown).

Kinds: a message with 30 errors, each quoting the message, which carries a nested array
(the excerpts of the findings used to dump it whole, 30 times: 102 s for 17 MB); one line
with a million-element array; thousands of messages per line; many keys; deep nesting;
lone surrogates on every line. The ratio to the plain file says what hostility costs.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datasets import examples  # noqa: E402
from datasets.lineindex import LineIndexer  # noqa: E402
from datasets.validation.engine import Validation  # noqa: E402

MB = 1_000_000
REPLY = {"role": "assistant", "content": "ok"}


def _tree(width: int, depth: int) -> Any:
    return 0 if depth == 0 else [_tree(width, depth - 1) for _ in range(width)]


def _fill(line: Callable[[int], bytes], size: int) -> bytes:
    out, total, i = [], 0, 0
    while total < size:
        data = line(i) + b"\n"
        out.append(data)
        total += len(data)
        i += 1
    return b"".join(out)


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


def kinds(size: int) -> dict[str, bytes]:
    def plain(i: int) -> bytes:
        user = {"role": "user", "content": f"question {i} " + "about things " * 20}
        return _dumps({"messages": [user, {"role": "assistant", "content": f"answer {i}"}]})

    def quoted_bomb(i: int) -> bytes:
        message = {"role": "bogus", "content": "hi", "x0": _tree(150, 3)}
        message |= {f"x{k}": k for k in range(1, 30)}
        return _dumps({"messages": [message, REPLY], "n": i})

    def million(i: int) -> bytes:
        return _dumps({"messages": [{"role": "user", "content": list(range(1_000_000))}, REPLY]})

    def many_messages(i: int) -> bytes:
        return _dumps({"messages": [{"role": "user", "content": f"q{i}"}, REPLY] * 20_000})

    def many_keys(i: int) -> bytes:
        keys = {f"k{k}": k for k in range(100_000)}
        return _dumps({"messages": [{"role": "user", "content": f"q{i}", **keys}, REPLY]})

    def deep(i: int) -> bytes:
        nest = b"[" * 900 + str(i).encode() + b"]" * 900
        return b'{"messages": [{"role": "user", "content": ' + nest + b"}, " + _dumps(REPLY) + b"]}"

    def surrogates(i: int) -> bytes:
        user = {"role": "user", "content": f"q{i} \ud800 " + "text " * 30}
        return _dumps({"messages": [user, REPLY]})

    makers = {
        "plain (baseline)": plain,
        "quoted nested array": quoted_bomb,
        "million-element array": million,
        "20k messages a line": many_messages,
        "100k keys a message": many_keys,
        "nesting 900 deep": deep,
        "lone surrogates": surrogates,
    }
    return {name: _fill(make, size) for name, make in makers.items()}


def _timed(run: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=17.0)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (noisy machines)")
    args = parser.parse_args()
    files = kinds(int(args.mb * MB))
    Validation(threads=1).run(b'{"messages": []}\n')  # load the BPE tables first
    print(
        f"{'kind':24} {'MB':>6} {'validate s':>10} {'× plain':>8} {'page s':>7} {'shown chars':>12}"
    )
    base: float | None = None
    for name, data in files.items():
        seconds = min(
            _timed(lambda: Validation(threads=1).run(data))[0]  # noqa: B023
            for _ in range(args.repeat)
        )
        base = base or seconds
        indexer = LineIndexer()
        indexer.feed(data)
        page_seconds, items = _timed(
            lambda: examples.examples_page(io.BytesIO(data), indexer.to_json(), 1)  # noqa: B023
        )
        shown = sum(
            len(p.text) + len(e.raw)
            for e in items  # type: ignore[attr-defined]
            for m in (e.messages or [None])
            for p in (m.parts if m else [examples.Part("text")])
        )
        print(
            f"{name:24} {len(data) / MB:6.1f} {seconds:10.2f} {seconds / base:8.1f} "
            f"{page_seconds:7.2f} {shown:12,}"
        )


if __name__ == "__main__":
    main()
