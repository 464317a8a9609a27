"""The dashboard's chart core: plain data in, plain data (plotly figure dicts, CSV) out.

No database access and no views: selectors build ``RunSeries`` objects
(``RunSeries.from_rows``), pages embed the figures with ``json_script`` and draw them with
``tuneboard.draw`` from ``static/js/charts_common.js``.

* ``series``: ``Series``, ``RunSeries``, ``CheckpointMark``, best points, summary metrics;
* ``downsample``: min/max-per-bucket downsampling for display (≤ 2,000 points per trace);
* ``smoothing``: TensorBoard's debiased EMA (mirrored by ``tuneboard.ema`` in JS);
* ``figures``: ``run_figures`` and ``compare_figures``; ``scatter``: best loss vs a
  hyperparameter; ``describe``: plain-text alternatives for screen readers;
* ``export``: metric points as CSV/JSON and the comparison tables as CSV.
"""

from dashboard.charts.describe import compare_description, run_description
from dashboard.charts.downsample import DEFAULT_BUDGET, downsample
from dashboard.charts.export import (
    comparison_rows,
    comparison_table,
    comparison_tables_csv,
    metrics_csv,
    metrics_json,
)
from dashboard.charts.figures import compare_figures, run_figures
from dashboard.charts.hyperparameters import (
    HYPERPARAMETER_LABELS,
    hyperparameter_label,
    plotted_parameters,
)
from dashboard.charts.palette import RUN_PALETTE, colours_for, run_colour
from dashboard.charts.scatter import scatter_best_vs_hyperparameter
from dashboard.charts.series import (
    METRICS,
    SUMMARY_METRICS,
    X_AXES,
    BestPoint,
    CheckpointMark,
    RunSeries,
    Series,
    best_point,
    effective_x_axis,
    summary_metrics,
)
from dashboard.charts.smoothing import ema
from dashboard.charts.text import escape_text

__all__ = [
    "DEFAULT_BUDGET",
    "HYPERPARAMETER_LABELS",
    "METRICS",
    "RUN_PALETTE",
    "SUMMARY_METRICS",
    "X_AXES",
    "BestPoint",
    "CheckpointMark",
    "RunSeries",
    "Series",
    "best_point",
    "colours_for",
    "compare_description",
    "compare_figures",
    "comparison_rows",
    "comparison_table",
    "comparison_tables_csv",
    "downsample",
    "effective_x_axis",
    "ema",
    "escape_text",
    "hyperparameter_label",
    "metrics_csv",
    "metrics_json",
    "plotted_parameters",
    "run_colour",
    "run_description",
    "run_figures",
    "scatter_best_vs_hyperparameter",
    "summary_metrics",
]
