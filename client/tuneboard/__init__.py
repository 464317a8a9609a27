"""Log self-hosted fine-tuning runs to Tuneboard.

    import tuneboard
    run = tuneboard.init(run="exp-42", name="lr 2e-5", base_model="my-base", total_steps=500)
    tuneboard.log({"train_loss": 1.23}, step=10)
    tuneboard.checkpoint(100, uri="s3://bucket/exp-42/checkpoint-100")
    tuneboard.finish()

or, with transformers, ``Trainer(..., callbacks=[tuneboard.TuneboardCallback()])``.
"""

from __future__ import annotations

from typing import Any

from tuneboard.run import Run, checkpoint, current, finish, init, upload_dataset
from tuneboard.run import log_metrics as log

__all__ = [
    "Run", "TuneboardCallback", "checkpoint", "current", "finish", "init", "log", "upload_dataset",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    # transformers is imported only by those who use the callback.
    if name == "TuneboardCallback":
        from tuneboard.callback import TuneboardCallback

        return TuneboardCallback
    raise AttributeError(name)
