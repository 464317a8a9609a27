/* Dataset page: draws the histograms from the figure JSON the server embedded, and while
   validation runs, polls the status view to move the progress bar, then reloads once. */
(function () {
  "use strict";

  function drawCharts(Plotly) {
    var plots = document.querySelectorAll(".ds-plot[data-figure]");
    for (var i = 0; i < plots.length; i += 1) {
      var source = document.getElementById(plots[i].getAttribute("data-figure"));
      if (!source) { continue; }
      var figure = JSON.parse(source.textContent);
      Plotly.newPlot(plots[i], figure.data, figure.layout,
        {displaylogo: false, responsive: true});
    }
  }

  function followValidation() {
    var live = document.getElementById("validation-live");
    if (!live || !window.fetch || !window.tuneboardPoll) { return; }
    var bar = document.getElementById("validation-bar");
    var text = document.getElementById("validation-text");
    var badge = document.getElementById("dataset-status");
    var lastBytes = -1;
    var lastStatus = "";

    window.tuneboardPoll(live.getAttribute("data-status-url"), function (data) {
      if (data.done) { window.location.reload(); return "stop"; }
      bar.max = data.progress_total || 1;
      bar.value = data.progress_bytes;
      badge.textContent = data.status === "validating" ? "Validating" : "Uploaded";
      text.textContent = data.status === "validating" ? data.percent + "% read" : "Waiting for a worker…";
      // Nothing moved (e.g. queued behind other work): the poller asks less often.
      var moved = data.progress_bytes !== lastBytes || data.status !== lastStatus;
      lastBytes = data.progress_bytes;
      lastStatus = data.status;
      return moved ? "moved" : "idle";
    });
  }

  // Once plotly.js has loaded, after the first paint (plotly_loader.js; absent without charts).
  if (window.tuneboardPlotly) { window.tuneboardPlotly(drawCharts); }
  followValidation();
})();
