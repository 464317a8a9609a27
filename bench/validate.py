"""Benchmark of the dataset validator against raw tiktoken.

    python bench/validate.py [--mb 200] [--model gpt-4o-mini-2024-07-18] [--keep PATH]

Generates a synthetic chat fine-tuning file of the given size (system prompts, multi-turn
conversations, tools and tool calls, weight-0 assistant messages, a few very long examples),
then measures in one run:

a) raw tiktoken: single-thread ``encode_ordinary`` over exactly the strings the validator's
   counting rule counts (every string field, tool definitions as compact JSON), timed around
   the encode calls only — the floor for any validator that counts tokens;
b) the validator (``validate_stream``) over the file, in a fresh subprocess, at N/4 and N MB,
   with its default threads and with one thread;
c) peak RSS growth of each validator run (ru_maxrss after minus before, in the subprocess).

Throughputs are MB of *file* per second (raw is also shown per MB of text), so the ratio
validator/raw says how much the parsing and checking cost on top of tokenizing.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MB = 1_000_000
RATIO_TARGET = 0.8
RSS_TARGET_MB = 150.0

# --- synthetic data -------------------------------------------------------------------------

_SYLLABLES = [
    "ka", "lo", "mi", "tra", "ven", "sho", "pre", "ex", "ion", "ment", "ab", "qu", "zz", "ing",
    "ed", "un", "re", "de", "con", "per", "ar", "ti", "na", "ro", "sa", "el", "ur", "om", "ph",
    "th", "ch", "st", "gr", "bl", "ou", "ea",
]  # fmt: skip
_COMMON = [
    "the", "a", "of", "to", "and", "is", "in", "that", "for", "it", "with", "as", "on", "be",
    "this", "you", "are", "was",
]  # fmt: skip
_EXTRA = ["café", "naïve", "Zürich", "東京", "データ", "🙂", "—", "Δx", "résumé", "ñandú"]
_CODE = [
    "def f(x):\n    return x * 2\n",
    "SELECT id, name FROM users WHERE active = 1;",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    '{"status": "ok", "items": [1, 2, 3]}',
    "git commit -m 'fix: handle empty input'",
]


class TextMaker:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(6000)]
        self.vocab = words + _COMMON * 150 + _EXTRA * 3

    def sentence(self, n_words: int) -> str:
        rng = self.rng
        words = rng.choices(self.vocab, k=n_words)
        for _ in range(n_words // 12):
            i = rng.randrange(n_words)
            roll = rng.random()
            if roll < 0.4:
                words[i] = str(rng.randint(0, 99_999))
            elif roll < 0.7:
                words[i] = words[i].capitalize() + rng.choice([",", ".", ":", "?", "!"])
            else:
                words[i] = words[i].upper()
        text = " ".join(words)
        if rng.random() < 0.08:
            text += "\n\n" + rng.choice(_CODE)
        return text


def _tool(rng: random.Random, maker: TextMaker, i: int) -> dict[str, Any]:
    params = {
        f"arg_{j}": {
            "type": rng.choice(["string", "integer", "boolean"]),
            "description": maker.sentence(rng.randint(3, 12)),
        }
        for j in range(rng.randint(1, 4))
    }
    return {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": maker.sentence(rng.randint(5, 25)),
            "parameters": {"type": "object", "properties": params},
        },
    }


def generate(path: Path, target_bytes: int, seed: int = 7) -> int:
    """Write synthetic examples until ``target_bytes``; returns the number of lines."""
    rng = random.Random(seed)
    maker = TextMaker(rng)
    systems = [maker.sentence(rng.randint(8, 400)) for _ in range(40)]
    toolsets = [[_tool(rng, maker, i * 10 + j) for j in range(rng.randint(1, 4))] for i in range(8)]
    written = lines = 0
    with path.open("w", encoding="utf-8") as out:
        while written < target_bytes:
            line = json.dumps(_example(rng, maker, systems, toolsets), ensure_ascii=False)
            out.write(line + "\n")
            written += len(line.encode()) + 1
            lines += 1
    return lines


def _example(
    rng: random.Random, maker: TextMaker, systems: list[str], toolsets: list[list[Any]]
) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if rng.random() < 0.8:
        messages.append({"role": "system", "content": rng.choice(systems)})
    long_example = rng.random() < 0.01
    huge_example = rng.random() < 0.0005
    example: dict[str, Any] = {"messages": messages}
    tools = rng.choice(toolsets) if rng.random() < 0.2 else None
    if tools:
        example["tools"] = tools
    for turn in range(rng.randint(1, 6)):
        n_words = rng.randint(3, 150)
        if long_example and turn == 0:
            n_words = rng.randint(3_000, 12_000)
        if huge_example and turn == 0:
            n_words = 70_000  # past the 65,536-token training context
        messages.append({"role": "user", "content": maker.sentence(n_words)})
        if tools and rng.random() < 0.5:
            call_id = f"call_{rng.getrandbits(40):x}"
            function = rng.choice(tools)["function"]
            arguments = json.dumps({"arg_0": maker.sentence(rng.randint(1, 8))})
            messages.append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": function["name"], "arguments": arguments},
                        }
                    ],
                }
            )
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": maker.sentence(rng.randint(5, 60)),
                }
            )
        reply: dict[str, Any] = {
            "role": "assistant",
            "content": maker.sentence(rng.randint(5, 250)),
        }
        if rng.random() < 0.15:
            reply["weight"] = 0
        messages.append(reply)
    if all(m.get("weight") == 0 for m in messages if m["role"] == "assistant"):
        messages[-1]["weight"] = 1
    return example


# --- raw tokenizer baseline ------------------------------------------------------------------


def counted_strings(example: dict[str, Any]) -> Iterator[str]:
    """The strings the validator's counting rule tokenizes, for the synthetic format."""
    for key in ("tools", "functions"):
        if key in example:
            yield json.dumps(example[key], separators=(",", ":"), ensure_ascii=False)
    for message in example["messages"]:
        yield message["role"]
        for key in ("name", "tool_call_id", "refusal"):
            if isinstance(message.get(key), str):
                yield message[key]
        for call in message.get("tool_calls") or ():
            yield call["id"]
            yield call["type"]
            yield call["function"]["name"]
            yield call["function"]["arguments"]
        if isinstance(message.get("content"), str):
            yield message["content"]


def raw_baseline(path: Path, encoding_name: str, limit: int | None = None) -> dict[str, Any]:
    # The same tiktoken Encoding the validator uses, built from the shipped BPE files.
    from datasets.validation.encodings import get_encoding

    encode = get_encoding(encoding_name).encode_ordinary
    elapsed = 0.0
    text_bytes = tokens = examples = messages = 0
    batch: list[str] = []

    def run(batch: list[str]) -> None:
        nonlocal elapsed, tokens
        start = time.perf_counter()
        for text in batch:
            tokens += len(encode(text))
        elapsed += time.perf_counter() - start

    with path.open("rb") as fh:
        for raw in fh:
            if limit is not None and fh.tell() > limit:
                break
            example = json.loads(raw)
            examples += 1
            messages += len(example["messages"])
            strings = list(counted_strings(example))
            text_bytes += sum(len(s.encode()) for s in strings)
            batch.extend(strings)
            if len(batch) > 20_000:
                run(batch)
                batch = []
    run(batch)
    overhead = 3 * examples + 3 * messages  # the synthetic data has no "name" fields
    return {
        "seconds": elapsed,
        "text_bytes": text_bytes,
        "tokens": tokens,
        "tokens_with_overhead": tokens + overhead,
        "examples": examples,
    }


# --- validator run (in a child process, so RSS is its own) ----------------------------------


class LimitedReader:
    def __init__(self, path: Path, limit: int) -> None:
        self._fh = path.open("rb")
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._fh.read(min(size, self._left) if size >= 0 else self._left)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()


class PeakRss:
    """Peak resident memory of this process over a block, in MB.

    Linux: reset the kernel's high-water mark (VmHWM) first, so memory used while loading the
    BPE tables does not hide the validator's own peak. Elsewhere: sample RSS with psutil.
    """

    def __enter__(self) -> PeakRss:
        self.growth_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._proc = True
        except OSError:
            self._proc = False
        self.base = self._rss()
        self.peak = self.base
        if not self._proc:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _rss(self) -> float:
        if Path("/proc/self/status").exists():
            return _proc_status_kib("VmRSS") / 1024
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        if self._proc:
            self.peak = _proc_status_kib("VmHWM") / 1024
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            self.peak = max(self.peak, self._rss())
        self.growth_mb = self.peak - self.base


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(path: Path, model_id: str, limit: int, threads: int | None) -> dict[str, Any]:
    from datasets.validation import get_default_model
    from datasets.validation.engine import Validation
    from datasets.validation.tokens import get_encoding

    model = get_default_model(model_id)
    assert model is not None, model_id
    get_encoding(model.encoding).encode_ordinary("warm up the BPE tables")
    reader = LimitedReader(path, limit)
    with PeakRss() as rss:
        start = time.perf_counter()
        report = Validation(model=model, threads=threads).run(reader, total_bytes=limit)
        seconds = time.perf_counter() - start
    reader.close()
    return {
        "seconds": seconds,
        "bytes": report.n_bytes,
        "examples": report.n_examples,
        "tokens": report.tokens.total.total,
        "rss_growth_mb": rss.growth_mb,
        "errors": report.error_count,
        "over_context": report.count("exceeds_context"),
    }


def run_child(path: Path, model_id: str, limit: int, threads: int | None) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(path),
        "--model",
        model_id,
        "--limit",
        str(limit),
    ]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def line_boundary(path: Path, approx: int) -> int:
    """The offset just after the first newline at or past ``approx``."""
    with path.open("rb") as fh:
        fh.seek(approx)
        fh.readline()
        return fh.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=200.0, help="dataset size in MB")
    parser.add_argument("--model", default="gpt-4o-mini-2024-07-18")
    parser.add_argument("--keep", type=Path, help="write the dataset here and keep it")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.limit, args.threads)))
        return

    from datasets.validation import get_default_model
    from datasets.validation.tokens import default_threads

    model = get_default_model(args.model)
    if model is None:
        parser.error(f"unknown model {args.model}")
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        path = args.keep or Path(tmp) / "synthetic.jsonl"
        start = time.perf_counter()
        n_lines = generate(path, int(args.mb * MB))
        size = path.stat().st_size
        print(
            f"generated {size / MB:.1f} MB, {n_lines:,} examples in "
            f"{time.perf_counter() - start:.1f} s -> {path}"
        )

        raw = raw_baseline(path, model.encoding)
        raw_file_rate = size / MB / raw["seconds"]
        print(
            f"(a) raw tiktoken encode_ordinary, 1 thread, {model.encoding}: "
            f"{raw['text_bytes'] / MB / raw['seconds']:.1f} MB/s of text "
            f"({raw['text_bytes'] / MB:.1f} MB, {raw['tokens']:,} tokens) = "
            f"{raw_file_rate:.1f} MB/s of file"
        )

        quarter = line_boundary(path, size // 4)
        runs = [(quarter, None), (size, None), (size, 1)]
        results = []
        for limit, threads in runs:
            result = run_child(path, model.id, limit, threads)
            results.append(result)
            label = f"threads={threads or default_threads()}"
            print(
                f"(b) validator {label:<10} over {result['bytes'] / MB:7.1f} MB: "
                f"{result['bytes'] / MB / result['seconds']:6.1f} MB/s, "
                f"{result['examples']:,} examples, {result['over_context']} over context; "
                f"(c) peak RSS growth {result['rss_growth_mb']:.1f} MB"
            )

        full, single = results[1], results[2]
        agree = "agree" if full["tokens"] == raw["tokens_with_overhead"] else "DIFFER"
        print(
            f"token totals: validator {full['tokens']:,}, raw + per-message/example "
            f"overhead {raw['tokens_with_overhead']:,} ({agree})"
        )
        ratio = (full["bytes"] / full["seconds"]) / (size / raw["seconds"])
        ratio_single = (single["bytes"] / single["seconds"]) / (size / raw["seconds"])
        growth = max(r["rss_growth_mb"] for r in results)
        print(
            f"ratio validator/raw: {ratio:.2f} (threads={default_threads()}), "
            f"{ratio_single:.2f} (1 thread); target >= {RATIO_TARGET}: "
            f"{'PASS' if ratio >= RATIO_TARGET else 'FAIL'}"
        )
        print(
            f"RSS growth: {results[0]['rss_growth_mb']:.1f} MB at "
            f"{results[0]['bytes'] / MB:.0f} MB, {full['rss_growth_mb']:.1f} MB at "
            f"{full['bytes'] / MB:.0f} MB; target <= {RSS_TARGET_MB:.0f} MB: "
            f"{'PASS' if growth <= RSS_TARGET_MB else 'FAIL'}"
        )


if __name__ == "__main__":
    main()
