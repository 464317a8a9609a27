"""The training parameters each adapter declares: name, type, range, default, unit and
meaning, and whether the provider can choose the value itself ("auto").

Pages read these declarations instead of knowing providers: a column or a table row shows a
parameter under its own label and unit, so an OpenAI learning-rate multiplier and Together's
absolute learning rate never share a column as if they were one thing.
"""

from __future__ import annotations

from dataclasses import dataclass


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
              "Examples per step; “max” is the largest the model allows.", low=1, high=256, auto=True),
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
    Parameter("lora_r", "LoRA rank", "int", "Rank of the LoRA adapters.", low=1, high=64, default=8),
    Parameter("lora_alpha", "LoRA α", "int", "Scale of the LoRA update (often 2 × rank).",
              low=1, high=256, default=16),
    Parameter("lora_dropout", "LoRA dropout", "float", "Dropout on the adapters.",
              low=0.0, high=1.0, default=0.0),
    Parameter("train_on_inputs", "Train on inputs", "choice",
              "Whether the prompt's tokens count in the loss.", auto=True,
              choices=("auto", "true", "false"), methods=("supervised",)),
    Parameter("dpo_beta", "β (DPO)", "float", "How far DPO may move from the reference model.",
              low=0.0, high=10.0, default=0.1, methods=("dpo",)),
)  # fmt: skip


def by_name(parameters: tuple[Parameter, ...]) -> dict[str, Parameter]:
    return {p.name: p for p in parameters}
