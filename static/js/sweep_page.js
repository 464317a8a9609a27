/* A sweep's page: follows the sweep live. Polls its JSON (live_poll.js: slower while nothing
   moves, paused while the tab is hidden), replaces the progress section, redraws the parallel
   coordinates, and asks the comparison (compare_page.js) for new curves as runs train. A run
   launched or ended changes the comparison's columns and tables: the page loads again. */
(function () {
  "use strict";

  var status = document.getElementById("tb-sweep-status");
  if (!status) { return; }
  var parallelElement = document.querySelector("[data-tb-parallel]");
  var figureScript = document.getElementById("tb-parallel-figure");
  var compare = document.querySelector("[data-tb-compare]");
  var version = status.dataset.version;
  var jobIds = status.dataset.jobIds || "";
  var settled = status.dataset.settled;

  function drawParallel(figure) {
    if (!parallelElement || !window.tuneboardPlotly) { return; }
    window.tuneboardPlotly(function (Plotly) {
      Plotly.react(parallelElement, figure.data, figure.layout, {displaylogo: false, responsive: true});
    });
  }

  if (figureScript) { drawParallel(JSON.parse(figureScript.textContent)); }
  if (status.dataset.active !== "true" || !window.tuneboardPoll) { return; }

  window.tuneboardPoll(status.dataset.liveUrl, function (data) {
    var ids = data.job_ids.join(",");
    if ((ids !== jobIds && data.job_ids.length > 1) ||
        (String(data.settled) !== settled && data.job_ids.length > 1)) {
      window.location.reload();
      return "stop";
    }
    if (data.version === version) { return data.active ? "idle" : "stop"; }
    version = data.version;
    status.innerHTML = data.html;
    drawParallel(data.parallel);
    if (compare) { compare.dispatchEvent(new Event("tb:refresh")); }
    return data.active ? "moved" : "stop";
  });
})();
