"""The runs list sorts by a cost the database keeps (``Job.cost_usd``, computed by a trigger of
jobs migration 0012 on every write to a job and on every change to the catalog) and shows the
cost the Python rule computes (``Prices.cost`` → ``rules.training_cost``). Over random catalogs
and jobs the two must be equal exactly — as numbers, whatever their scale (Decimal equality), including
which jobs have no cost at all, and which cost $0 because they trained nothing.

Prices are drawn with many decimals and stored through the real ``numeric(12, 4)`` column, so both
sides read the same rounded catalog; trained tokens go up to 10¹², where a rounded SQL quotient
would differ from the exact Decimal product in the last places."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.selectors_runs import prices
from datasets.models import BaseModel
from jobs.models import Job, ProviderConnection

# Few name parts, so generated ids, aliases (their dash prefixes) and job names collide often.
PARTS = ("gpt", "4o", "mini", "2024", "07", "18", "nano")
dashed_names = st.lists(st.sampled_from(PARTS), min_size=1, max_size=4).map("-".join)
training_prices = st.none() | st.decimals(
    min_value=0, max_value=Decimal("99999999.9999"), allow_nan=False, allow_infinity=False
)
trained_tokens = st.none() | st.integers(min_value=0, max_value=10**12)
# Finished, failed and cancelled jobs without a token count cost $0 (jobs.costs); the others
# are unknown until counted.
statuses = st.sampled_from([s.value for s in Job.Status])


@st.composite
def catalogs(draw: st.DrawFn) -> dict[str, Decimal | None]:
    ids = draw(st.lists(dashed_names, max_size=6, unique=True))
    return {model_id: draw(training_prices) for model_id in ids}


def model_names(catalog: dict[str, Decimal | None]) -> st.SearchStrategy[str]:
    known = st.sampled_from(sorted(catalog)) if catalog else dashed_names
    plain = st.one_of(
        known,
        dashed_names,  # aliases of catalog ids, or unknown models
        st.just(""),
        st.text(alphabet="ab:-%_'", max_size=12),
    )
    fine_tuned = st.builds(
        lambda base, org, suffix: f"ft:{base}:{org}::{suffix}",
        plain,
        st.sampled_from(["acme", "org-1", ""]),
        st.text(alphabet="abcXYZ09", min_size=1, max_size=8),
    )
    return plain | fine_tuned


job_fields = st.fixed_dictionaries({"trained_tokens": trained_tokens, "status": statuses})


@st.composite
def catalogs_and_jobs(
    draw: st.DrawFn,
) -> tuple[dict[str, Decimal | None], list[dict[str, Any]]]:
    catalog = draw(catalogs())
    names = model_names(catalog)
    jobs = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "model": names,
                    "base_model": names,
                    "trained_tokens": trained_tokens,
                    "status": statuses,
                }
            ),
            min_size=1,
            max_size=8,
        )
    )
    return catalog, jobs


def replace_catalog(catalog: dict[str, Decimal | None]) -> None:
    BaseModel.objects.all().delete()
    BaseModel.objects.bulk_create(
        BaseModel(
            id=model_id,
            encoding="o200k_base",
            training_context=65_536,
            inference_context=128_000,
            training_price_per_1m=price,
        )
        for model_id, price in catalog.items()
    )


def compare_stored(ids: list[Any]) -> list[tuple[Any, Any, Job]]:
    table = prices()
    return [(job.cost_usd, table.cost(job), job) for job in Job.objects.filter(pk__in=ids)]


def assert_equal(compared: list[tuple[Any, Any, Job]], n: int) -> None:
    assert len(compared) == n
    for stored, in_python, job in compared:
        assert (stored is None) == (in_python is None), (job.model, job.base_model, job.status)
        assert stored == in_python, (job.model, job.base_model, job.trained_tokens, job.status)


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    # The connection is made once per test; every example makes and rolls back its own rows.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.django_db
@SETTINGS
@given(case=catalogs_and_jobs(), later=catalogs(), changes=st.lists(job_fields, max_size=8))
def test_stored_cost_equals_the_python_rule_after_every_kind_of_write(
    connection: ProviderConnection,
    case: tuple[dict[str, Decimal | None], list[dict[str, Any]]],
    later: dict[str, Decimal | None],
    changes: list[dict[str, Any]],
) -> None:
    """Jobs inserted in bulk (no Python code runs per row), then changed by UPDATE statements,
    then priced by a new catalog: after each write the stored cost is the Python rule's."""
    catalog, jobs = case
    with transaction.atomic():
        replace_catalog(catalog)
        created = Job.objects.bulk_create(Job(connection=connection, **fields) for fields in jobs)
        ids = [job.pk for job in created]
        inserted = compare_stored(ids)
        for pk, fields in zip(ids, changes, strict=False):
            Job.objects.filter(pk=pk).update(**fields)
        updated = compare_stored(ids)
        replace_catalog(later)
        repriced = compare_stored(ids)
        BaseModel.objects.filter(training_price_per_1m__isnull=False).update(
            training_price_per_1m=Decimal("0.5")
        )
        edited = compare_stored(ids)
        transaction.set_rollback(True)
    for compared in (inserted, updated, repriced, edited):
        assert_equal(compared, len(jobs))


@pytest.mark.django_db
def test_an_admin_edit_of_a_price_reorders_the_runs_list_by_cost(
    connection: ProviderConnection,
) -> None:
    from dashboard.selectors_runs import RunFilters, runs_page

    replace_catalog({"model-a": Decimal("1"), "model-b": Decimal("2")})
    cheap = Job.objects.create(connection=connection, base_model="model-a", status="succeeded",
                               trained_tokens=3_000_000)  # fmt: skip
    dear = Job.objects.create(connection=connection, base_model="model-b", status="succeeded",
                              trained_tokens=2_000_000)  # fmt: skip
    order = [r.job.pk for r in runs_page(RunFilters(sort="cost")).rows]
    assert order == [dear.pk, cheap.pk]  # $4 before $3
    model = BaseModel.objects.get(pk="model-a")
    model.training_price_per_1m = Decimal("1.5")
    model.save()
    rows = runs_page(RunFilters(sort="cost")).rows
    assert [r.job.pk for r in rows] == [cheap.pk, dear.pk]  # $4.50 before $4
    assert [r.cost for r in rows] == [Decimal("4.5"), Decimal("4")]
    assert Job.objects.get(pk=cheap.pk).cost_usd == Decimal("4.5")
