/* Job page: copy buttons for model names, and while the job is not finished, polls the live
   JSON view for status, progress and new events (text only: never parsed as HTML). Polling
   stops when the tab is hidden, slows down while nothing changes, and ends with one reload
   when the status changes (the controls depend on it). */
(function () {
  "use strict";

  function setupCopy() {
    var buttons = document.querySelectorAll("button[data-copy]");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].addEventListener("click", function (event) {
        var button = event.currentTarget;
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (!target || !navigator.clipboard) { return; }
        navigator.clipboard.writeText(target.textContent.trim()).then(function () {
          var label = button.firstChild;
          var before = label.textContent;
          label.textContent = "Copied";
          setTimeout(function () { label.textContent = before; }, 1500);
        });
      });
    }
  }

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    td.textContent = text;
    return td;
  }

  function eventRow(event) {
    var row = document.createElement("tr");
    var when = document.createElement("td");
    when.className = "jb-time";
    var time = document.createElement("time");
    time.setAttribute("datetime", event.created_at || "");
    time.textContent = (event.created_at || "").slice(0, 19).replace("T", " ");
    when.appendChild(time);
    row.appendChild(when);
    var levelCell = document.createElement("td");
    var badge = document.createElement("span");
    var level = String(event.level || "");
    badge.className = "badge" + (level === "error" ? " badge-bad" : level === "warn" ? " badge-warn" : "");
    badge.textContent = level;
    levelCell.appendChild(badge);
    row.appendChild(levelCell);
    row.appendChild(cell(String(event.message || ""), "jb-wrap"));
    return row;
  }

  function follow() {
    var live = document.getElementById("job-live");
    if (!live || !window.fetch || live.getAttribute("data-terminal") === "true") { return; }
    var url = live.getAttribute("data-live-url");
    var after = Number(live.getAttribute("data-after")) || 0;
    var level = live.getAttribute("data-level") || "";
    var statusBadge = document.getElementById("job-status");
    var initialStatus = statusBadge.getAttribute("data-status");
    var name = document.getElementById("job-name");
    var bar = document.getElementById("job-progress");
    var progressText = document.getElementById("job-progress-text");
    var body = document.getElementById("events-body");
    var tokens = document.getElementById("job-trained-tokens");
    var base = 3000;
    var delay = base;
    var timer = null;
    var stopped = false;

    function schedule(wait) {
      clearTimeout(timer);
      if (!stopped && !document.hidden) { timer = setTimeout(poll, wait); }
    }

    function showProgress(data) {
      var p = data.progress || {};
      if (p.total_steps) {
        bar.max = p.total_steps;
        bar.value = p.last_step || 0;
        var text = "Step " + Number(p.last_step || 0).toLocaleString("en-US") + " of " +
          Number(p.total_steps).toLocaleString("en-US");
        if (p.percent !== null && p.percent !== undefined) { text += " (" + p.percent + "%)"; }
        if (data.estimated_finish) { text += "; estimated finish " + data.estimated_finish.slice(0, 19).replace("T", " "); }
        progressText.textContent = text + ".";
      }
      if (tokens && data.trained_tokens !== null && data.trained_tokens !== undefined) {
        tokens.textContent = Number(data.trained_tokens).toLocaleString("en-US");
      }
    }

    function addEvents(events) {
      var empty = document.getElementById("events-empty");
      if (events.length && empty) { empty.parentNode.removeChild(empty); }
      for (var i = 0; i < events.length; i += 1) {
        body.insertBefore(eventRow(events[i]), body.firstChild);
      }
    }

    function poll() {
      var query = "?after=" + encodeURIComponent(after) + (level ? "&level=" + encodeURIComponent(level) : "");
      fetch(url + query, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          var moved = data.last_event_id !== after;
          after = data.last_event_id;
          addEvents(data.events || []);
          name.textContent = data.name;
          statusBadge.textContent = data.status_display;
          showProgress(data);
          if (data.status !== initialStatus || data.terminal) {
            // Controls, models and checkpoints depend on the status: show them fresh, once.
            stopped = true;
            window.location.reload();
            return;
          }
          if (data.has_more) { schedule(0); return; }
          delay = moved ? base : Math.min(delay * 1.5, 30000);
          schedule(delay);
        })
        .catch(function () {
          delay = Math.min(delay * 2, 60000);
          schedule(delay);
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (document.hidden) { clearTimeout(timer); } else { delay = base; schedule(0); }
    });
    schedule(delay);
  }

  setupCopy();
  follow();
})();
