/* The comparison of runs (compare page and shared comparisons): overlaid loss and accuracy
   charts (one legend entry per run, plus a key of line styles that toggles series), the
   best-loss scatters, and the hyperparameter "differences only" toggle.

   Reads json_script blocks named by the container's data attributes: figures, scatters and a
   config {figures_url, x_axis, png_name}. Smoothing, log scale and series toggles act on the
   drawn charts; a new x axis asks figures_url for new figures. */
(function () {
  "use strict";

  var root = document.querySelector("[data-tb-compare]");
  if (!root) { return; }
  var hpToggle = root.querySelector("[data-tb-hp-toggle]");
  var hpTable = root.querySelector("[data-tb-hp-table]");

  // Differences only: works without charts, so it comes first.
  if (hpToggle && hpTable) {
    hpToggle.addEventListener("click", function (event) {
      event.preventDefault();
      var diffOnly = hpTable.getAttribute("data-diff-only") !== "true";
      hpTable.setAttribute("data-diff-only", diffOnly ? "true" : "false");
      Array.prototype.forEach.call(hpTable.querySelectorAll('tr[data-same="true"]'), function (row) {
        row.hidden = diffOnly;
      });
      hpToggle.textContent = diffOnly ? hpToggle.getAttribute("data-all-label") : hpToggle.getAttribute("data-diff-label");
      if (hpToggle.href && window.history && window.history.replaceState) {
        var url = new URL(window.location.href);
        if (diffOnly) { url.searchParams.delete("hp"); } else { url.searchParams.set("hp", "all"); }
        window.history.replaceState(null, "", url.toString());
      }
    });
  }

  // The charts: once plotly.js has loaded, after the first paint (plotly_loader.js).
  if (!window.tuneboardPlotly || !window.tuneboard) { return; }
  window.tuneboardPlotly(function (Plotly) {
    var tb = window.tuneboard;
    var config = JSON.parse(document.getElementById(root.dataset.configId).textContent);
    var figures = JSON.parse(document.getElementById(root.dataset.figuresId).textContent);
    var scatters = JSON.parse(document.getElementById(root.dataset.scattersId).textContent);
    var KINDS = ["loss", "accuracy"];
    var charts = {};
    var descriptions = {};
    KINDS.forEach(function (kind) {
      charts[kind] = root.querySelector('[data-tb-chart="' + kind + '"]');
      descriptions[kind] = root.querySelector('[data-tb-desc="' + kind + '"]');
    });
    var smoothingInput = root.querySelector("[data-tb-smoothing]");
    var smoothingValue = root.querySelector("[data-tb-smoothing-value]");
    var axisSelect = root.querySelector("[data-tb-x-axis]");
    var logInput = root.querySelector("[data-tb-log-y]");
    var state = {smoothing: 0, logY: false, hidden: {}};

    function plotConfig(name) {
      return {
        displaylogo: false,
        responsive: true,
        toImageButtonOptions: {format: "png", filename: (config.png_name || "comparison") + "-" + name, scale: 2}
      };
    }

    // A click on a line-style entry of the legend ("validation (dotted)") toggles that series
    // in every run, like its checkbox; a click on a run toggles the run (plotly's own).
    function onLegendClick(event) {
      var meta = (event.data && event.data[event.curveNumber] && event.data[event.curveNumber].meta) || {};
      if (meta.role !== "key") { return true; }
      var group = String(meta.key).replace(/_(loss|accuracy)$/, "");
      var box = root.querySelector('[data-tb-series="' + group + '"]');
      if (box) {
        box.checked = !box.checked;
        box.dispatchEvent(new Event("change"));
      }
      return false;
    }

    // Greys a line-style entry of the legend while its series is hidden.
    function showKey(gd, series, on) {
      var indices = [];
      (gd.data || []).forEach(function (trace, i) {
        if (trace.meta && trace.meta.role === "key" && trace.meta.key === series) { indices.push(i); }
      });
      if (indices.length) { Plotly.restyle(gd, {visible: on ? true : "legendonly"}, indices); }
    }

    function draw(kind, figure) {
      var layout = figure.layout;
      if (kind === "loss") { layout.yaxis.type = state.logY ? "log" : "linear"; }
      return Plotly.react(charts[kind], figure.data, layout, plotConfig(kind)).then(function () {
        var gd = charts[kind];
        if (!gd.dataset.tbLegendClick && gd.on) {
          gd.on("plotly_legendclick", onLegendClick);
          gd.dataset.tbLegendClick = "on";
        }
        if (state.smoothing) { tb.resmooth(gd, state.smoothing); }
        Object.keys(state.hidden).forEach(function (group) {
          if (state.hidden[group]) {
            tb.showSeries(gd, group + "_" + kind, false);
            showKey(gd, group + "_" + kind, false);
          }
        });
      });
    }

    function withParams(url, params) {
      var query = Object.keys(params).map(function (key) {
        return encodeURIComponent(key) + "=" + encodeURIComponent(params[key]);
      }).join("&");
      return url + (url.indexOf("?") === -1 ? "?" : "&") + query;
    }

    KINDS.forEach(function (kind) { draw(kind, figures[kind]); });
    // A live page (a sweep's) sends new figures of the same runs as they train; the chosen
    // axis, smoothing and hidden series stay as they are.
    root.addEventListener("tb:refresh", function () {
      var url = withParams(config.figures_url, {x_axis: axisSelect ? axisSelect.value : "step"});
      fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          KINDS.forEach(function (kind) {
            draw(kind, data.figures[kind]);
            if (descriptions[kind]) { descriptions[kind].textContent = data.descriptions[kind]; }
          });
        })
        .catch(function () { /* the next poll asks again */ });
    });
    scatters.forEach(function (figure, index) {
      var element = root.querySelector('[data-tb-scatter="' + index + '"]');
      if (element) { Plotly.newPlot(element, figure.data, figure.layout, plotConfig("scatter-" + index)); }
    });

    if (smoothingInput) {
      smoothingInput.addEventListener("input", function () {
        state.smoothing = Math.min(0.99, Math.max(0, parseFloat(smoothingInput.value) || 0));
        if (smoothingValue) { smoothingValue.textContent = state.smoothing.toFixed(2); }
        KINDS.forEach(function (kind) { tb.resmooth(charts[kind], state.smoothing); });
      });
    }
    if (logInput) {
      logInput.addEventListener("change", function () {
        state.logY = logInput.checked;
        tb.setLogY(charts.loss, state.logY);
      });
    }
    if (axisSelect) {
      axisSelect.addEventListener("change", function () {
        var url = withParams(config.figures_url, {
          x_axis: axisSelect.value, smoothing: state.smoothing, log_y: state.logY ? "true" : "false"
        });
        fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
          .then(function (response) {
            if (!response.ok) { throw new Error("HTTP " + response.status); }
            return response.json();
          })
          .then(function (data) {
            if (axisSelect.value !== data.x_axis) { axisSelect.value = data.x_axis; }
            KINDS.forEach(function (kind) {
              draw(kind, data.figures[kind]);
              if (descriptions[kind]) { descriptions[kind].textContent = data.descriptions[kind]; }
            });
          })
          .catch(function () { axisSelect.value = "step"; });
      });
    }
    Array.prototype.forEach.call(root.querySelectorAll("[data-tb-series]"), function (box) {
      box.addEventListener("change", function () {
        var group = box.getAttribute("data-tb-series");
        state.hidden[group] = !box.checked;
        KINDS.forEach(function (kind) {
          tb.showSeries(charts[kind], group + "_" + kind, box.checked);
          showKey(charts[kind], group + "_" + kind, box.checked);
        });
      });
    });
  });
}());
