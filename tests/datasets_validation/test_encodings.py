"""Issue 14.1: the tokenizers come from BPE files shipped in the project, verified by sha256,
whatever TIKTOKEN_CACHE_DIR says and without any network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiktoken_ext import openai_public

from datasets.validation import TokenizerError, encodings

from .helpers import GPT4O_MINI, GPT35, jsonl, simple, validate

REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter with every outbound connection and DNS lookup refused: the
# state of a machine without network. It prints what plain tiktoken does there (proof that
# the guard bites) and then the validator's counts for both encodings.
OFFLINE_SCRIPT = r"""
import io, json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network disabled by the test")

socket.getaddrinfo = refuse
socket.socket.connect = refuse
socket.create_connection = refuse

out = {}
import tiktoken
try:
    tiktoken.get_encoding("o200k_base")
    out["plain_tiktoken"] = "loaded"
except Exception as exc:
    out["plain_tiktoken"] = type(exc).__name__

from datasets.validation import get_default_model, validate_stream
data = sys.stdin.buffer.read()
for model_id in sys.argv[1:]:
    report = validate_stream(io.BytesIO(data), model=get_default_model(model_id))
    out[model_id] = [report.is_valid, report.tokens.total.total]
print(json.dumps(out))
"""


@pytest.fixture
def bpe_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the shipped BPE folder the loader reads from for this test only."""
    folder = tmp_path / "bpe"
    shutil.copytree(encodings.SHIPPED_DIR, folder)
    encodings.use_bpe_directory(folder)
    yield folder
    encodings.use_bpe_directory(None)


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01  # one flipped bit in a token: still parses, counts wrong
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", sorted(encodings.ENCODINGS))
def test_shipped_encodings_are_tiktokens_own(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Regex, special tokens and file hash equal what tiktoken's registry would build."""
    ours = encodings.get_encoding(name)
    asked: list[tuple[str, str]] = []

    def shipped_ranks(url: str, expected_hash: str) -> dict[bytes, int]:
        asked.append((url, expected_hash))
        return ours._mergeable_ranks

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", shipped_ranks)
    theirs = getattr(openai_public, name)()
    source = encodings.ENCODINGS[name]
    assert [h for _, h in asked] == [source.sha256]
    assert theirs["pat_str"] == ours._pat_str
    assert theirs["special_tokens"] == ours._special_tokens
    shipped = (encodings.SHIPPED_DIR / source.file).read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == source.sha256
    assert len(ours.encode_ordinary("hello world")) == 2


def test_validation_works_offline_whatever_tiktoken_cache_dir_says(tmp_path: Path) -> None:
    data = jsonl(simple(i) for i in range(12))
    expected = {m: [True, validate(data, m).tokens.total.total] for m in (GPT4O_MINI, GPT35)}
    (tmp_path / "empty").mkdir()
    # An empty cache, and "" (to tiktoken: no cache, always download).
    for cache_dir in (str(tmp_path / "empty"), ""):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TIKTOKEN")},
            "TIKTOKEN_CACHE_DIR": cache_dir,
            "PYTHONPATH": str(REPO),
        }
        result = subprocess.run(
            [sys.executable, "-c", OFFLINE_SCRIPT, GPT4O_MINI, GPT35],
            input=data,
            capture_output=True,
            env=env,
            cwd=REPO,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        out = json.loads(result.stdout)
        # Plain tiktoken cannot load here: the folder holds no BPE file and the network is off.
        assert out.pop("plain_tiktoken") != "loaded"
        assert out == expected


def test_a_damaged_bpe_file_is_reported_and_never_used(bpe_copy: Path) -> None:
    _damage(bpe_copy / "o200k_base.tiktoken")
    problems = encodings.check_files()
    assert problems["cl100k_base"] is None
    assert problems["o200k_base"] == (
        "o200k_base: BPE file o200k_base.tiktoken is damaged or replaced (its sha256 is not "
        "the shipped file's); restore it from the Tuneboard release"
    )
    with pytest.raises(TokenizerError, match=r"o200k_base\.tiktoken is damaged"):
        validate(jsonl([simple()]), GPT4O_MINI)
    # The other encoding is intact and still counts.
    report = validate(jsonl([simple()]), GPT35)
    assert report.tokens.total.n == 1


def test_a_missing_bpe_file_is_reported(bpe_copy: Path) -> None:
    (bpe_copy / "cl100k_base.tiktoken").unlink()
    assert encodings.check_files()["cl100k_base"] == (
        "cl100k_base: BPE file cl100k_base.tiktoken cannot be read (No such file or directory)"
    )
    with pytest.raises(TokenizerError, match="cannot be read"):
        encodings.get_encoding("cl100k_base")
    assert not issubclass(TokenizerError, OSError)


def test_a_repaired_file_is_seen_again(bpe_copy: Path) -> None:
    target = bpe_copy / "o200k_base.tiktoken"
    _damage(target)
    assert encodings.check_files()["o200k_base"] is not None
    shutil.copyfile(encodings.SHIPPED_DIR / "o200k_base.tiktoken", target)
    assert encodings.check_files()["o200k_base"] is None
    assert len(encodings.get_encoding("o200k_base").encode_ordinary("hello world")) == 2


def test_an_unknown_encoding_is_a_tokenizer_error() -> None:
    with pytest.raises(TokenizerError, match="unknown encoding 'p50k_base'"):
        encodings.get_encoding("p50k_base")
