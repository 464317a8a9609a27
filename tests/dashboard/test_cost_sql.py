"""The runs list sorts by a cost computed in SQL (``cost_expression``) and shows the cost the
Python rule computes (``Prices.cost`` → ``rules.training_cost``). Over random catalogs and jobs
the two must be equal exactly — as numbers, whatever their scale (Decimal equality), including
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

from dashboard.selectors_runs import cost_expression, prices
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


@pytest.mark.django_db
@settings(
    max_examples=150,
    deadline=None,
    # The connection is made once per test; every example makes and rolls back its own rows.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=catalogs_and_jobs())
def test_sql_cost_equals_the_python_rule(
    connection: ProviderConnection,
    case: tuple[dict[str, Decimal | None], list[dict[str, Any]]],
) -> None:
    catalog, jobs = case
    with transaction.atomic():
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
        created = Job.objects.bulk_create(Job(connection=connection, **fields) for fields in jobs)
        table = prices()
        rows = Job.objects.filter(pk__in=[job.pk for job in created]).annotate(
            sql_cost=cost_expression(table)
        )
        compared = [(job.sql_cost, table.cost(job), job) for job in rows]
        transaction.set_rollback(True)
    assert len(compared) == len(jobs)
    for in_sql, in_python, job in compared:
        assert (in_sql is None) == (in_python is None), (job.model, job.base_model)
        assert in_sql == in_python, (job.model, job.base_model, job.trained_tokens, job.status)
