/* Connection page: copy the webhook URL, and while an import runs, poll its small JSON view
   for the progress bar (jobs done / total, files downloaded). Text only: nothing from the
   server is parsed as HTML. One reload when the import ends, for the final table. */
(function () {
  "use strict";

  var copy = document.querySelector("button[data-copy]");
  if (copy) {
    copy.addEventListener("click", function () {
      var target = document.getElementById(copy.getAttribute("data-copy"));
      if (target && navigator.clipboard) { navigator.clipboard.writeText(target.textContent.trim()); }
    });
  }

  var box = document.getElementById("import-progress");
  if (!box) { return; }
  var bar = document.getElementById("import-bar");
  var text = document.getElementById("import-text");
  var state = document.getElementById("import-state");
  var lastDone = -1;

  function show(run) {
    bar.max = Math.max(1, run.jobs_total || 0);
    bar.value = run.jobs_done || 0;
    state.textContent = String(run.status || "");
    text.textContent = (run.jobs_done || 0) + " of " + (run.jobs_total || 0) + " jobs done · " +
      (run.files_downloaded || 0) + " files downloaded · " + (run.files_missing || 0) +
      " missing · " + (run.errors || 0) + " errors";
  }

  if (!window.tuneboardPoll) { return; }
  window.tuneboardPoll(box.getAttribute("data-status-url"), function (run) {
    show(run);
    if (!run.active) { window.location.reload(); return "stop"; }
    var moved = run.jobs_done !== lastDone;
    lastDone = run.jobs_done;
    return moved ? "moved" : "idle";
  });
}());
