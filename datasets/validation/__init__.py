"""Dataset validation engine for fine-tuning files (pure Python, no Django).

Usage (one streaming pass; the report is JSON-ready for a JSONField)::

>>> from datasets.validation import validate_stream, get_default_model
>>> with open(path, "rb") as fh:  # doctest: +SKIP
...     report = validate_stream(fh, model=get_default_model("gpt-4o-mini-2024-07-18"))
>>> report.is_valid, report.to_dict(), report.first_error()  # doctest: +SKIP

``report.is_valid`` and ``report.findings`` are OpenAI's rules (the primary rule set);
``report.verdicts()`` says what every rule set (``RULE_SETS``: OpenAI, Together AI) makes of
the file, and ``report.for_family(name)`` is the report as one of them sees it.
"""

from .categories import CATEGORIES, CategoryInfo, Severity
from .encodings import TokenizerError
from .estimates import TrainingEstimate, estimate_hyperparameters, estimate_training_cost
from .findings import CategoryFindings, Finding
from .models import DEFAULT_MODELS, ModelSpec, get_default_model
from .parallel import validate_stream
from .report import (
    EncodingMismatchError,
    FamilyPart,
    LargeExample,
    Report,
    Sample,
    TokenStats,
    Verdict,
    can_recompute,
    recompute_for_model,
)
from .rulesets import FORMAT_LABELS, METHOD_LABELS, PRIMARY, RULE_SETS, RuleSet, rule_set
from .stats import Distribution

__all__ = [
    "CATEGORIES",
    "DEFAULT_MODELS",
    "FORMAT_LABELS",
    "METHOD_LABELS",
    "PRIMARY",
    "RULE_SETS",
    "CategoryFindings",
    "CategoryInfo",
    "Distribution",
    "EncodingMismatchError",
    "FamilyPart",
    "Finding",
    "LargeExample",
    "ModelSpec",
    "Report",
    "RuleSet",
    "Sample",
    "Severity",
    "TokenStats",
    "TokenizerError",
    "TrainingEstimate",
    "Verdict",
    "can_recompute",
    "estimate_hyperparameters",
    "estimate_training_cost",
    "get_default_model",
    "recompute_for_model",
    "rule_set",
    "validate_stream",
]
