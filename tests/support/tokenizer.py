"""A damaged copy of the shipped BPE files, read by the tokenizer loader for one test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from datasets.validation import encodings


@contextmanager
def damaged_bpe(folder: Path, name: str = "o200k_base") -> Iterator[Path]:
    """Copies the shipped folder into ``folder``, flips one bit of ``name``'s file (it still
    parses, so only the sha256 check can tell) and loads encodings from there until exit."""
    shutil.copytree(encodings.SHIPPED_DIR, folder)
    path = folder / encodings.ENCODINGS[name].file
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    encodings.use_bpe_directory(folder)
    try:
        yield path
    finally:
        encodings.use_bpe_directory(None)
