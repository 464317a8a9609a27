"""The shared models move here from ``dashboard`` without touching their tables: the state is
created here and deleted there (dashboard 0005), the tables keep their names (``db_table``), and
the content types follow so permissions, group grants and admin log entries stay attached."""

from collections.abc import Callable
from typing import Any

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
            old = ContentType.objects.using(db).filter(app_label=old_label, model=model).first()
            if old is None:
                continue  # a fresh database: post_migrate creates the row after the migrations
            early = ContentType.objects.using(db).filter(app_label=app_label, model=model).first()
            if early is not None:
                merge_content_type(apps, db, keep=old, duplicate=early)
            old.app_label = app_label
            old.save(using=db, update_fields=["app_label"])

    return move


def merge_content_type(apps: Apps, db: str, *, keep: Any, duplicate: Any) -> None:
    # Any: historical models are built at run time; their rows have no static type.
    """Moves what hangs off ``duplicate`` onto ``keep`` and deletes ``duplicate``.

    Code of the new layout that runs before ``migrate`` can create the new content type early
    (ContentType.get_for_model, e.g. for an admin history entry). The old row wins: its id and
    its permissions' ids are what group and user grants and the admin history point at.
    """
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    kept = {p.codename: p for p in Permission.objects.using(db).filter(content_type=keep)}
    for perm in Permission.objects.using(db).filter(content_type=duplicate):
        target = kept.get(perm.codename)
        if target is None:
            perm.content_type = keep
            perm.save(using=db, update_fields=["content_type"])
            continue
        # Grants of the duplicate permission move to the kept one (a group's and a user's
        # permissions), unless the holder has that one already.
        user_label, user_model = settings.AUTH_USER_MODEL.split(".")
        grants = (
            (apps.get_model("auth", "Group")._meta.get_field("permissions"), "group"),
            (apps.get_model(user_label, user_model)._meta.get_field("user_permissions"), "user"),
        )
        for field, holder in grants:
            through = field.remote_field.through._default_manager.using(db)  # type: ignore[union-attr]
            holding = through.filter(permission=target).values_list(holder, flat=True)
            through.filter(permission=perm).exclude(**{f"{holder}__in": holding}).update(
                permission=target
            )
    # Everything else that points at a content type (admin history, generic relations).
    for rel in ContentType._meta.related_objects:
        if rel.related_model is Permission or not (rel.one_to_many or rel.one_to_one):
            continue
        rel.related_model._default_manager.using(db).filter(**{rel.field.name: duplicate}).update(
            **{rel.field.name: keep}
        )
    duplicate.delete(using=db)  # with its permissions whose grants now sit on the kept ones


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
