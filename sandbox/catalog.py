"""Base models the sandbox serves, with OpenAI's alias normalisation (gpt-4o-mini →
gpt-4o-mini-2024-07-18) and which of them accept fine-tuning and DPO."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BaseModelInfo:
    id: str
    created: int
    fine_tunable: bool = True
    dpo: bool = False
    shutdown_date: str | None = None


BASE_MODELS: tuple[BaseModelInfo, ...] = (
    BaseModelInfo("gpt-4o-2024-08-06", 1722814719, dpo=True),
    BaseModelInfo("gpt-4o-mini-2024-07-18", 1721172717, dpo=True),
    BaseModelInfo("gpt-4.1-2025-04-14", 1744316542, dpo=True),
    BaseModelInfo("gpt-4.1-mini-2025-04-14", 1744318173, dpo=True),
    BaseModelInfo("gpt-4.1-nano-2025-04-14", 1744321025, dpo=True),
    BaseModelInfo("gpt-4-0613", 1686588896),
    BaseModelInfo("gpt-3.5-turbo-0125", 1706048358),
    BaseModelInfo("gpt-3.5-turbo-1106", 1698959748),
    BaseModelInfo("gpt-3.5-turbo-0613", 1686587434, shutdown_date="2024-09-13"),
    BaseModelInfo("babbage-002", 1692634615),
    BaseModelInfo("davinci-002", 1692634301),
)
ALIASES = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "gpt-4": "gpt-4-0613",
}
_BY_ID = {model.id: model for model in BASE_MODELS}


def base_model(name: str) -> BaseModelInfo | None:
    return _BY_ID.get(ALIASES.get(name, name))


def base_of(model_name: str) -> str:
    """`ft:<base>:org:suffix:id[:ckpt-step-N]` → `<base>`; base names map to themselves."""
    if model_name.startswith("ft:"):
        return model_name.split(":")[1]
    return ALIASES.get(model_name, model_name)
