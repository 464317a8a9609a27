"""Base models that can be fine-tuned, with the limits and prices the validator needs.

Sources and assumptions (checked against OpenAI's fine-tuning guide, vision fine-tuning guide,
pricing and deprecations pages as they stood in 2025; prices are USD per 1M tokens and change,
so the database table seeded from ``DEFAULT_MODELS`` is the place to keep them current):

* Training context ("training examples context length" in the guide): 65,536 for the gpt-4o
  and gpt-4.1 families, 16,385 for gpt-3.5-turbo-0125/1106, 4,096 for gpt-3.5-turbo-0613,
  8,192 for gpt-4-0613, 16,384 for babbage-002/davinci-002. The guide does not list a separate
  training limit for gpt-4.1; 65,536 is assumed like gpt-4o.
* Inference context: 128,000 for gpt-4o/gpt-4o-mini, 1,047,576 for the gpt-4.1 family, and the
  training value for the older models.
* Prices (training / fine-tuned input / fine-tuned output): gpt-4.1 25 / 3.00 / 12.00;
  gpt-4.1-mini 5 / 0.80 / 3.20; gpt-4.1-nano 1.50 / 0.20 / 0.80; gpt-4o 25 / 3.75 / 15.00;
  gpt-4o-mini 3 / 0.30 / 1.20; gpt-3.5-turbo 8 / 3.00 / 6.00; davinci-002 6 / 12 / 12;
  babbage-002 0.40 / 1.60 / 1.60. gpt-4-0613 fine-tuning was an experimental, by-request
  programme without a published list price, so its prices are None (cost shown as unknown).
* Vision fine-tuning: OpenAI's vision guide names gpt-4o-2024-08-06 only (Azure also lists
  gpt-4.1; we follow OpenAI). DPO: gpt-4o, gpt-4o-mini and the gpt-4.1 family.
* babbage-002/davinci-002 train on legacy prompt/completion examples only.
* Dates: gpt-3.5-turbo-0613 was deprecated on 2023-11-06 and shut down on 2024-09-13 (the
  base snapshot's dates; fine-tuned models follow their base). No other model here had an
  announced shutdown when this table was written, so those dates are None.
* Encodings: o200k_base for the gpt-4o and gpt-4.1 families, cl100k_base for the rest, as in
  ``tiktoken.encoding_name_for_model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

O200K = "o200k_base"
CL100K = "cl100k_base"

# Token counts of a report made without a chosen model use the encoding of current models.
DEFAULT_ENCODING = O200K


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    provider_kind: str
    encoding: str
    training_context: int
    inference_context: int
    training_price_per_1m: Decimal | None
    input_price_per_1m: Decimal | None
    output_price_per_1m: Decimal | None
    supports_vision: bool = False
    supports_dpo: bool = False
    # True for models that train on {"prompt", "completion"} lines instead of chat messages.
    legacy_completion: bool = False
    deprecated_on: date | None = None
    shutdown_on: date | None = None


def _openai(
    model_id: str,
    encoding: str,
    training_context: int,
    inference_context: int,
    prices: tuple[str, str, str] | None,
    *,
    supports_vision: bool = False,
    supports_dpo: bool = False,
    legacy_completion: bool = False,
    deprecated_on: date | None = None,
    shutdown_on: date | None = None,
) -> ModelSpec:
    train, inp, out = (Decimal(p) for p in prices) if prices else (None, None, None)
    return ModelSpec(
        id=model_id,
        provider_kind="openai",
        encoding=encoding,
        training_context=training_context,
        inference_context=inference_context,
        training_price_per_1m=train,
        input_price_per_1m=inp,
        output_price_per_1m=out,
        supports_vision=supports_vision,
        supports_dpo=supports_dpo,
        legacy_completion=legacy_completion,
        deprecated_on=deprecated_on,
        shutdown_on=shutdown_on,
    )


_GPT41_CONTEXT = 1_047_576

DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    _openai("gpt-4.1-2025-04-14", O200K, 65_536, _GPT41_CONTEXT, ("25", "3.00", "12.00"),
            supports_dpo=True),
    _openai("gpt-4.1-mini-2025-04-14", O200K, 65_536, _GPT41_CONTEXT, ("5", "0.80", "3.20"),
            supports_dpo=True),
    _openai("gpt-4.1-nano-2025-04-14", O200K, 65_536, _GPT41_CONTEXT, ("1.50", "0.20", "0.80"),
            supports_dpo=True),
    _openai("gpt-4o-2024-08-06", O200K, 65_536, 128_000, ("25", "3.75", "15.00"),
            supports_vision=True, supports_dpo=True),
    _openai("gpt-4o-mini-2024-07-18", O200K, 65_536, 128_000, ("3", "0.30", "1.20"),
            supports_dpo=True),
    _openai("gpt-4-0613", CL100K, 8_192, 8_192, None),
    _openai("gpt-3.5-turbo-0125", CL100K, 16_385, 16_385, ("8", "3.00", "6.00")),
    _openai("gpt-3.5-turbo-1106", CL100K, 16_385, 16_385, ("8", "3.00", "6.00")),
    _openai("gpt-3.5-turbo-0613", CL100K, 4_096, 4_096, ("8", "3.00", "6.00"),
            deprecated_on=date(2023, 11, 6), shutdown_on=date(2024, 9, 13)),
    _openai("babbage-002", CL100K, 16_384, 16_384, ("0.40", "1.60", "1.60"),
            legacy_completion=True),
    _openai("davinci-002", CL100K, 16_384, 16_384, ("6", "12", "12"),
            legacy_completion=True),
)  # fmt: skip

_BY_ID = {m.id: m for m in DEFAULT_MODELS}


def get_default_model(model_id: str) -> ModelSpec | None:
    return _BY_ID.get(model_id)
