/* Shared chart helpers for pages showing server-built plotly figures (no dependencies besides
   Plotly itself for the drawing helpers). Exposes window.tuneboard:

   ema(values, weight)       TensorBoard's debiased EMA, the same algorithm as
                             dashboard/charts/smoothing.py: s = w*s + (1-w)*v, shown as
                             s / (1 - w^t), t counting finite values only; non-finite values
                             give null and do not reset; all-equal series come back unchanged.
   rawValues(trace)          customdata[i][0]: the raw (downsampled) y of a line trace.
   resmooth(gd, weight)      re-smooths every trace whose meta.role is "smoothed".
   showSeries(gd, series, on)  shows or hides every trace whose meta.series matches
                             (e.g. "valid_loss" across all runs of a comparison).
   setLogY(gd, on)           log or linear y axis.
   draw(element, figure)     Plotly.newPlot with the dashboard's config.

   Trace contract (dashboard/charts/traces.py): meta = {run, series, role}, and line/point
   traces carry customdata = [[raw y, step], ...]. */
(function (root) {
  "use strict";

  function isFiniteNumber(value) {
    return typeof value === "number" && isFinite(value);
  }

  function ema(values, weight) {
    if (!(weight >= 0 && weight < 1)) {
      throw new RangeError("smoothing weight must be in [0, 1), got " + weight);
    }
    var out = new Array(values.length);
    var first = null;
    var constant = true;
    var i;
    for (i = 0; i < values.length; i += 1) {
      if (!isFiniteNumber(values[i])) { continue; }
      if (first === null) { first = values[i]; } else if (values[i] !== first) { constant = false; }
    }
    var last = 0;
    var count = 0;
    for (i = 0; i < values.length; i += 1) {
      var value = values[i];
      if (!isFiniteNumber(value)) { out[i] = null; continue; }
      if (constant) { out[i] = value; continue; }
      last = last * weight + (1 - weight) * value;
      count += 1;
      out[i] = last / (1 - Math.pow(weight, count));
    }
    return out;
  }

  function rawValues(trace) {
    return (trace.customdata || []).map(function (row) { return row[0]; });
  }

  function indicesWhere(gd, test) {
    var indices = [];
    for (var i = 0; i < gd.data.length; i += 1) {
      if (test(gd.data[i].meta || {})) { indices.push(i); }
    }
    return indices;
  }

  function resmooth(gd, weight) {
    var indices = indicesWhere(gd, function (meta) { return meta.role === "smoothed"; });
    if (!indices.length) { return null; }
    var ys = indices.map(function (i) { return ema(rawValues(gd.data[i]), weight); });
    return root.Plotly.restyle(gd, {y: ys}, indices);
  }

  function showSeries(gd, series, on) {
    var indices = indicesWhere(gd, function (meta) { return meta.series === series; });
    if (!indices.length) { return null; }
    return root.Plotly.restyle(gd, {visible: on ? true : "legendonly"}, indices);
  }

  function setLogY(gd, on) {
    return root.Plotly.relayout(gd, {"yaxis.type": on ? "log" : "linear"});
  }

  function draw(element, figure) {
    return root.Plotly.newPlot(element, figure.data, figure.layout,
      {displaylogo: false, responsive: true});
  }

  var api = {
    ema: ema, rawValues: rawValues, resmooth: resmooth, showSeries: showSeries,
    setLogY: setLogY, draw: draw
  };
  root.tuneboard = root.tuneboard || {};
  for (var name in api) {
    if (Object.prototype.hasOwnProperty.call(api, name)) { root.tuneboard[name] = api[name]; }
  }
  // Lets the Python test suite load this file in Node and compare ema with smoothing.py.
  if (typeof module === "object" && module.exports) { module.exports = api; }
}(typeof window !== "undefined" ? window : globalThis));
