"""Benchmark of the dataset validator against raw tiktoken, on two kinds of file.

    python bench/validate.py [--sizes 50,500] [--files synthetic,unique] [--processes 2]
                             [--quiet 0.25] [--model gpt-4o-mini-2024-07-18] [--keep DIR]

Two synthetic chat fine-tuning files are generated at the largest size (system prompts,
multi-turn conversations, tools and tool calls, weight-0 assistant messages, a few very long
examples):

* ``synthetic``: system prompts and tool sets drawn from small pools, as many real files
  repeat them (the validator counts a repeated string once);
* ``unique``: every line distinct and nothing repeated — each example has a system prompt and
  tools of its own — so no cache can help.

For each file, measured in one run:

a) raw tiktoken: single-thread ``encode_ordinary`` over exactly the strings the validator's
   counting rule counts (every string field, tool definitions as compact JSON), timed around
   the encode calls only — the floor for any validator that counts tokens — over the same
   bytes as each validator run, in the same subprocess, right after it (the machine's load
   changes from minute to minute: each ratio compares neighbouring measurements);
b) the validator, in a fresh subprocess, over the first N MB (cut at a line boundary): with
   ``--processes`` processes at every size (``ParallelValidation``: this process and
   ``processes - 1`` workers); and at the largest size in one process, with one thread and
   with the default tokenizer threads (the single pass);
c) peak memory growth of each validator run, worker processes included: the parent's peak
   RSS (VmHWM, reset before the run) minus its RSS before, plus each worker's peak private
   memory (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup, sampled every 20 ms while
   it runs). A worker is a fork of the parent: its RSS counts the pages it shares with the
   parent (the tokenizer's tables, the interpreter), which cost nothing more; its private
   memory is what it allocated plus every shared page that either process wrote to since the
   fork (copy-on-write) — what the machine spends on it. And CPU seconds (parent + workers).

Throughputs are MB of *file* per second; the ratio validator/raw compares them over the same
text. The parallel runs are made ``--repeat`` times at each size (3 by default) and the median
ratio counts: the machine's speed drifts from run to run, and each run brings its own
neighbouring baseline. Targets (issue #19): >= 1.6x with 2 processes on the unique file; RSS growth <= 150 MB,
flat in file size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
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
RATIO_TARGET = 1.6  # with 2 processes, on the unique file
RSS_TARGET_MB = 150.0
QUIET_TIMEOUT = 600.0

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


def generate(path: Path, target_bytes: int, kind: str = "synthetic", seed: int = 7) -> int:
    """Write examples until ``target_bytes``; returns the number of lines. ``kind`` is
    "synthetic" (system prompts and tool sets from small pools) or "unique" (each example
    with a system prompt and tools of its own: every line and every long string distinct)."""
    rng = random.Random(seed)
    maker = TextMaker(rng)
    systems = [maker.sentence(rng.randint(8, 400)) for _ in range(40)]
    toolsets = [[_tool(rng, maker, i * 10 + j) for j in range(rng.randint(1, 4))] for i in range(8)]
    written = lines = 0
    with path.open("w", encoding="utf-8") as out:
        while written < target_bytes:
            if kind == "unique":
                systems = [f"Case {lines:x}. {maker.sentence(rng.randint(8, 400))}"]
                toolsets = [[_tool(rng, maker, lines * 10 + j) for j in range(rng.randint(1, 4))]]
            line = json.dumps(_example(rng, maker, systems, toolsets), ensure_ascii=False)
            out.write(line + "\n")
            written += len(line.encode()) + 1
            lines += 1
        # On disk before anything is timed: otherwise the kernel writes the new file back
        # during the first runs, and they pay for it (the first of each size ran ~20% slower).
        out.flush()
        os.fsync(out.fileno())
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


def raw_baseline(path: Path, encoding_name: str, limits: list[int]) -> list[dict[str, Any]]:
    """Raw single-thread tokenizing of the first ``limit`` bytes, for each of ``limits``
    (ascending line boundaries), measured in one pass over the file."""
    # The same tiktoken Encoding the validator uses, built from the shipped BPE files.
    from datasets.validation.encodings import get_encoding

    encode = get_encoding(encoding_name).encode_ordinary
    elapsed = cpu = 0.0
    text_bytes = tokens = examples = messages = 0
    batch: list[str] = []
    out: list[dict[str, Any]] = []

    def run(batch: list[str]) -> None:
        nonlocal elapsed, cpu, tokens
        start, start_cpu = time.perf_counter(), time.thread_time()
        for text in batch:
            tokens += len(encode(text))
        elapsed += time.perf_counter() - start
        cpu += time.thread_time() - start_cpu

    def checkpoint(limit: int) -> None:
        run(batch)
        batch.clear()
        out.append(
            {
                "bytes": limit,
                "seconds": elapsed,
                "cpu_seconds": cpu,
                "text_bytes": text_bytes,
                "tokens": tokens,
                # the synthetic data has no "name" fields
                "tokens_with_overhead": tokens + 3 * examples + 3 * messages,
                "examples": examples,
            }
        )

    pending = list(limits)
    with path.open("rb") as fh:
        for raw in fh:
            example = json.loads(raw)
            examples += 1
            messages += len(example["messages"])
            strings = list(counted_strings(example))
            text_bytes += sum(len(s.encode()) for s in strings)
            batch.extend(strings)
            if len(batch) > 20_000:
                run(batch)
                batch.clear()
            while pending and fh.tell() >= pending[0]:
                checkpoint(pending.pop(0))
            if not pending:
                break
    return out


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


class WorkerMemory:
    """Peak private memory of each of ``runner``'s worker processes, in MB, sampled every
    20 ms while they run (Linux; nothing elsewhere)."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner
        self._peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def peaks_mb(self) -> list[float]:
        return list(self._peaks.values())

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            for pid in list(getattr(self._runner, "worker_pids", [])):
                mb = _private_mb(pid)
                if mb is not None:
                    self._peaks[pid] = max(self._peaks.get(pid, 0.0), mb)


def _private_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # gone, or not Linux
        return None
    kib = sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Private_"))
    return kib / 1024


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(
    path: Path, model_id: str, limit: int, processes: int, threads: int | None
) -> dict[str, Any]:
    from datasets.validation import get_default_model
    from datasets.validation.encodings import get_encoding
    from datasets.validation.engine import Validation
    from datasets.validation.parallel import ParallelValidation

    model = get_default_model(model_id)
    assert model is not None, model_id
    get_encoding(model.encoding).encode_ordinary("warm up the BPE tables")
    runner: Validation
    if processes > 1:
        runner = ParallelValidation(model=model, processes=processes)
    else:
        runner = Validation(model=model, threads=threads)
    reader = LimitedReader(path, limit)
    loads = [os.getloadavg()[0]]
    before = resource.getrusage(resource.RUSAGE_SELF)
    with PeakRss() as rss, WorkerMemory(runner) as workers_memory:
        start = time.perf_counter()
        report = runner.run(reader, total_bytes=limit)
        seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, all waited for
    loads.append(os.getloadavg()[0])
    reader.close()
    # The baseline right after, in the same process, over the same bytes: on a shared
    # machine the load changes from minute to minute, so each ratio compares neighbours.
    (raw,) = raw_baseline(path, model.encoding, [limit])
    n_workers = len(getattr(runner, "worker_pids", []))
    return {
        "seconds": seconds,
        "cpu_parent": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "cpu_workers": workers.ru_utime + workers.ru_stime,
        "bytes": report.n_bytes,
        "examples": report.n_examples,
        "duplicates": report.count("duplicate_example"),
        "tokens": report.tokens.total.total,
        "parent_growth_mb": rss.growth_mb,
        "worker_private_mb": workers_memory.peaks_mb,
        "n_workers": n_workers,
        "rss_growth_mb": rss.growth_mb + sum(workers_memory.peaks_mb),
        "blocks_here": getattr(runner, "blocks_here", 0),
        "blocks_in_workers": getattr(runner, "blocks_in_workers", 0),
        "load": loads,
        "errors": report.error_count,
        "over_context": report.count("exceeds_context"),
        "raw": raw,
    }


def run_child(
    path: Path, model_id: str, limit: int, processes: int, threads: int | None
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(path), "--model", model_id]
    cmd += ["--limit", str(limit), "--processes", str(processes)]
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


def bench_file(
    kind: str,
    path: Path,
    sizes: list[float],
    model: Any,
    processes: int,
    quiet: float,
    repeat: int = 1,
) -> dict[str, Any]:
    from datasets.validation.tokens import default_threads

    start = time.perf_counter()
    n_lines = generate(path, int(max(sizes) * MB), kind)
    size = path.stat().st_size
    limits = [line_boundary(path, int(mb * MB)) for mb in sorted(sizes)[:-1]] + [size]
    print(
        f"\n== {kind}: {size / MB:.1f} MB, {n_lines:,} examples, generated in "
        f"{time.perf_counter() - start:.1f} s -> {path}  (load {_load()})"
    )
    runs: list[tuple[int, int, int | None]] = [
        (i, processes, None) for i in range(len(limits)) for _ in range(repeat)
    ]
    last = len(limits) - 1
    runs += [(last, 1, 1), (last, 1, None)]
    results = []
    for index, n_processes, threads in runs:
        before = wait_for_quiet(quiet, QUIET_TIMEOUT) if quiet < 1 else ""
        result = run_child(path, model.id, limits[index], n_processes, threads)
        result["before"] = before
        raw = result["raw"]
        print(
            f"(a) raw tiktoken encode_ordinary, 1 thread, {model.encoding}, first "
            f"{raw['bytes'] / MB:.0f} MB: {raw['text_bytes'] / MB / raw['seconds']:.1f} MB/s "
            f"of text ({raw['tokens']:,} tokens) = {raw['bytes'] / MB / raw['seconds']:.1f} MB/s "
            f"of file; {raw['cpu_seconds']:.1f} s CPU"
        )
        result.update(processes=n_processes, threads=threads or default_threads())
        result["ratio"] = (result["bytes"] / result["seconds"]) / (raw["bytes"] / raw["seconds"])
        if n_processes > 1:
            label = f"{n_processes} processes"
            who = f"blocks {result['blocks_here']} here + {result['blocks_in_workers']} in workers"
        else:
            label = f"1 process, {result['threads']} thr"
            who = "one pass"
        print(
            f"(b) validator {label:<18} over {result['bytes'] / MB:6.1f} MB: "
            f"{result['bytes'] / MB / result['seconds']:6.1f} MB/s = {result['ratio']:.2f}x raw; "
            f"CPU {result['cpu_parent']:.1f} s + workers {result['cpu_workers']:.1f} s ({who}); "
            f"(c) memory growth {result['rss_growth_mb']:.1f} MB (parent RSS "
            f"{result['parent_growth_mb']:.1f} + worker private "
            f"{' + '.join(f'{mb:.1f}' for mb in result['worker_private_mb']) or '0'}); "
            f"load {result['load'][0]:.1f}->"
            f"{result['load'][1]:.1f}{'; ' + before if before else ''}"
        )
        results.append(result)
    # Per size, the parallel run with the median ratio stands for it (each ratio compares
    # the run with its own neighbouring baseline; the machine's speed drifts between runs).
    parallel = []
    for index in range(len(limits)):
        group = sorted(results[index * repeat : (index + 1) * repeat], key=lambda r: r["ratio"])
        median = dict(group[len(group) // 2])
        median["ratios"] = [r["ratio"] for r in group]
        median["max_rss_growth_mb"] = max(r["rss_growth_mb"] for r in group)
        parallel.append(median)
    full = parallel[-1]
    expected = full["raw"]["tokens_with_overhead"]
    agree = "agree" if full["tokens"] == expected else "DIFFER"
    print(
        f"token totals: validator {full['tokens']:,}, raw + per-message/example overhead "
        f"{expected:,} ({agree}); {full['duplicates']} duplicate lines"
    )
    return {"kind": kind, "runs": results, "parallel": parallel}


def _cpu_busy(seconds: float = 2.0) -> float:
    """Fraction of all CPUs busy over ``seconds`` (from /proc/stat; 0 where it is missing)."""

    def sample() -> tuple[int, int]:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except OSError:
            return 0, 0
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / (total1 - total0) if total1 > total0 else 0.0


def wait_for_quiet(max_busy: float, timeout: float) -> str:
    """On a shared machine, wait (up to ``timeout`` s) until at most ``max_busy`` of the CPUs
    are busy, so that a run is not measured while other work takes its cores."""
    deadline = time.monotonic() + timeout
    busy = _cpu_busy()
    while busy > max_busy and time.monotonic() < deadline:
        busy = _cpu_busy(5.0)
    state = "quiet" if busy <= max_busy else "BUSY"
    return f"{state}: {busy:.0%} of CPUs busy before the run"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,500", help="file sizes in MB, comma-separated")
    parser.add_argument("--files", default="synthetic,unique", help="synthetic, unique or both")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="for the parallel runs"
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.25,
        help="before each run wait (up to 10 min) until at most this fraction of the CPUs is "
        "busy; 1 runs at once",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="parallel runs per size; the median ratio counts"
    )
    parser.add_argument("--model", default="gpt-4o-mini-2024-07-18")
    parser.add_argument("--keep", type=Path, help="write the files in this folder and keep them")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.child, args.model, args.limit, args.processes, args.threads)
        print(json.dumps(result))
        return

    from datasets.validation import get_default_model

    model = get_default_model(args.model)
    if model is None:
        parser.error(f"unknown model {args.model}")
    sizes = sorted(float(x) for x in args.sizes.split(","))
    kinds = [k.strip() for k in args.files.split(",")]
    if any(k not in ("synthetic", "unique") for k in kinds):
        parser.error("--files takes synthetic, unique or both")
    print(f"{os.cpu_count()} CPUs; load average {_load()}; {args.processes} processes")
    summaries = []
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            summaries.append(
                bench_file(
                    kind,
                    folder / f"{kind}.jsonl",
                    sizes,
                    model,
                    args.processes,
                    args.quiet,
                    max(1, args.repeat),
                )
            )
            if not args.keep:
                (folder / f"{kind}.jsonl").unlink()
    print(f"\nsummary (load average now {_load()}):")
    for summary in summaries:
        parallel = summary["parallel"]
        best = parallel[-1]
        single = summary["runs"][-2]
        growth = [r["max_rss_growth_mb"] for r in parallel]
        ratio_ok = all(r["ratio"] >= RATIO_TARGET for r in parallel)
        print(
            f"  {summary['kind']:<9} median ratio with {best['processes']} processes: "
            + ", ".join(
                f"{r['ratio']:.2f}x at {r['bytes'] / MB:.0f} MB (runs: "
                + " ".join(f"{x:.2f}" for x in r["ratios"])
                + ")"
                for r in parallel
            )
        )
        rss_ok = max(growth) <= RSS_TARGET_MB
        print(
            f"  {summary['kind']:<9} ratio validator/raw: {best['ratio']:.2f}x with "
            f"{best['processes']} processes, {single['ratio']:.2f}x in 1 process 1 thread, "
            f"{summary['runs'][-1]['ratio']:.2f}x in 1 process {summary['runs'][-1]['threads']} "
            f"threads (target >= {RATIO_TARGET}x: {'PASS' if ratio_ok else 'FAIL'}); RSS growth "
            + ", ".join(
                f"{g:.1f} MB at {r['bytes'] / MB:.0f} MB"
                for g, r in zip(growth, parallel, strict=True)
            )
            + f" (target <= {RSS_TARGET_MB:.0f} MB: {'PASS' if rss_ok else 'FAIL'})"
        )


if __name__ == "__main__":
    main()
