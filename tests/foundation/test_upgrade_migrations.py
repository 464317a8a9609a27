"""Existing installations upgrade with ``migrate`` and lose nothing.

The database is taken back to the layout before the shared models moved to ``core`` (core
unapplied, dashboard at 0004), every model of every project app gets a row through the
historical models of that state, and the migrations then run forward (and back again): every
table must hold the same rows, the moved models must read them through ``core``, and the
content types, permissions, group grants and admin history must follow the move.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor

PROJECT_APPS = ("core", "dashboard", "datasets", "jobs", "evals", "sandbox")
# The models that moved, and the last dashboard migration before the move.
MOVED = ("access", "heartbeat", "taskprobe", "auditentry")
DASHBOARD_BEFORE_MOVE = ("dashboard", "0004_sharelink_evaluation")
# Unmanaged models have no table to fill; Access holds only the role permissions, which are
# checked through its content type below.
UNMANAGED = {"dashboard.access"}
# Tables that migrations after the move create: new features, not part of the old layout.
ADDED_AFTER_MOVE = {"dashboard_runlistpreference", "core_apitoken"}
# Derived tables a later migration replaced: RunCurve's cached fit diagnoses live on in
# RunDiagnosis (its reduced curves are kept from the metric rows by jobs.MetricCurve); a
# rollback starts the old cache empty, to be recomputed on first view.
REPLACED_CACHES = {"dashboard_runcurve": "dashboard_rundiagnosis"}
# Nullable columns left empty: a check constraint allows only one of them (a notification is
# about a job or about a sweep).
LEFT_NULL = {"jobs.notification": {"sweep"}}

Target = tuple[str, str | None]
Fingerprint = tuple[tuple[str, ...], list[tuple[Any, ...]]]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


# --- migration targets --------------------------------------------------------------------


def current_targets(executor: MigrationExecutor) -> list[Target]:
    leaves = sorted(executor.loader.graph.leaf_nodes())
    apps_with_leaves = [app for app, _ in leaves]
    # Two leaves in one app would be an unmerged migration conflict: migrate refuses those.
    assert len(apps_with_leaves) == len(set(apps_with_leaves)), leaves
    return leaves


def old_targets(executor: MigrationExecutor) -> list[Target]:
    """Every app at its leaf except core (not installed yet) and dashboard (before the move)."""
    targets: list[Target] = []
    for app, name in current_targets(executor):
        if app == "core":
            targets.append(("core", None))
        elif app == "dashboard":
            targets.append(DASHBOARD_BEFORE_MOVE)
        else:
            targets.append((app, name))
    return targets


def migrate_to(targets: list[Target]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    # A fresh executor reads the applied migrations again, so callers see the new state.
    return MigrationExecutor(connection)


def state_apps(executor: MigrationExecutor, targets: list[Target]) -> Apps:
    # project_state() cannot place an app "at zero"; an app left out is simply absent.
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


@pytest.fixture
def executor() -> Iterator[MigrationExecutor]:
    """An executor on the test database, which is at the latest migrations again afterwards."""
    executor = MigrationExecutor(connection)
    latest = current_targets(executor)
    try:
        yield executor
    finally:
        executor = migrate_to(latest)
        assert executor.migration_plan(latest) == []
        ContentType.objects.clear_cache()


def roll_back_to_old_layout(executor: MigrationExecutor) -> tuple[MigrationExecutor, Apps]:
    targets = old_targets(executor)
    plan = executor.migration_plan(targets)
    # Rolling back must undo the move and nothing else: the other apps keep their tables.
    undone = {migration.app_label for migration, backwards in plan if backwards}
    assert undone == {"core", "dashboard"} and all(backwards for _, backwards in plan), plan
    executor = migrate_to(targets)
    assert executor.migration_plan(targets) == []
    return executor, state_apps(executor, targets)


# --- filling every model ------------------------------------------------------------------


def _token(label: str, field: models.Field) -> str:
    # Hex digits: distinct per field, and valid where a column demands a sha256 (datasets).
    return hashlib.sha256(f"{label}.{field.name}".encode()).hexdigest()


def field_value(label: str, field: models.Field) -> Any:
    """A value every column accepts, including the check constraints of the current models."""
    if field.choices:
        return field.flatchoices[0][0]
    token = _token(label, field)
    if isinstance(field, ArrayField):
        return [field_value(label, field.base_field)]
    if isinstance(field, models.JSONField):
        return {"field": field.name, "values": [1, "two", None]}
    if isinstance(field, models.BooleanField):
        return True
    if isinstance(field, models.IntegerField):  # every integer flavour; auto pks are skipped
        # Small: positions must stay below 8 and done counters not above totals.
        return 1
    if isinstance(field, models.FloatField):
        return 0.5  # exact in binary; evaluation temperatures must be within 0…2
    if isinstance(field, models.DecimalField):
        return Decimal("1.5") if field.decimal_places else Decimal(1)
    if isinstance(field, models.DateTimeField):
        return dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    if isinstance(field, models.DateField):
        return dt.date(2026, 1, 2)
    if isinstance(field, models.DurationField):
        return dt.timedelta(seconds=90)
    if isinstance(field, models.UUIDField):
        return uuid.UUID(token[:32])
    if isinstance(field, models.GenericIPAddressField):
        return "192.0.2.1"
    if isinstance(field, models.FileField):
        return f"upgrade/{token[:12]}.jsonl"[: field.max_length]
    if isinstance(field, models.TextField):
        return f"{field.name} {token}"
    if isinstance(field, models.CharField):  # also URL, e-mail and slug fields
        return token[: field.max_length]
    if isinstance(field, models.BinaryField):
        return token.encode()
    raise TypeError(f"no test value for {label}.{field.name} ({type(field).__name__})")


class Filler:
    """Creates one row per model through the historical models of a migration state."""

    def __init__(self, apps: Apps) -> None:
        self.apps = apps
        self.rows: dict[str, models.Model] = {}
        self._creating: set[str] = set()

    def row(self, model: type[models.Model]) -> models.Model | None:
        label = model._meta.label_lower
        if label in self.rows:
            return self.rows[label]
        if label in self._creating:
            return None  # a foreign-key cycle: the caller's field must be nullable
        self._creating.add(label)
        values: dict[str, Any] = {}
        self_references: list[models.Field] = []
        for field in model._meta.concrete_fields:
            if isinstance(field, models.fields.AutoFieldMixin) or field.generated:
                continue
            if field.name in LEFT_NULL.get(label, ()):
                continue
            if field.is_relation:
                if field.related_model is model:
                    self_references.append(field)  # set once the row exists
                    continue
                target = self.row(field.related_model)
                assert target is not None or field.null, f"{label}.{field.name} in a cycle"
                values[field.name] = target
                continue
            values[field.name] = field_value(label, field)
        instance = model._default_manager.create(**values)
        for field in self_references:
            setattr(instance, field.name, instance)
        if self_references:
            instance.save(update_fields=[field.name for field in self_references])
        for field in model._meta.local_many_to_many:
            getattr(instance, field.name).add(self.row(field.related_model))
        self._creating.discard(label)
        self.rows[label] = instance
        return instance


def project_models(apps: Apps) -> list[type[models.Model]]:
    return [m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS]


def with_tables(apps: Apps) -> list[type[models.Model]]:
    """Project models with a table of their own, many-to-many tables included."""
    found = [
        m
        for m in apps.get_models(include_auto_created=True)
        if m._meta.app_label in PROJECT_APPS and m._meta.managed and not m._meta.proxy
    ]
    return sorted(found, key=lambda m: m._meta.db_table)


def fill_every_model(apps: Apps, filler: Filler) -> None:
    everything = project_models(apps)
    for model in everything:
        if model._meta.managed and not model._meta.proxy:
            filler.row(model)
    filled = {label for label in filler.rows if label.split(".")[0] in PROJECT_APPS}
    labels = {m._meta.label_lower for m in everything}
    # A model added later without a row here (or a new unmanaged one) fails this test.
    assert filled == labels - UNMANAGED
    assert {m._meta.label_lower for m in everything if not m._meta.managed} == UNMANAGED


# --- reading rows back --------------------------------------------------------------------


def table_rows(model: type[models.Model]) -> Fingerprint:
    """Every column of every row, by primary key, read with SQL (no model in between)."""
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY {pk}")  # noqa: S608 - names from models
        columns = tuple(column.name for column in cursor.description)
        return columns, cursor.fetchall()


def fingerprints(apps: Apps) -> dict[str, Fingerprint]:
    return {m._meta.db_table: table_rows(m) for m in with_tables(apps)}


def orm_values(model: type[models.Model], pk: Any) -> dict[str, Any]:
    attnames = [field.attname for field in model._meta.concrete_fields]
    return model._default_manager.filter(pk=pk).values(*attnames).get()


def current_label(old_label: str) -> str:
    app, model = old_label.split(".")
    return f"core.{model}" if app == "dashboard" and model in MOVED else old_label


# --- content types and permissions as an installation from before the move has them ----------


def moved_content_types(apps: Apps, app_label: str) -> dict[str, int]:
    content_type = apps.get_model("contenttypes", "ContentType")
    rows = content_type.objects.filter(app_label=app_label, model__in=MOVED)
    return dict(rows.values_list("model", "pk"))


def old_permissions(apps: Apps) -> dict[str, int]:
    """The dashboard content types and permissions of an installation from before the move."""
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")
    # What the old post_migrate made; after the roll-back they are the renamed core rows.
    wanted = {
        "access": ("read_all", "member_actions"),
        "heartbeat": ("view_heartbeat",),
        "taskprobe": ("view_taskprobe",),
        "auditentry": ("view_auditentry", "delete_auditentry"),
    }
    ids = {}
    for model, codenames in wanted.items():
        ct, _ = content_type.objects.get_or_create(app_label="dashboard", model=model)
        for codename in codenames:
            perm, _ = permission.objects.get_or_create(
                content_type=ct, codename=codename, defaults={"name": codename}
            )
            ids[codename] = perm.pk
    return ids


def granted(group: str) -> set[int]:
    return set(Group.objects.get(name=group).permissions.values_list("pk", flat=True))


# --- the tests ----------------------------------------------------------------------------


def test_upgrade_keeps_every_row_and_moves_content_types(executor: MigrationExecutor) -> None:
    executor, apps = roll_back_to_old_layout(executor)
    assert not any(m._meta.app_label == "core" for m in apps.get_models())
    # The roll-back gave the content types back to dashboard (ids kept) and left none in core.
    assert moved_content_types(apps, "core") == {}

    perm_ids = old_permissions(apps)
    old_cts = moved_content_types(apps, "dashboard")
    assert set(old_cts) == set(MOVED)

    user_model = apps.get_model("auth", "User")
    user = user_model.objects.create(username="upgrade-viewer", password="!")
    viewer, _ = apps.get_model("auth", "Group").objects.get_or_create(name="viewer")
    viewer.permissions.add(perm_ids["read_all"])
    user.groups.add(viewer)
    user.user_permissions.add(perm_ids["member_actions"])

    filler = Filler(apps)
    filler.rows["auth.user"] = user  # the rows' actors and creators are the viewer
    fill_every_model(apps, filler)
    # The level whose diagnosis the upgrade carries over.
    run_curve = filler.rows["dashboard.runcurve"]
    type(run_curve).objects.filter(pk=run_curve.pk).update(level=2000)
    audit = filler.rows["dashboard.auditentry"]
    log = apps.get_model("admin", "LogEntry").objects.create(
        user=user,
        content_type_id=old_cts["auditentry"],
        object_id=str(audit.pk),
        object_repr="audit entry",
        action_flag=CHANGE,
        action_time=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )

    before = fingerprints(apps)
    assert all(rows for _, rows in before.values()), before
    old_values = {
        label: orm_values(type(row), row.pk)
        for label, row in filler.rows.items()
        if label.split(".")[0] in PROJECT_APPS
    }

    # --- upgrade
    latest = current_targets(executor)
    executor = migrate_to(latest)
    assert executor.migration_plan(latest) == []
    ContentType.objects.clear_cache()

    # The current models have exactly the tables filled under the old layout, rows unchanged.
    after = fingerprints(global_apps)
    kept = {t: rows for t, rows in before.items() if t not in REPLACED_CACHES}
    assert set(after) == set(kept) | ADDED_AFTER_MOVE | set(REPLACED_CACHES.values())
    assert [after[table][1] for table in sorted(ADDED_AFTER_MOVE)] == [[]] * len(ADDED_AFTER_MOVE)
    assert {t: after[t] for t in kept} == kept
    curve = old_values.pop("dashboard.runcurve")
    diagnosis = global_apps.get_model("dashboard", "RunDiagnosis").objects.get()
    assert (diagnosis.job_id, diagnosis.fingerprint, diagnosis.diagnosis) == (
        curve["job_id"],
        curve["fingerprint"],
        curve["diagnosis"],
    )
    # The current models (the moved ones through core) read back every row that was made.
    for label, values in old_values.items():
        model = global_apps.get_model(current_label(label))
        assert orm_values(model, values[model._meta.pk.attname]) == values, label

    # Same content type rows, now labelled core; the dashboard ones are gone.
    assert moved_content_types(global_apps, "core") == old_cts
    assert moved_content_types(global_apps, "dashboard") == {}
    for codename, pk in perm_ids.items():
        assert Permission.objects.get(pk=pk).content_type.app_label == "core", codename
    assert perm_ids["read_all"] in granted("viewer")
    upgraded = get_user_model().objects.get(pk=user.pk)
    assert upgraded.has_perm("core.read_all") and upgraded.has_perm("core.member_actions")
    assert not upgraded.has_perm("dashboard.read_all")
    entry = LogEntry.objects.get(pk=log.pk)
    assert entry.content_type_id == old_cts["auditentry"]
    assert entry.get_edited_object().pk == audit.pk  # the admin history still finds its object

    # --- and back: the same rows, the content types labelled dashboard again
    executor, apps = roll_back_to_old_layout(executor)
    rolled_back = fingerprints(apps)
    assert [rolled_back.pop(table)[1] for table in REPLACED_CACHES] == [[]] * len(REPLACED_CACHES)
    assert rolled_back == kept
    assert moved_content_types(apps, "dashboard") == old_cts
    assert moved_content_types(apps, "core") == {}
    permission = apps.get_model("auth", "Permission")
    assert {
        codename: permission.objects.get(pk=pk).content_type.app_label
        for codename, pk in perm_ids.items()
    } == dict.fromkeys(perm_ids, "dashboard")
    # The fixture takes the database forward to the latest migrations again.


def test_upgrade_merges_content_types_the_new_code_made_before_migrate(
    executor: MigrationExecutor,
) -> None:
    """New code that serves before ``migrate`` runs can make core content types early: the
    admin's history of a change goes through ContentType.get_for_model. The upgrade keeps the
    old rows (their ids hold the grants and the history) and moves onto them what hangs off
    the early ones, so neither set of grants nor any history entry is lost."""
    executor, apps = roll_back_to_old_layout(executor)
    perm_ids = old_permissions(apps)
    old_cts = moved_content_types(apps, "dashboard")
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")
    group = apps.get_model("auth", "Group")
    user = apps.get_model("auth", "User").objects.create(username="probe-reader", password="!")
    probe = apps.get_model("dashboard", "TaskProbe").objects.create(requested_by=user)

    early = content_type.objects.create(app_label="core", model="taskprobe")
    early_view = permission.objects.create(
        content_type=early, codename="view_taskprobe", name="Can view task probe"
    )
    early_only = permission.objects.create(
        content_type=early, codename="rerun_taskprobe", name="Can send a probe again"
    )
    new_readers = group.objects.create(name="probe-readers-new")
    new_readers.permissions.add(early_view, early_only)
    old_readers = group.objects.create(name="probe-readers-old")
    old_readers.permissions.add(perm_ids["view_taskprobe"])
    user.groups.add(new_readers)
    log = apps.get_model("admin", "LogEntry")
    history = [
        log.objects.create(
            user=user,
            content_type_id=ct_id,
            object_id=str(probe.pk),
            object_repr="probe",
            action_flag=CHANGE,
            action_time=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        ).pk
        for ct_id in (old_cts["taskprobe"], early.pk)
    ]

    latest = current_targets(executor)
    migrate_to(latest)
    ContentType.objects.clear_cache()

    assert moved_content_types(global_apps, "core") == old_cts
    assert moved_content_types(global_apps, "dashboard") == {}
    assert not ContentType.objects.filter(pk=early.pk).exists()
    # One view permission, the old row; the permission only the early type had moved over.
    view = Permission.objects.get(content_type__app_label="core", codename="view_taskprobe")
    assert view.pk == perm_ids["view_taskprobe"]
    assert Permission.objects.get(pk=early_only.pk).content_type_id == old_cts["taskprobe"]
    assert granted("probe-readers-new") == {view.pk, early_only.pk}
    assert granted("probe-readers-old") == {view.pk}
    reader = get_user_model().objects.get(pk=user.pk)
    assert reader.has_perm("core.view_taskprobe") and reader.has_perm("core.rerun_taskprobe")
    entries = LogEntry.objects.filter(pk__in=history)
    assert len(entries) == 2
    for entry in entries:
        assert entry.content_type_id == old_cts["taskprobe"]
        assert entry.get_edited_object().pk == probe.pk


def test_manage_py_migrate_back_and_forth_keeps_the_roles(executor: MigrationExecutor) -> None:
    """``migrate core zero`` (the database back at the old layout) must not fail in the
    post-migrate role sync, and the next ``migrate`` grants the roles their permissions again."""
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("migrate", "core", "zero", verbosity=0)
    viewer = set(Group.objects.get(name="viewer").permissions.values_list("codename", flat=True))
    assert viewer == {"read_all"}  # left as it was: its permission is dashboard's again
    call_command("migrate", verbosity=0)
    grants = {
        group.name: {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        for group in Group.objects.filter(name__in=["viewer", "member"])
    }
    assert grants == {
        "viewer": {"core.read_all"},
        "member": {"core.read_all", "core.member_actions"},
    }
