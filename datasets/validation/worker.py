"""The body of a validation worker process (started by ``processes.Worker``).

Reads its settings, then (first line, block) tasks, from stdin; answers each with
("ok", BlockResult) or ("error", text) on stdout. Exits at EOF, that is when the parent closes
the pipe or dies.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys

from .encodings import adopt_tokens, bpe_directory, get_encoding, use_bpe_directory
from .parallel import BlockSettings, BlockValidation
from .tokens import RepeatCache


def main() -> None:
    # Ctrl-C reaches the whole process group; the parent decides when a worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the replies
    settings: BlockSettings
    settings, tokens = pickle.load(requests)  # noqa: S301 - from our parent
    if settings.bpe_directory != bpe_directory():
        use_bpe_directory(settings.bpe_directory)
    if tokens is not None:
        adopt_tokens(settings.encoding, tokens)
    get_encoding(settings.encoding)
    # Ready: until now the parent validated every block itself.
    pickle.dump(("ready", None), replies, protocol=pickle.HIGHEST_PROTOCOL)
    replies.flush()
    repeats = RepeatCache()  # one for every block this process validates
    while True:
        try:
            first_line, block = pickle.load(requests)  # noqa: S301 - from our parent
        except EOFError:
            # Every reply is written and flushed; skip the interpreter's teardown (freeing the
            # tokenizer's tables takes a while) so the parent, which waits for us, is not held.
            os._exit(0)
        try:
            reply: tuple[str, object] = (
                "ok",
                BlockValidation(settings, repeats).run_block(block, first_line),
            )
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
            replies.flush()
        except BrokenPipeError:
            os._exit(0)  # the parent is gone


if __name__ == "__main__":
    main()
