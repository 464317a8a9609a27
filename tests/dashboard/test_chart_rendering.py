"""What the charts draw, read back from the SVG plotly rendered in a real Chromium: checkpoint
markers and their legend symbol, the legend clear of the x-axis title, no invented axes on an
empty chart, readable sizes on a wide and a phone screen, and the comparison's one legend entry
per run with its line-style key, stacked charts and a metrics table that fits its card."""

from __future__ import annotations

from typing import Any

from tests.dashboard import test_browser

# The browser and signed-in pages of the dashboard's browser tests (same fixtures, same marks).
browser = test_browser.browser
open_page = test_browser.open_page
pytestmark = test_browser.pytestmark

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

# Per chart: its box, the x-axis title's and the legend's boxes, the legend entries (text and
# whether a symbol was drawn next to it) and, per trace, the marker points drawn and their paint.
GEOMETRY = """(selector) => {
  const gd = document.querySelector(selector);
  const box = (el) => {
    if (!el) { return null; }
    const r = el.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height};
  };
  const legend = Array.from(gd.querySelectorAll(".legend .traces")).map((item) => {
    const symbol = item.querySelector(".legendpoints path, .legendlines path");
    const paint = symbol ? getComputedStyle(symbol) : null;
    return {
      text: item.querySelector(".legendtext").textContent,
      drawn: !!symbol && (symbol.getAttribute("d") || "").length > 2 &&
        ((paint.stroke !== "none" && paint.strokeOpacity !== "0" && !/rgba\\(.*, 0\\)/.test(paint.stroke)) ||
         (paint.fill !== "none" && paint.fillOpacity !== "0" && !/rgba\\(.*, 0\\)/.test(paint.fill))),
    };
  });
  const traces = Array.from(gd.querySelectorAll("g.scatterlayer g.trace")).map((g) => {
    const trace = (g.__data__ && g.__data__[0] && g.__data__[0].trace) || {};
    const points = Array.from(g.querySelectorAll("path.point")).filter((p) => {
      const s = getComputedStyle(p);
      const visible = (c, o) => c !== "none" && o !== "0" && !/rgba\\(.*, 0\\)/.test(c);
      return (p.getAttribute("d") || "").length > 2 &&
        (visible(s.stroke, s.strokeOpacity) || visible(s.fill, s.fillOpacity));
    });
    return {role: (trace.meta || {}).role, series: (trace.meta || {}).series, visiblePoints: points.length};
  });
  return {
    chart: box(gd), xtitle: box(gd.querySelector(".xtitle")), legend: box(gd.querySelector(".legend")),
    xticks: gd.querySelectorAll(".xtick text").length, yticks: gd.querySelectorAll(".ytick text").length,
    annotations: Array.from(gd.querySelectorAll(".annotation-text")).map((a) => a.textContent),
    legendItems: legend, traces: traces,
  };
}"""


def geometry(page: Any, selector: str) -> dict[str, Any]:
    page.wait_for_function(
        f"() => {{ const gd = document.querySelector('{selector}');"
        " return gd && gd._fullLayout && gd.querySelector('.main-svg'); }"
    )
    return page.evaluate(GEOMETRY, selector)


def resized(page: Any, holder: str, chart: str) -> None:
    """Waits until plotly's (debounced) resize handler has fitted the chart to the window."""
    page.wait_for_function(
        """([holder, chart]) => {
          const svg = document.querySelector(chart + " .main-svg");
          const width = document.querySelector(holder).getBoundingClientRect().width;
          const cell = document.querySelector(chart).getBoundingClientRect().width;
          return svg && Math.abs(svg.getBoundingClientRect().width - cell) < 2 && cell <= width + 1;
        }""",
        arg=[holder, chart],
    )


def apart(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["bottom"] <= b["top"]
        or b["bottom"] <= a["top"]
        or a["right"] <= b["left"]
        or (b["right"] <= a["left"])
    )


def test_run_charts_draw_checkpoints_and_keep_the_legend_off_the_axis_title(
    open_page, make_job
) -> None:  # type: ignore[no-untyped-def]
    job = make_job(steps=60, name="three epochs", epochs=3)
    page = open_page(f"/jobs/{job.pk}/", "member")
    page.set_viewport_size(WIDE)
    for kind in ("loss", "accuracy"):
        drawn = geometry(page, f'[data-tb-chart="{kind}"]')
        (checkpoints,) = [t for t in drawn["traces"] if t["role"] == "checkpoints"]
        assert checkpoints["visiblePoints"] == 3, kind  # one per epoch end
        legend = {item["text"]: item["drawn"] for item in drawn["legendItems"]}
        assert legend["checkpoints"] is True, legend
        assert all(legend.values()), legend  # every legend entry shows its symbol
        assert apart(drawn["xtitle"], drawn["legend"]), drawn
        assert drawn["legend"]["top"] >= drawn["xtitle"]["bottom"]  # the legend is under it
        assert drawn["chart"]["width"] >= 560 and drawn["chart"]["height"] >= 420, drawn["chart"]
    # On a phone each chart takes the full width of its card, one under the other.
    page.set_viewport_size(PHONE)
    resized(page, ".tb-chart-grid", '[data-tb-chart="accuracy"]')
    loss = geometry(page, '[data-tb-chart="loss"]')
    accuracy = geometry(page, '[data-tb-chart="accuracy"]')
    card = page.evaluate(
        "() => document.querySelector('.tb-chart-grid').getBoundingClientRect().width"
    )
    assert (
        loss["chart"]["width"] >= card - 2 and accuracy["chart"]["top"] >= loss["chart"]["bottom"]
    )
    assert apart(loss["xtitle"], loss["legend"]), loss


def test_an_empty_chart_says_so_and_draws_no_axes(open_page, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(steps=0, status="running", finished_at=None, total_steps=60, name="fresh")
    page = open_page(f"/jobs/{job.pk}/", "member")
    for kind in ("loss", "accuracy"):
        drawn = geometry(page, f'[data-tb-chart="{kind}"]')
        assert drawn["annotations"] == [f"No {kind} metrics yet."]
        assert drawn["xticks"] == drawn["yticks"] == 0  # no axis from -1 to 6
        assert drawn["legendItems"] == []


def test_compare_page_one_entry_per_run_stacked_charts_and_tables_that_fit(
    open_page, make_job
) -> None:  # type: ignore[no-untyped-def]
    runs = [
        make_job(steps=60, name="first run", seed=1),
        make_job(steps=60, name="second run", seed=2, hyperparameters={
            "n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 1.8}),
        make_job(steps=90, name="third run", seed=3, hyperparameters={
            "n_epochs": 3, "batch_size": 2, "learning_rate_multiplier": 0.5}),
    ]  # fmt: skip
    page = open_page("/compare/?runs=" + ",".join(str(job.pk) for job in runs), "viewer")
    page.set_viewport_size(WIDE)
    resized(page, ".tb-chart-stack", '[data-tb-chart="accuracy"]')
    key = ["training (solid)", "validation (dotted)", "full validation (dashed)"]
    charts = {kind: geometry(page, f'[data-tb-chart="{kind}"]') for kind in ("loss", "accuracy")}
    for kind, drawn in charts.items():
        texts = [item["text"] for item in drawn["legendItems"]]
        # One entry per run (its colour), then the line styles that tell the series apart.
        assert texts == ["first run", "second run", "third run", *key], (kind, texts)
        assert all(item["drawn"] for item in drawn["legendItems"]), drawn["legendItems"]
        assert apart(drawn["xtitle"], drawn["legend"]), drawn
    card = page.evaluate(
        "() => document.querySelector('.tb-chart-stack').getBoundingClientRect().width"
    )
    loss, accuracy = charts["loss"]["chart"], charts["accuracy"]["chart"]
    assert loss["width"] >= card - 2 and accuracy["width"] >= card - 2  # full width …
    assert accuracy["top"] >= loss["bottom"]  # … one under the other
    # The metrics table fits its card: no scrolling sideways, nothing cut off; nor the page.
    fit = page.evaluate(
        """() => {
          const wrap = document.querySelector('.tb-metrics-table').closest('.tb-table-wrap');
          return {table: wrap.scrollWidth, box: wrap.clientWidth,
                  page: document.documentElement.scrollWidth, view: window.innerWidth};
        }"""
    )
    assert fit["table"] <= fit["box"] and fit["page"] <= fit["view"], fit
    # Scatters: batch size and learning-rate multiplier vary (epochs do not), named readably.
    titles = page.evaluate(
        "() => Array.from(document.querySelectorAll('[data-tb-scatter]'))"
        ".map((gd) => gd.querySelector('.xtitle').textContent)"
    )
    assert titles == ["Batch size", "Learning-rate multiplier"]
    # A click on "validation (dotted)" in the legend hides validation in every run.
    page.locator('[data-tb-chart="loss"] .legend .traces', has_text="validation (dotted)").click()
    page.wait_for_function(
        """() => document.querySelector('[data-tb-chart="loss"]').data
          .filter((t) => t.meta.series === 'valid_loss')
          .every((t) => t.visible === 'legendonly')"""
    )
    assert not page.is_checked('[data-tb-series="valid"]')
    # … and greys its own entry; a second click brings validation back.
    keyed = """() => document.querySelector('[data-tb-chart="loss"]').data
      .filter((t) => t.meta.role === 'key' && t.meta.key === 'valid_loss')[0].visible"""
    assert page.evaluate(keyed) == "legendonly"
    page.locator('[data-tb-chart="loss"] .legend .traces', has_text="validation (dotted)").click()
    page.wait_for_function(
        """() => document.querySelector('[data-tb-chart="loss"]').data
          .filter((t) => t.meta.series === 'valid_loss').every((t) => t.visible === true)"""
    )
    assert page.is_checked('[data-tb-series="valid"]') and page.evaluate(keyed) is True
    page.locator('[data-tb-chart="loss"] .legend .traces', has_text="validation (dotted)").click()
    hidden = page.evaluate(
        """() => document.querySelector('[data-tb-chart="accuracy"]').data
          .filter((t) => t.meta.series === 'valid_accuracy').map((t) => t.visible)"""
    )
    assert hidden and set(hidden) == {"legendonly"}
