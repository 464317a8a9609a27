"""What a validation worker process does (``processes.Worker`` forks it): validate blocks.

Reads (first line, block) tasks from ``tasks``; answers each with ("ok", BlockResult) or
("error", text) on ``replies``. Returns at EOF, that is when the parent closes the pipe or
dies.
"""

from __future__ import annotations

import pickle
from typing import BinaryIO

from .blocks import BlockSettings, BlockValidation
from .tokens import RepeatCache


def serve(settings: BlockSettings, tasks: BinaryIO, replies: BinaryIO) -> None:
    repeats = RepeatCache()  # one for every block this process validates
    while True:
        try:
            first_line, block = pickle.load(tasks)  # noqa: S301 - from our parent
        except EOFError:
            return
        try:
            reply: tuple[str, object] = (
                "ok",
                BlockValidation(settings, repeats).run_block(block, first_line),
            )
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()
