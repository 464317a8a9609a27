"""``TuneboardCallback``: transformers' ``Trainer`` (and TRL's trainers, which build on it)
reporting to Tuneboard. Needs transformers; the rest of the client does not."""

from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from tuneboard.run import Run, init

# transformers' log keys → Tuneboard's series.
SERIES = {
    "loss": "train_loss",
    "eval_loss": "full_valid_loss",
    "mean_token_accuracy": "train_accuracy",
    "eval_mean_token_accuracy": "full_valid_accuracy",
    "eval_accuracy": "full_valid_accuracy",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    "epoch": "epoch",
    "num_input_tokens_seen": "tokens_seen",
    "num_tokens": "tokens_seen",
}
# Timing figures, not training metrics.
SKIPPED = ("_runtime", "_per_second", "total_flos")


def _series(logs: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if key.endswith(SKIPPED) or key.startswith("train_"):  # train_runtime, train_loss summary
            continue
        out[SERIES.get(key, key)] = float(value)
    return out


class TuneboardCallback(TrainerCallback):
    """Creates the run when training begins (or reports into ``run``), then sends every log
    (train and eval loss, learning rate, grad norm, epoch, tokens seen), every saved checkpoint
    with its step and latest metrics, the total steps, and the final status. When Tuneboard
    asks the run to stop, the trainer saves and ends cleanly (in a distributed training only
    the main process reports, and hears "stop")."""

    def __init__(self, run: Run | None = None, **init_kwargs: Any) -> None:
        self.run = run
        self.init_kwargs = init_kwargs
        self.latest: dict[str, float] = {}

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero:
            return  # one report per run: from the main process of a distributed training
        total = state.max_steps if state.max_steps and state.max_steps > 0 else None
        if self.run is None:
            options = dict(self.init_kwargs)
            options.setdefault("run", os.environ.get("TUNEBOARD_RUN") or None)
            options.setdefault("name", args.run_name or os.path.basename(args.output_dir or ""))
            options.setdefault("base_model", _base_model(model))
            options.setdefault("hyperparameters", args.to_sanitized_dict())
            options.setdefault("total_steps", total)
            options.setdefault("epochs", args.num_train_epochs)
            self.run = init(**options)
        self.run.status("running", total_steps=total)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.run is None or not logs:
            return
        values = _series(logs)
        if state.num_input_tokens_seen and "tokens_seen" not in values:
            values["tokens_seen"] = float(state.num_input_tokens_seen)
        if values:
            self.latest.update(values)
            self.run.log(values, step=state.global_step)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.run is None:
            return
        path = os.path.abspath(
            os.path.join(args.output_dir or ".", f"checkpoint-{state.global_step}")
        )
        metrics = {k: v for k, v in self.latest.items() if k in ("train_loss", "full_valid_loss",
                                                                 "full_valid_accuracy", "epoch")}  # fmt: skip
        self.run.checkpoint(state.global_step, uri=path, metrics=metrics)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.run is not None and self.run.should_stop:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.run is None:
            return
        stopped = self.run.should_stop and state.global_step < (state.max_steps or 0)
        self.run.finish("cancelled" if stopped else "succeeded",
                        "Stopped at Tuneboard's request." if stopped else "")  # fmt: skip


def _base_model(model: Any) -> str:
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", "") or getattr(config, "model_type", "")
    return str(name or type(model).__name__)
