"""The training parameters each adapter declares: name, type, range, default, unit and
meaning, and whether the provider can choose the value itself ("auto").

Pages read these declarations instead of knowing providers: a column or a table row shows a
parameter under its own label and unit, so an OpenAI learning-rate multiplier and Together's
absolute learning rate never share a column as if they were one thing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Parameter:
    name: str  # the key in a job's hyperparameters
    label: str
    kind: str  # "int" | "float" | "choice" | "bool"
    help: str
    unit: str = ""  # shown after the value: "×" for a multiplier, "" for plain numbers
    low: float | None = None
    high: float | None = None
    default: int | float | str | None = None  # None: the provider chooses ("auto")
    auto: bool = False
    choices: tuple[str, ...] = ()
    methods: tuple[str, ...] = ("supervised", "dpo")
    auto_text: str = "auto"  # what the provider's own choice is called on pages
    # Applies only when another parameter has this value (LoRA settings: training_type=lora).
    only_when: tuple[str, str] | None = None


OPENAI: tuple[Parameter, ...] = (
    Parameter("n_epochs", "Epochs", "int", "Passes over the training data.", low=1, high=50, auto=True),
    Parameter("batch_size", "Batch size", "int", "Examples per training step.", low=1, high=256, auto=True),
    Parameter(
        "learning_rate_multiplier", "LR multiplier", "float",
        "A multiplier of the provider's own base learning rate (not a learning rate).",
        unit="×", low=0.0, high=10.0, auto=True,
    ),
    Parameter("beta", "β (DPO)", "float", "How far DPO may move from the reference model.",
              low=0.0, high=2.0, auto=True, methods=("dpo",)),
)  # fmt: skip

TOGETHER: tuple[Parameter, ...] = (
    Parameter("n_epochs", "Epochs", "int", "Passes over the training data.", low=1, high=20, default=1),
    Parameter("batch_size", "Batch size", "int",
              "Examples per step; “max” is the largest the model allows.", low=1, high=256, auto=True,
              auto_text="the largest the model allows"),
    Parameter("learning_rate", "Learning rate", "float", "The absolute peak learning rate.",
              low=1e-8, high=1.0, default=1e-5),
    Parameter("lr_scheduler", "LR schedule", "choice", "How the rate decays after warm-up.",
              default="linear", choices=("linear", "cosine")),
    Parameter("min_lr_ratio", "Final LR ratio", "float",
              "The rate at the end, as a fraction of the peak.", low=0.0, high=1.0, default=0.0),
    Parameter("warmup_ratio", "Warm-up", "float", "Fraction of steps spent warming up.",
              low=0.0, high=1.0, default=0.0),
    Parameter("weight_decay", "Weight decay", "float", "L2 penalty on the weights.",
              low=0.0, high=1.0, default=0.0),
    Parameter("max_grad_norm", "Max grad norm", "float", "Gradient clipping; 0 turns it off.",
              low=0.0, high=100.0, default=1.0),
    Parameter("n_checkpoints", "Checkpoints", "int", "Checkpoints saved during training.",
              low=1, high=200, default=1),
    Parameter("n_evals", "Evaluations", "int", "Evaluations on the validation file.",
              low=0, high=100, default=0),
    Parameter("training_type", "Training", "choice", "LoRA adapters or every weight.",
              default="lora", choices=("lora", "full")),
    Parameter("lora_r", "LoRA rank", "int", "Rank of the LoRA adapters.", low=1, high=64,
              default=8, only_when=("training_type", "lora")),
    Parameter("lora_alpha", "LoRA α", "int", "Scale of the LoRA update (often 2 × rank).",
              low=1, high=256, default=16, only_when=("training_type", "lora")),
    Parameter("lora_dropout", "LoRA dropout", "float", "Dropout on the adapters.",
              low=0.0, high=1.0, default=0.0, only_when=("training_type", "lora")),
    Parameter("train_on_inputs", "Train on inputs", "choice",
              "Whether the prompt's tokens count in the loss.", auto=True,
              choices=("auto", "true", "false"), methods=("supervised",)),
    Parameter("dpo_beta", "β (DPO)", "float", "How far DPO may move from the reference model.",
              low=0.0, high=10.0, default=0.1, methods=("dpo",)),
)  # fmt: skip


def applies(
    parameter: Parameter,
    *,
    method: str,
    values: dict[str, Any],
    declared: tuple[Parameter, ...],
) -> bool:
    """Whether ``parameter`` applies to a launch with ``method`` and these values (a value
    left out is the declared default of its parameter)."""
    if method not in parameter.methods:
        return False
    if parameter.only_when is None:
        return True
    key, wanted = parameter.only_when
    value = values.get(key)
    if value in (None, ""):
        value = next((p.default for p in declared if p.name == key), None)
    return str(value) == wanted


def by_name(parameters: tuple[Parameter, ...]) -> dict[str, Parameter]:
    return {p.name: p for p in parameters}


@dataclass(frozen=True)
class Traits:
    """What an adapter declares about its provider, read by pages and launch rules instead of
    the provider's name."""

    family: str  # whose model catalog and dataset rules apply ("openai", "together")
    label: str  # the family's name on pages
    parameters: tuple[Parameter, ...]
    refreshes_catalog: bool  # the provider lists its fine-tunable models and their limits
    quotes_price: bool  # the provider estimates a job's price before it is created
    suffix_max: int  # the longest suffix a user may choose (room is kept for our marker)
    wandb_integration: bool  # W&B reporting set up at the provider (no W&B key per job)
    exact_token_counts: bool  # our tokenizer is the models' own (else counts are estimates)
    continues_fine_tuned: bool  # a launch may train a model fine-tuned earlier on the connection
    # Tuneboard calls the provider (launch, sync, controls); False: the runs report themselves
    # through Tuneboard's API (self-hosted training), and nothing is asked of a provider.
    hosted: bool = True
    pauses: bool = True  # the provider can pause a running job and resume it later
    # Jobs an account may have under way at once (a sweep's default concurrency). Neither
    # OpenAI's nor Together's API description states one; three is the default concurrency
    # commonly reported for OpenAI organisations (more wait in its queue), and a cautious
    # number for Together. A sweep sets its own.
    active_jobs: int = 3


def bounded(parameter: Parameter, **changes: Any) -> Parameter:
    """``parameter`` with the limits (or default) of one model; unknown values keep the
    declaration's."""
    return replace(parameter, **{k: v for k, v in changes.items() if v is not None})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def together_for_model(
    limits: dict[str, Any], *, method: str, training_type: str
) -> tuple[Parameter, ...]:
    """Together's parameters within one model's limits (``/fine-tunes/models/limits``):
    epochs, evaluations and checkpoints, the learning-rate range, the batch sizes of LoRA or
    full training (smaller for DPO) and the LoRA rank."""
    if not limits:
        return TOGETHER
    training = limits.get("full_training" if training_type == "full" else "lora_training")
    training = training if isinstance(training, dict) else {}
    max_batch = training.get("max_batch_size_dpo" if method == "dpo" else "max_batch_size")
    changes: dict[str, dict[str, Any]] = {
        "n_epochs": {"high": _number(limits.get("max_num_epochs"))},
        "n_evals": {"high": _number(limits.get("max_num_evals"))},
        "n_checkpoints": {"high": _number(limits.get("max_num_checkpoints"))},
        "learning_rate": {
            "low": _number(limits.get("min_learning_rate")),
            "high": _number(limits.get("max_learning_rate")),
        },
        "batch_size": {
            "low": _number(training.get("min_batch_size")),
            "high": _number(max_batch) or _number(training.get("max_batch_size")),
        },
        "lora_r": {
            "high": _number(training.get("max_rank")),
            "default": _number(training.get("default_rank")),
        },
    }
    return tuple(bounded(p, **changes.get(p.name, {})) for p in TOGETHER)
