"""Access, Heartbeat, TaskProbe and AuditEntry now belong to ``core`` (core 0001 took over
their state and content types); their tables stay where they are."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0004_sharelink_evaluation"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Access"),
                migrations.DeleteModel(name="Heartbeat"),
                migrations.DeleteModel(name="TaskProbe"),
                migrations.DeleteModel(name="AuditEntry"),
            ]
        ),
    ]
