"""Dataset.validity: what each rule set ("provider family") makes of a dataset, and the
"text" format (Together AI's generic text data).

Datasets validated before this migration were checked against OpenAI's rules only, and their
status said exactly that; their OpenAI entry is filled in from status and format, with the
methods copied from ``datasets.validation.rulesets.OPENAI`` as it stood when this was
written (a migration must give the same rows forever, so it is not imported). Other families
stay missing: the dataset page and ``selectors.dataset_valid_for`` say to validate again.
"""

from django.db import migrations, models

OPENAI_METHODS = {
    "chat": ["supervised"],
    "chat_tools": ["supervised"],
    "vision": ["supervised"],
    "legacy_completion": ["supervised"],
    "dpo": ["dpo"],
}


def backfill(apps, schema_editor):
    Dataset = apps.get_model("datasets", "Dataset")
    rows = Dataset.objects.filter(status__in=("valid", "invalid"), report__isnull=False)
    for pk, status, fmt, errors in rows.values_list(
        "pk", "status", "format", "report__error_count"
    ).iterator(chunk_size=500):
        valid = status == "valid"
        n = errors if isinstance(errors, int) else 0
        entry = {
            "valid": valid,
            "format": fmt or "unknown",
            "methods": OPENAI_METHODS.get(fmt, []) if valid else [],
            "reason": ""
            if valid
            else f"{n:,} error{'s' if n != 1 else ''}; the dataset page lists them",
        }
        Dataset.objects.filter(pk=pk).update(validity={"openai": entry})


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0003_dataset_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="validity",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="dataset",
            name="format",
            field=models.CharField(
                blank=True,
                choices=[
                    ("chat", "Chat"),
                    ("chat_tools", "Chat with tools"),
                    ("vision", "Vision"),
                    ("dpo", "Preference (DPO)"),
                    ("legacy_completion", "Legacy prompt/completion"),
                    ("text", "Text"),
                    ("mixed", "Mixed"),
                    ("unknown", "Unknown"),
                ],
                max_length=20,
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
