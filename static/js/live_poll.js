/* Shared by the live pages (dataset validation, history import, evaluation): poll a small JSON
   view, ask less often while nothing moves or the server fails, and stop while the tab is
   hidden (visibilitychange starts it again).

   tuneboardPoll(url, onData): onData(data) answers "moved" (poll again soon), "idle" (nothing
   new: back off, up to every 10 s) or "stop" (done: no more polls). */
(function () {
  "use strict";

  var BASE_MS = 1000;
  var IDLE_MAX_MS = 10000;
  var ERROR_MAX_MS = 30000;

  window.tuneboardPoll = function (url, onData) {
    var delay = BASE_MS;
    var timer = null;
    var stopped = false;

    function schedule() {
      clearTimeout(timer);
      if (!stopped && !document.hidden) { timer = setTimeout(poll, delay); }
    }

    function poll() {
      fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          var outcome = onData(data);
          if (outcome === "stop") { stopped = true; return; }
          delay = outcome === "moved" ? BASE_MS : Math.min(delay * 1.5, IDLE_MAX_MS);
          schedule();
        })
        .catch(function () {
          delay = Math.min(delay * 2, ERROR_MAX_MS);
          schedule();
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (stopped) { return; }
      if (document.hidden) { clearTimeout(timer); } else { delay = BASE_MS; poll(); }
    });
    schedule();
  };
})();
