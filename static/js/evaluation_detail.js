/* Evaluation page: draws the mean-score bar chart, and while the evaluation runs, polls the
   status view to move the progress bar and swaps in fresh server-rendered results (summary and
   grid) every few polls and once more when it ends — no page reload. */
(function () {
  "use strict";

  var COLORS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563"];

  function drawChart() {
    var el = document.getElementById("evaluation-chart");
    var source = document.getElementById("evaluation-chart-data");
    if (!el || !source || !window.Plotly) { return; }
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
    window.Plotly.react(el, traces, {
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
    if (!live || !results || !window.fetch || live.getAttribute("data-terminal") === "1") { return; }
    var url = live.getAttribute("data-status-url");
    var bar = document.getElementById("evaluation-bar");
    var text = document.getElementById("evaluation-text");
    var badge = document.getElementById("evaluation-status");
    var base = 1000;
    var delay = base;
    var timer = null;
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
          // Rendered and escaped by the server's templates.
          var holder = document.createElement("template");
          holder.innerHTML = html;
          var actions = holder.content.querySelector('template[data-ev-part="actions"]');
          var target = document.getElementById("evaluation-actions");
          if (actions && target) {
            target.replaceChildren(actions.content.cloneNode(true));
            actions.remove();
          }
          results.replaceChildren(holder.content);
          drawChart();
        });
    }

    function schedule() {
      clearTimeout(timer);
      // A hidden tab stops polling; visibilitychange starts it again.
      if (!document.hidden) { timer = setTimeout(poll, delay); }
    }

    function poll() {
      fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
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
            return;
          }
          var moved = data.cells_done + data.judge_done !== lastDone;
          lastDone = data.cells_done + data.judge_done;
          if (moved && polls % 3 === 0) { refreshResults(); }
          // Nothing moved (queued behind other work): ask less often, up to every 10 s.
          delay = moved ? base : Math.min(delay * 1.5, 10000);
          schedule();
        })
        .catch(function () {
          delay = Math.min(delay * 2, 30000);
          schedule();
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { delay = base; poll(); } else { clearTimeout(timer); }
    });
    schedule();
  }

  drawChart();
  follow();
})();
