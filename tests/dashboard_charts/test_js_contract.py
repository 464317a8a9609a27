"""charts_common.js against real server-built figures: the meta/customdata contract holds."""

from __future__ import annotations

import json
import math

import pytest

from dashboard.charts import RunSeries, compare_figures, ema, run_figures

from .helpers import curve_rows, run_node, synthetic_run

# A stand-in for Plotly that records restyle/relayout calls instead of drawing.
FAKE_PLOTLY = """
var calls = [];
globalThis.Plotly = {
  restyle: function (gd, update, indices) { calls.push({restyle: update, indices: indices}); },
  relayout: function (gd, update) { calls.push({relayout: update}); },
  newPlot: function (el, data, layout, config) { calls.push({newPlot: config}); }
};
"""


def run() -> RunSeries:
    rows = curve_rows(
        50,
        lambda s: 2 / math.sqrt(s) * (1 + 0.1 * math.sin(s)),
        valid=lambda s: 2.2 / math.sqrt(s),
        full_valid=lambda s: 1.0,
        steps_per_epoch=25,
    )
    return synthetic_run(rows, steps_per_epoch=25, run_id="r1")


def test_resmooth_recomputes_the_servers_smoothed_lines() -> None:
    first, second = run(), run()
    second.run_id = "r2"
    figure = compare_figures([first, second], smoothing=0.0)["loss"]
    expected = compare_figures([first, second], smoothing=0.8)["loss"]
    calls = run_node(
        FAKE_PLOTLY + f"var gd = {{data: {json.dumps(figure['data'])}}};\n"
        "tb.resmooth(gd, 0.8);\nconsole.log(JSON.stringify(calls));"
    )
    (call,) = calls
    smoothed = [i for i, t in enumerate(figure["data"]) if t["meta"]["role"] == "smoothed"]
    assert call["indices"] == smoothed == [0, 5]
    for index, ys in zip(smoothed, call["restyle"]["y"], strict=True):
        assert ys == pytest.approx(expected["data"][index]["y"], rel=1e-12)


def test_show_series_log_axis_and_draw() -> None:
    figure = run_figures(run())["loss"]
    calls = run_node(
        FAKE_PLOTLY + f"var gd = {{data: {json.dumps(figure['data'])}}};\n"
        "tb.showSeries(gd, 'valid_loss', false);\n"
        "tb.showSeries(gd, 'train_loss', true);\n"
        "tb.setLogY(gd, true);\n"
        f"tb.draw({{}}, {json.dumps(figure)});\n"
        "console.log(JSON.stringify([calls, tb.rawValues(gd.data[0]).slice(0, 2),"
        " tb.showSeries(gd, 'nothing', true)]));"
    )
    recorded, raw, missing = calls
    names = [t["name"] for t in figure["data"]]
    assert recorded[0] == {
        "restyle": {"visible": "legendonly"},
        "indices": [names.index("valid loss")],
    }
    assert recorded[1] == {"restyle": {"visible": True}, "indices": [0, 1]}  # smoothed + raw
    assert recorded[2] == {"relayout": {"yaxis.type": "log"}}
    assert recorded[3] == {"newPlot": {"displaylogo": False, "responsive": True}}
    assert raw == figure["data"][0]["y"][:2] == ema(figure["data"][1]["y"], 0.0)[:2]
    assert missing is None
