"""The shared models move here from ``dashboard`` without touching their tables: the state is
created here and deleted there (dashboard 0005), the tables keep their names (``db_table``), and
the content types follow so permissions, group grants and admin log entries stay attached."""

from collections.abc import Callable

import django.db.models.deletion
from django.apps.registry import Apps
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

MOVED = ("access", "heartbeat", "taskprobe", "auditentry")


def content_types_to(
    app_label: str, old_label: str
) -> Callable[[Apps, BaseDatabaseSchemaEditor], None]:
    def move(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        ContentType = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        for model in MOVED:
            if ContentType.objects.using(db).filter(app_label=app_label, model=model).exists():
                continue  # created by a post_migrate of the new layout: keep the existing one
            ContentType.objects.using(db).filter(app_label=old_label, model=model).update(
                app_label=app_label
            )

    return move


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("dashboard", "0004_sharelink_evaluation"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    state_operations = [
        migrations.CreateModel(
            name="Access",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
            ],
            options={
                "db_table": "dashboard_access",
                "permissions": [
                    ("read_all", "Can read runs, datasets and evaluations"),
                    (
                        "member_actions",
                        "Can create datasets, launch and control jobs, create share links",
                    ),
                ],
                "managed": False,
                "default_permissions": (),
            },
        ),
        migrations.CreateModel(
            name="Heartbeat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50, unique=True)),
                ("last_seen", models.DateTimeField()),
                ("detail", models.CharField(blank=True, max_length=200)),
            ],
            options={"db_table": "dashboard_heartbeat"},
        ),
        migrations.CreateModel(
            name="TaskProbe",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("requested_at", models.DateTimeField(auto_now_add=True)),
                ("completed_at", models.DateTimeField(blank=True, null=True)),
                ("worker", models.CharField(blank=True, max_length=200)),
                (
                    "requested_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"db_table": "dashboard_taskprobe", "ordering": ["-requested_at"]},
        ),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("action", models.CharField(db_index=True, max_length=40)),
                ("object_type", models.CharField(max_length=40)),
                ("object_id", models.CharField(max_length=64)),
                ("object_repr", models.CharField(blank=True, max_length=200)),
                ("detail", models.JSONField(blank=True, default=dict)),
                ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "dashboard_auditentry",
                "verbose_name_plural": "audit entries",
                "ordering": ["-at"],
                "indexes": [
                    models.Index(
                        fields=["object_type", "object_id"], name="dashboard_a_object__918ec1_idx"
                    )
                ],
            },
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=state_operations),
        migrations.RunPython(
            content_types_to("core", "dashboard"), content_types_to("dashboard", "core")
        ),
    ]
