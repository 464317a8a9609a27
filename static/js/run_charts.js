/* A run's loss and accuracy charts (the run-charts include and a shared run's page).

   Reads two json_script blocks named by the container's data attributes: the server-built
   figures and a config {figures_url, metrics_url, last_step, terminal, x_axis, conversion,
   png_name}. Smoothing, the log scale and the series toggles act on the drawn charts; a new x
   axis asks figures_url for new figures. While the run is not terminal, metrics_url?after_step=N
   returns only the newer points and Plotly.extendTraces appends them (slower when the tab is
   hidden, backing off on errors, stopping once the run is terminal). On the job page
   (config.live_from_page) the page's own poll brings the points instead: see the end. */
(function () {
  "use strict";

  var root = document.querySelector("[data-tb-run-charts]");
  if (!root || !window.tuneboardPlotly || !window.tuneboard) { return; }
  var config = JSON.parse(document.getElementById(root.dataset.configId).textContent);
  var PLOTLY_WAIT_MS = 10000;
  if (config.live_from_page) {
    // Until the charts are drawn, the job page holds its poll (as while new figures load), so
    // the progress text never runs ahead of the chart; not for ever, should plotly.js fail.
    var since = Date.now();
    window.tuneboardRunCharts = {
      lastStep: function () { return config.last_step || 0; },
      busy: function () { return Date.now() - since < PLOTLY_WAIT_MS; },
      apply: function () { return Promise.resolve(); }
    };
  }
  // Everything else acts on the charts: it starts once plotly.js has loaded, after the first
  // paint (plotly_loader.js).
  window.tuneboardPlotly(function (Plotly) {
    var tb = window.tuneboard;
    var figures = JSON.parse(document.getElementById(root.dataset.figuresId).textContent);
    var KINDS = ["loss", "accuracy"];
    var POLL_MS = 5000;
    var HIDDEN_POLL_MS = 60000;
    var MAX_BACKOFF_MS = 120000;
    var REFETCH_AFTER_POINTS = 4000;

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
    var live = root.querySelector("[data-tb-live]");
    var diagnosisSlot = root.querySelector("[data-tb-diagnosis]");

    var state = {
      xAxis: config.x_axis || "step",
      smoothing: 0,
      logY: false,
      lastStep: config.last_step || 0,
      terminal: !!config.terminal,
      conversion: config.conversion || {},
      hidden: {},
      errors: 0,
      timer: null,
      fetching: false,
      pending: null  // the figures request in flight, if any
    };

    function plotConfig(kind) {
      return {
        displaylogo: false,
        responsive: true,
        toImageButtonOptions: {format: "png", filename: (config.png_name || "run") + "-" + kind, scale: 2}
      };
    }

    function seriesNames(kind, group) {
      return group === "checkpoints" ? ["checkpoints"] : [group + "_" + kind];
    }

    function applyState(kind) {
      var gd = charts[kind];
      if (state.smoothing) { tb.resmooth(gd, state.smoothing); }
      Object.keys(state.hidden).forEach(function (group) {
        if (state.hidden[group]) {
          seriesNames(kind, group).forEach(function (name) { tb.showSeries(gd, name, false); });
        }
      });
    }

    function draw(kind, figure) {
      var layout = figure.layout;
      if (kind === "loss") { layout.yaxis.type = state.logY ? "log" : "linear"; }
      return Plotly.react(charts[kind], figure.data, layout, plotConfig(kind)).then(function () {
        applyState(kind);
      });
    }

    function withParams(url, params) {
      var query = Object.keys(params).map(function (key) {
        return encodeURIComponent(key) + "=" + encodeURIComponent(params[key]);
      }).join("&");
      return url + (url.indexOf("?") === -1 ? "?" : "&") + query;
    }

    function getJSON(url) {
      return fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        });
    }

    function refetch() {
      if (state.fetching) { return state.pending; }
      state.fetching = true;
      var params = {
        x_axis: axisSelect ? axisSelect.value : state.xAxis,
        smoothing: state.smoothing,
        log_y: state.logY ? "true" : "false"
      };
      // On the job page: no step newer than the page's last poll (the server ignores it once
      // the run is finished).
      if (config.live_from_page) { params.up_to_step = state.lastStep; }
      var url = withParams(config.figures_url, params);
      state.pending = getJSON(url).then(function (data) {
        state.xAxis = data.x_axis;
        if (axisSelect && axisSelect.value !== data.x_axis) { axisSelect.value = data.x_axis; }
        if (data.conversion) { state.conversion = data.conversion; }
        if (typeof data.last_step === "number") { state.lastStep = Math.max(state.lastStep, data.last_step); }
        if (data.diagnosis_html !== undefined && diagnosisSlot) { diagnosisSlot.innerHTML = data.diagnosis_html; }
        KINDS.forEach(function (kind) {
          draw(kind, data.figures[kind]);
          if (descriptions[kind]) { descriptions[kind].textContent = data.descriptions[kind]; }
        });
      }).catch(function () {
        if (live) { live.textContent = "Could not load the charts; try again in a moment."; }
      }).then(function () { state.fetching = false; state.pending = null; });
      return state.pending;
    }

    function xOf(step) {
      if (state.xAxis === "epoch" && state.conversion.steps_per_epoch) { return step / state.conversion.steps_per_epoch; }
      if (state.xAxis === "tokens" && state.conversion.tokens_per_step) { return step * state.conversion.tokens_per_step; }
      return step;
    }

    // Appends new points to the traces of their series; true when a series has no trace yet
    // (the first validation point, or a chart that was empty), which needs new figures.
    function extend(points) {
      var missing = false;
      KINDS.forEach(function (kind) {
        var gd = charts[kind];
        if (!gd || !gd.data) { missing = true; return; }
        ["train_", "valid_", "full_valid_"].forEach(function (prefix) {
          var name = prefix + kind;
          var fresh = points.filter(function (p) { return typeof p[name] === "number"; });
          if (!fresh.length) { return; }
          var found = false;
          for (var i = 0; i < gd.data.length; i += 1) {
            var meta = gd.data[i].meta || {};
            if (meta.series !== name || ["smoothed", "raw", "points"].indexOf(meta.role) === -1) { continue; }
            found = true;
            var update = {
              x: [fresh.map(function (p) { return xOf(p.step); })],
              y: [fresh.map(function (p) { return p[name]; })]
            };
            if (meta.role !== "raw") {
              update.customdata = [fresh.map(function (p) { return [p[name], p.step]; })];
            }
            Plotly.extendTraces(gd, update, [i]);
            if (gd.data[i].x.length > REFETCH_AFTER_POINTS) { missing = true; }
          }
          if (!found) { missing = true; }
        });
        if (state.smoothing) { tb.resmooth(gd, state.smoothing); }
      });
      return missing;
    }

    function schedule(ms) {
      clearTimeout(state.timer);
      if (!state.terminal) { state.timer = setTimeout(poll, ms); }
    }

    // Applies one live update (new points, state, diagnosis); false once the run is final.
    function applyUpdate(data) {
      var needsFigures = data.points.length ? extend(data.points) : false;
      state.lastStep = Math.max(state.lastStep, data.last_step || 0);
      if (live) {
        live.textContent = data.terminal
          ? "The run is " + data.status_display.toLowerCase() + "; the charts are final."
          : "Live: step " + state.lastStep + (data.total_steps ? " of " + data.total_steps : "") + ".";
      }
      if (data.diagnosis_html !== undefined && diagnosisSlot) { diagnosisSlot.innerHTML = data.diagnosis_html; }
      if (data.terminal) {
        state.terminal = true;
        refetch();  // final checkpoints, best point and diagnosis
        return false;
      }
      if (needsFigures) { refetch(); }
      return true;
    }

    function poll() {
      if (state.terminal) { return; }
      if (document.hidden) { schedule(HIDDEN_POLL_MS); return; }
      getJSON(withParams(config.metrics_url, {after_step: state.lastStep})).then(function (data) {
        state.errors = 0;
        if (applyUpdate(data)) { schedule(data.has_more ? 0 : POLL_MS); }
      }).catch(function () {
        state.errors += 1;
        schedule(Math.min(MAX_BACKOFF_MS, POLL_MS * Math.pow(2, state.errors)));
      });
    }

    KINDS.forEach(function (kind) { draw(kind, figures[kind]); });

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
      axisSelect.addEventListener("change", function () { refetch(); });
    }
    Array.prototype.forEach.call(root.querySelectorAll("[data-tb-series]"), function (box) {
      box.addEventListener("change", function () {
        var group = box.getAttribute("data-tb-series");
        state.hidden[group] = !box.checked;
        KINDS.forEach(function (kind) {
          seriesNames(kind, group).forEach(function (name) { tb.showSeries(charts[kind], name, box.checked); });
        });
      });
    });
    if (config.live_from_page) {
      // The job page polls once for everything it shows (job_detail.js) and hands the charts
      // their share, in the same turn as the status, progress and events.
      window.tuneboardRunCharts = {
        lastStep: function () { return state.lastStep; },
        // While new figures load, the page holds its next poll: they are drawn up to the
        // step it shows, and nothing newer may overtake them.
        busy: function () { return state.fetching; },
        // Resolves once the charts show the update (at once, or when new figures are drawn),
        // so the page can move its status and progress text with them.
        apply: function (data) {
          if (!state.terminal) { applyUpdate(data); }
          return state.pending || Promise.resolve();
        }
      };
      return;
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && !state.terminal) { schedule(0); }
    });
    if (!state.terminal) { schedule(POLL_MS); }
  });
}());
