"""Seeds the base-model catalog.

The values are copied from ``datasets.validation.DEFAULT_MODELS`` as it stood when this
migration was written, not imported: a migration must give the same rows on every fresh
database forever, while the runtime tuple may change later (a later change is a new
migration or an edit in the admin). tests/datasets/test_models.py checks the two agree.
"""

from datetime import date
from decimal import Decimal

from django.db import migrations

FIELDS = (
    "id", "provider_kind", "encoding", "training_context", "inference_context",
    "training_price_per_1m", "input_price_per_1m", "output_price_per_1m",
    "supports_vision", "supports_dpo", "legacy_completion", "deprecated_on", "shutdown_on",
)  # fmt: skip

ROWS = (
    ("gpt-4.1-2025-04-14", "openai", "o200k_base", 65536, 1047576, "25", "3.00", "12.00", False, True, False, None, None),
    ("gpt-4.1-mini-2025-04-14", "openai", "o200k_base", 65536, 1047576, "5", "0.80", "3.20", False, True, False, None, None),
    ("gpt-4.1-nano-2025-04-14", "openai", "o200k_base", 65536, 1047576, "1.50", "0.20", "0.80", False, True, False, None, None),
    ("gpt-4o-2024-08-06", "openai", "o200k_base", 65536, 128000, "25", "3.75", "15.00", True, True, False, None, None),
    ("gpt-4o-mini-2024-07-18", "openai", "o200k_base", 65536, 128000, "3", "0.30", "1.20", False, True, False, None, None),
    ("gpt-4-0613", "openai", "cl100k_base", 8192, 8192, None, None, None, False, False, False, None, None),
    ("gpt-3.5-turbo-0125", "openai", "cl100k_base", 16385, 16385, "8", "3.00", "6.00", False, False, False, None, None),
    ("gpt-3.5-turbo-1106", "openai", "cl100k_base", 16385, 16385, "8", "3.00", "6.00", False, False, False, None, None),
    ("gpt-3.5-turbo-0613", "openai", "cl100k_base", 4096, 4096, "8", "3.00", "6.00", False, False, False, "2023-11-06", "2024-09-13"),
    ("babbage-002", "openai", "cl100k_base", 16384, 16384, "0.40", "1.60", "1.60", False, False, True, None, None),
    ("davinci-002", "openai", "cl100k_base", 16384, 16384, "6", "12", "12", False, False, True, None, None),
)  # fmt: skip

_DECIMALS = {"training_price_per_1m", "input_price_per_1m", "output_price_per_1m"}
_DATES = {"deprecated_on", "shutdown_on"}


def _value(field, raw):
    if raw is None:
        return None
    if field in _DECIMALS:
        return Decimal(raw)
    if field in _DATES:
        return date.fromisoformat(raw)
    return raw


def seed(apps, schema_editor):
    BaseModel = apps.get_model("datasets", "BaseModel")
    for row in ROWS:
        values = {field: _value(field, raw) for field, raw in zip(FIELDS, row, strict=True)}
        model_id = values.pop("id")
        # Never overwrite a row an admin has already edited.
        BaseModel.objects.get_or_create(id=model_id, defaults=values)


def unseed(apps, schema_editor):
    BaseModel = apps.get_model("datasets", "BaseModel")
    BaseModel.objects.filter(id__in=[row[0] for row in ROWS]).delete()


class Migration(migrations.Migration):
    dependencies = [("datasets", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
