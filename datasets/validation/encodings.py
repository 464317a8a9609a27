"""The tokenizers Tuneboard counts with, built from BPE files shipped in this package.

tiktoken's own ``get_encoding`` downloads its BPE files on first use (and reads
``TIKTOKEN_CACHE_DIR``); on an offline machine every validation then failed with a DNS error.
So the two encodings the product's models use ship in ``bpe/`` and are built here with
``tiktoken.Encoding`` directly: tiktoken's registry, cache and network code are never reached,
whatever ``TIKTOKEN_CACHE_DIR`` says. Each file is checked against the sha256 that tiktoken
itself expects for it before it is used, so a damaged or replaced file is reported as such
instead of silently counting wrong.

The regex and special tokens below are tiktoken's (``tiktoken_ext.openai_public``); a test
checks them against that module, so a tiktoken upgrade that changes them fails loudly.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import tiktoken

SHIPPED_DIR = Path(__file__).resolve().parent / "bpe"

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"

_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)


@dataclass(frozen=True, slots=True)
class EncodingSource:
    file: str
    sha256: str
    pat_str: str
    special_tokens: Mapping[str, int]


ENCODINGS: dict[str, EncodingSource] = {
    "o200k_base": EncodingSource(
        file="o200k_base.tiktoken",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PAT,
        special_tokens={ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
    ),
    "cl100k_base": EncodingSource(
        file="cl100k_base.tiktoken",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=_CL100K_PAT,
        special_tokens={
            ENDOFTEXT: 100257,
            FIM_PREFIX: 100258,
            FIM_MIDDLE: 100259,
            FIM_SUFFIX: 100260,
            ENDOFPROMPT: 100276,
        },
    ),
}


class TokenizerError(Exception):
    """A tokenizer cannot be built: unknown encoding, or a BPE file missing, unreadable or
    not the one shipped. Not an ``OSError``: callers must not mistake it for their own file."""


_lock = threading.Lock()
_directory = SHIPPED_DIR
_encodings: dict[tuple[str, Path], tiktoken.Encoding] = {}
# (path, size, mtime, inode) → problem or None: /healthz must not hash 5 MB on every probe.
_verified: dict[tuple[str, int, int, int], str | None] = {}


def bpe_directory() -> Path:
    return _directory


def use_bpe_directory(directory: Path | None) -> None:
    """Read the BPE files from ``directory`` (``None``: the shipped folder) from now on.
    For tests that need a damaged copy; the product always uses the shipped files."""
    global _directory
    with _lock:
        _directory = SHIPPED_DIR if directory is None else Path(directory)
        _encodings.clear()


def _source(name: str) -> EncodingSource:
    source = ENCODINGS.get(name)
    if source is None:
        raise TokenizerError(f"unknown encoding {name!r}; Tuneboard ships {', '.join(ENCODINGS)}")
    return source


def _read_verified(name: str, directory: Path) -> bytes:
    source = _source(name)
    path = directory / source.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TokenizerError(
            f"{name}: BPE file {source.file} cannot be read ({exc.strerror or exc})"
        ) from exc
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise TokenizerError(
            f"{name}: BPE file {source.file} is damaged or replaced (its sha256 is not the "
            "shipped file's); restore it from the Tuneboard release"
        )
    return data


def _parse_ranks(name: str, data: bytes) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    try:
        for line in data.splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise TokenizerError(f"{name}: BPE file is not in tiktoken's format ({exc})") from exc
    return ranks


def load_encoding(name: str, directory: Path) -> tiktoken.Encoding:
    """Build ``name`` from ``directory``, verifying its file first. Raises TokenizerError."""
    source = _source(name)
    ranks = _parse_ranks(name, _read_verified(name, directory))
    try:
        return tiktoken.Encoding(
            name=name,
            pat_str=source.pat_str,
            mergeable_ranks=ranks,
            special_tokens=dict(source.special_tokens),
        )
    except Exception as exc:  # tiktoken's Rust core raises plain ValueError/RuntimeError
        raise TokenizerError(f"{name}: {exc}") from exc


def get_encoding(name: str) -> tiktoken.Encoding:
    """The encoding ``name``, built once per process from the current BPE folder."""
    directory = _directory
    key = (name, directory)
    encoding = _encodings.get(key)
    if encoding is None:
        # Built outside the lock: two threads may both build it once; the lock only keeps
        # the cache and the folder switch consistent.
        encoding = load_encoding(name, directory)
        with _lock:
            if _directory == directory:
                _encodings[key] = encoding
    return encoding


def special_tokens(name: str) -> frozenset[str]:
    """The special-token texts of ``name`` (known without loading its BPE file)."""
    return frozenset(_source(name).special_tokens)


def check_files(directory: Path | None = None) -> dict[str, str | None]:
    """Each shipped encoding → None when its file is present and intact, else the problem."""
    folder = _directory if directory is None else directory
    out: dict[str, str | None] = {}
    for name, source in ENCODINGS.items():
        path = folder / source.file
        try:
            st = os.stat(path)
        except OSError as exc:
            out[name] = f"{name}: BPE file {source.file} cannot be read ({exc.strerror or exc})"
            continue
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        if key not in _verified:
            try:
                _read_verified(name, folder)
                _verified[key] = None
            except TokenizerError as exc:
                _verified[key] = str(exc)
        out[name] = _verified[key]
    return out


def token_counter(name: str) -> Callable[[str], int]:
    """``len(encode_ordinary(text))`` for encoding ``name`` without building the list of
    tokens: tiktoken's core writes them into a buffer (what its own ``encode_to_numpy`` uses),
    so no Python int is made per token — about a tenth of the time of counting long texts.
    The core's ``encode`` with no special token allowed encodes exactly as ``encode_ordinary``
    (special-token text as ordinary text; a property test holds them equal). Falls back to the
    list when the core has no such method (another tiktoken release)."""
    encoding = get_encoding(name)
    to_buffer = getattr(getattr(encoding, "_core_bpe", None), "encode_to_tiktoken_buffer", None)
    encode = encoding.encode_ordinary
    if to_buffer is None:
        return lambda text: len(encode(text))
    none_allowed: frozenset[str] = frozenset()

    def count(text: str) -> int:
        try:
            return memoryview(to_buffer(text, none_allowed)).nbytes >> 2
        except UnicodeEncodeError:  # lone surrogates: encode_ordinary's own repair
            return len(encode(text))

    return count
