"""User content (run names, ids, checkpoint ids, metric and hyperparameter names) is escaped in
every string of every figure, and the figures embed safely with Django's json_script."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.utils.html import json_script

from dashboard.charts import (
    RunSeries,
    compare_figures,
    comparison_rows,
    escape_text,
    run_figures,
    scatter_best_vs_hyperparameter,
)

from .helpers import XSS, XSS_ESCAPED, curve_rows, strings, synthetic_run

TEMPLATE = "%{meta[0]} {y} 'quoted' \"double\""


def hostile_run(position: int) -> RunSeries:
    rows = curve_rows(
        40,
        lambda s: 2 / math.sqrt(s),
        valid=lambda s: 2.1 / math.sqrt(s),
        full_valid=lambda s: 2.05 / math.sqrt(s),
        steps_per_epoch=10,
    )
    for row in rows:
        row["train_accuracy"] = 0.5
    return synthetic_run(
        rows,
        steps_per_epoch=10,
        label=f"{XSS} {TEMPLATE} #{position}",
        run_id=XSS,
        checkpoints=[
            {"step": 20, "model_name": XSS, "metrics": {XSS: 1.0, "full_valid_loss": 0.4}}
        ],
        hyperparameters={"learning_rate_multiplier": 0.1 * (position + 1), XSS: 3},
    )


def figures() -> list[dict[str, Any]]:
    runs = [hostile_run(0), hostile_run(1)]
    rows = comparison_rows(runs)
    return [
        *run_figures(runs[0], x_axis="epoch", smoothing=0.5).values(),
        *compare_figures(runs, x_axis="epoch").values(),
        scatter_best_vs_hyperparameter(rows, "learning_rate_multiplier"),
        scatter_best_vs_hyperparameter(rows, XSS),  # a hostile hyperparameter name
        scatter_best_vs_hyperparameter(rows, "batch_size"),  # no run has it: all excluded
    ]


def test_escape_text() -> None:
    assert escape_text(XSS) == XSS_ESCAPED
    # Plotly decodes &lt; &gt; &amp; and numeric entities but not &quot;, and evaluates %{…}.
    assert (
        escape_text(TEMPLATE)
        == "%&#123;meta[0]&#125; &#123;y&#125; &#39;quoted&#39; &#34;double&#34;"
    )
    assert escape_text("a & b") == "a &amp; b"


def test_no_raw_user_markup_in_any_string() -> None:
    for figure in figures():
        texts = list(strings(figure))
        assert not [s for s in texts if "<img" in s or "{meta[0]}" in s or "{y}" in s]
        assert not [s for s in texts if "onerror" in s and XSS_ESCAPED not in s]
        assert not [s for s in texts if '"double"' in s or "'quoted'" in s]
        assert any(XSS_ESCAPED in s for s in texts)  # escaped, not dropped


def test_escaped_where_it_is_shown() -> None:
    run_loss, _, compare_loss, _, scatter, hostile_scatter, empty_scatter = figures()
    label = f"{XSS_ESCAPED} {escape_text(TEMPLATE)} #0"
    assert run_loss["layout"]["title"]["text"] == f"Loss — {label}"
    checkpoint = next(t for t in run_loss["data"] if t["name"] == "checkpoints")
    assert checkpoint["text"] == [
        f"<b>checkpoint {XSS_ESCAPED}</b><br>step 20<br>{XSS_ESCAPED} 1.0000<br>full_valid_loss 0.4000"
    ]
    assert compare_loss["data"][0]["name"] == label  # the run's one legend entry
    assert compare_loss["data"][0]["hovertemplate"].startswith(f"<b>{label}</b><br>")
    assert compare_loss["data"][0]["meta"]["run"] == XSS_ESCAPED
    assert scatter["data"][0]["text"][0] == label
    assert hostile_scatter["layout"]["xaxis"]["title"]["text"] == XSS_ESCAPED
    assert f"<br>{XSS_ESCAPED} %{{x}}<br>" in hostile_scatter["data"][0]["hovertemplate"]
    assert empty_scatter["data"] == []
    assert empty_scatter["layout"]["meta"]["excluded"] == [label, label.replace("#0", "#1")]


def test_figures_embed_safely_with_json_script() -> None:
    for figure in figures():
        html = json_script(figure, "figure")
        body = re.fullmatch(
            r'<script id="figure" type="application/json">(.*)</script>', html, re.S
        )
        assert body is not None
        assert "<" not in body.group(1) and ">" not in body.group(1)
        assert json.loads(body.group(1)) == figure
