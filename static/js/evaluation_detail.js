/* Evaluation page: draws the mean-score bar chart, and while the evaluation runs, polls the
   status view (live_poll.js) to move the progress bar and swaps in fresh server-rendered
   results (summary, grid and header actions) every few polls and once more when it ends — no
   page reload. */
(function () {
  "use strict";

  // Draws (again) once plotly.js has loaded, after the first paint (plotly_loader.js).
  function whenPlotly(draw) {
    if (window.tuneboardPlotly) { window.tuneboardPlotly(draw); }
  }

  var COLORS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563"];

  function drawChart(Plotly) {
    var el = document.getElementById("evaluation-chart");
    var source = document.getElementById("evaluation-chart-data");
    if (!el || !source) { return; }
    var data = JSON.parse(source.textContent);
    var traces = data.metrics.map(function (metric, i) {
      return {
        type: "bar",
        name: metric.label,
        x: data.models,
        y: metric.means,
        marker: {color: COLORS[i % COLORS.length]},
        error_y: {
          type: "data",
          symmetric: false,
          array: metric.high.map(function (h, j) { return h === null ? null : h - metric.means[j]; }),
          arrayminus: metric.low.map(function (l, j) { return l === null ? null : metric.means[j] - l; })
        },
        hovertemplate: "%{x}<br>" + metric.label.replace(/[<>&]/g, "") + ": %{y:.2f}<extra></extra>"
      };
    });
    Plotly.react(el, traces, {
      barmode: "group",
      height: 380,
      margin: {t: 20, r: 10, b: 40, l: 50},
      yaxis: {title: {text: "mean score"}, range: [0, 1.05]},
      xaxis: {automargin: true},
      legend: {orientation: "h", y: 1.12}
    }, {displaylogo: false, responsive: true});
  }

  function follow() {
    var live = document.getElementById("evaluation-live");
    var results = document.getElementById("evaluation-results");
    if (!live || !results || !window.fetch || !window.tuneboardPoll ||
        live.getAttribute("data-terminal") === "1") { return; }
    var bar = document.getElementById("evaluation-bar");
    var text = document.getElementById("evaluation-text");
    var badge = document.getElementById("evaluation-status");
    var lastDone = -1;
    var polls = 0;

    function fragmentUrl() {
      var target = new URL(results.getAttribute("data-fragment-url"), window.location.href);
      target.searchParams.set("fragment", "results");
      return target.toString();
    }

    function refreshResults() {
      return fetch(fragmentUrl(), {credentials: "same-origin"})
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          // Server-rendered (and escaped) markup, parsed inertly: scripts in it never run.
          var doc = new DOMParser().parseFromString(html, "text/html");
          var actions = doc.querySelector('template[data-ev-part="actions"]');
          var target = document.getElementById("evaluation-actions");
          if (actions && target) {
            target.replaceChildren(document.importNode(actions.content, true));
            actions.remove();
          }
          results.replaceChildren.apply(results, Array.from(doc.body.childNodes, function (node) {
            return document.importNode(node, true);
          }));
          whenPlotly(drawChart);
        });
    }

    window.tuneboardPoll(live.getAttribute("data-status-url"), function (data) {
      polls += 1;
      bar.value = data.percent;
      bar.textContent = data.percent + "%";
      badge.textContent = data.status_display;
      var line = data.cells_done + " of " + data.cells_total + " cells answered";
      if (data.cells_failed) { line += ", " + data.cells_failed + " failed"; }
      if (data.judge_total) { line += "; " + data.judge_done + " of " + data.judge_total + " judgements"; }
      text.textContent = line + ".";
      if (data.terminal) {
        badge.className = "badge " + (data.status === "succeeded" ? "badge-ok" : data.status === "failed" ? "badge-bad" : "badge-warn");
        live.setAttribute("data-terminal", "1");
        refreshResults();
        return "stop";
      }
      var done = data.cells_done + data.judge_done;
      var moved = done !== lastDone;
      lastDone = done;
      if (moved && polls % 3 === 0) { refreshResults(); }
      return moved ? "moved" : "idle";
    });
  }

  whenPlotly(drawChart);
  follow();
})();
