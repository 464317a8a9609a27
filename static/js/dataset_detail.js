/* Dataset page: draws the histograms from the figure JSON the server embedded, and while
   validation runs, polls the status view to move the progress bar, then reloads once. */
(function () {
  "use strict";

  function drawCharts() {
    if (!window.Plotly) { return; }
    var plots = document.querySelectorAll(".ds-plot[data-figure]");
    for (var i = 0; i < plots.length; i += 1) {
      var source = document.getElementById(plots[i].getAttribute("data-figure"));
      if (!source) { continue; }
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(plots[i], figure.data, figure.layout,
        {displaylogo: false, responsive: true});
    }
  }

  function followValidation() {
    var live = document.getElementById("validation-live");
    if (!live || !window.fetch) { return; }
    var url = live.getAttribute("data-status-url");
    var bar = document.getElementById("validation-bar");
    var text = document.getElementById("validation-text");
    var badge = document.getElementById("dataset-status");
    var base = 1000;
    var delay = base;
    var timer = null;
    var lastBytes = -1;
    var lastStatus = "";

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
          if (data.done) { window.location.reload(); return; }
          bar.max = data.progress_total || 1;
          bar.value = data.progress_bytes;
          badge.textContent = data.status === "validating" ? "Validating" : "Uploaded";
          text.textContent = data.status === "validating" ? data.percent + "% read" : "Waiting for a worker…";
          // Nothing moved (e.g. queued behind other work): ask less often, up to every 10 s.
          var moved = data.progress_bytes !== lastBytes || data.status !== lastStatus;
          delay = moved ? base : Math.min(delay * 1.5, 10000);
          lastBytes = data.progress_bytes;
          lastStatus = data.status;
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

  drawCharts();
  followValidation();
})();
