"""What a fine-tuning job create may ask of the provider: hyperparameter ranges and the suffix.

Shared by the launch rules (``jobs.services``) and the sandbox's request validation, so that
Tuneboard never sends what the sandbox (or OpenAI) would refuse. Sources: OpenAI's OpenAPI
description (``CreateFineTuningJobRequest`` and the method hyperparameter schemas) and
``docs/openai-fine-tuning-api.md`` §4.
"""

from __future__ import annotations

import re

N_EPOCHS = (1, 50)  # int
BATCH_SIZE = (1, 256)  # int
# Documented only as "number > 0". Taken literally, 1e308 overflowed the sandbox's simulation
# into NaN losses (its job list broke) and the denormal 5e-324 ended in 25 retries. The bound is
# the one the same API documents for its other multiplier (reinforcement's compute_multiplier,
# (0.00001, 10]), far wider on both sides than the 0.02–2 anyone uses.
LEARNING_RATE_MULTIPLIER = (0.00001, 10.0)  # both ends allowed
BETA_MAX = 2.0  # DPO's beta: (0, 2]

# "A string of up to 64 characters". It becomes a segment of the model id
# (ft:<base>:<org>:<suffix>:<id>), which travels in URL paths (/models/{model}); so only
# letters, digits, hyphens and underscores, as in every suffix OpenAI shows: no ':' (the
# separator), '/' or '..' (another path), spaces or anything that needs escaping.
SUFFIX_MAX_LENGTH = 64
SUFFIX_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def suffix_allowed(suffix: str) -> bool:
    return SUFFIX_PATTERN.fullmatch(suffix) is not None


def learning_rate_multiplier_allowed(value: float) -> bool:
    low, high = LEARNING_RATE_MULTIPLIER
    return low <= value <= high


def plain(number: float) -> str:
    """A bound as people write it: 0.00001, 10 (not 1e-05, 10.0)."""
    return f"{number:f}".rstrip("0").rstrip(".")
