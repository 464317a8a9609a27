"""Dataset validation engine for fine-tuning files (pure Python, no Django).

Usage (one streaming pass; the report is JSON-ready for a JSONField)::

>>> from datasets.validation import validate_stream, get_default_model
>>> with open(path, "rb") as fh:  # doctest: +SKIP
...     report = validate_stream(fh, model=get_default_model("gpt-4o-mini-2024-07-18"))
>>> report.is_valid, report.to_dict(), report.first_error()  # doctest: +SKIP
"""

from .categories import CATEGORIES, CategoryInfo, Severity
from .encodings import TokenizerError
from .estimates import TrainingEstimate, estimate_hyperparameters, estimate_training_cost
from .findings import CategoryFindings, Finding
from .models import DEFAULT_MODELS, ModelSpec, get_default_model
from .parallel import validate_stream
from .report import (
    EncodingMismatchError,
    LargeExample,
    Report,
    Sample,
    TokenStats,
    can_recompute,
    recompute_for_model,
)
from .stats import Distribution

__all__ = [
    "CATEGORIES",
    "DEFAULT_MODELS",
    "CategoryFindings",
    "CategoryInfo",
    "Distribution",
    "EncodingMismatchError",
    "Finding",
    "LargeExample",
    "ModelSpec",
    "Report",
    "Sample",
    "Severity",
    "TokenStats",
    "TokenizerError",
    "TrainingEstimate",
    "can_recompute",
    "estimate_hyperparameters",
    "estimate_training_cost",
    "get_default_model",
    "recompute_for_model",
    "validate_stream",
]
