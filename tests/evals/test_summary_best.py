"""Which summary score is "best" (issue 14, item 6): only a top interval wholly above every
other column's; overlapping intervals are a tie."""

from __future__ import annotations

from evals import stats
from evals.models import EvalModel
from evals.selectors import ColumnSummary, Metric, _mark_best

EXACT = Metric(id="exact_match", label="Exact match")


def column(position: int, passes: int, n: int) -> ColumnSummary:
    return ColumnSummary(
        column=EvalModel(position=position, label=f"m{position}"),
        scores={"exact_match": stats.mean_interval([1.0] * passes + [0.0] * (n - passes))},
        win=None,
        pairwise=None,
        done=n,
        failed=0,
        pending=0,
        mean_latency_ms=None,
        prompt_tokens=0,
        completion_tokens=0,
        cost=None,
    )


def marks(columns: list[ColumnSummary]) -> list[str]:
    _mark_best(columns, [EXACT])
    return [
        "best" if "exact_match" in c.best else "tie" if "exact_match" in c.tied else ""
        for c in columns
    ]


def test_a_clear_lead_is_best() -> None:
    # 190/200 vs 100/200: the intervals are far apart.
    assert marks([column(0, 100, 200), column(1, 190, 200)]) == ["", "best"]


def test_a_lead_within_the_intervals_is_a_tie() -> None:
    # 9/12 vs 10/12: the higher mean does not make a difference the data can show.
    assert marks([column(0, 9, 12), column(1, 10, 12)]) == ["tie", "tie"]


def test_only_columns_reaching_the_top_interval_are_tied() -> None:
    assert marks([column(0, 0, 12), column(1, 11, 12), column(2, 12, 12)]) == ["", "tie", "tie"]
