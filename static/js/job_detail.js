/* Job page: copy buttons for model names, and while the job is not finished, one poll of the
   live JSON view brings everything the page shows, applied together in one turn: name,
   status, progress, new events (text only: never parsed as HTML), the status-dependent
   sections (badge, problems, timeline, provider ids, models and costs, controls,
   checkpoints: data-job-section, rendered and escaped by the server's own templates, sent
   only when their key changed) and the charts' new points with their diagnosis (handed to
   run_charts.js), all as of the same step. While the page polls, the server syncs the job
   with its provider every few seconds. Polling stops while the tab is hidden, slows down
   while nothing changes, and ends once the job is finished and its final sections are shown.
   A control asked for on the page (cancel, pause, resume, sync, deleting the model) is done by
   a worker: while it is under way the page keeps polling, even for a finished job, and shows
   its outcome when it is done. */
(function () {
  "use strict";

  function setupCopy() {
    // Delegated, so that the buttons of swapped-in sections work too.
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
      if (!button) { return; }
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

  // Whether two copies of a section show the same, leaving out the CSRF token (masked afresh
  // in every response).
  function withoutTokens(node) {
    var copy = node.cloneNode(true);
    var tokens = copy.querySelectorAll('input[name="csrfmiddlewaretoken"]');
    for (var i = 0; i < tokens.length; i += 1) { tokens[i].removeAttribute("value"); }
    return copy;
  }

  function same(a, b) { return withoutTokens(a).isEqualNode(withoutTokens(b)); }

  function focusKey(el) {
    return el.tagName + "|" + (el.getAttribute("href") || "") + "|" + el.textContent.trim();
  }

  // Replaces the page's copy of each section the fragment holds, when it differs; keeps the
  // keyboard focus on the same control when the new section still has it.
  function swapSections(html) {
    var fragment = new DOMParser().parseFromString(html, "text/html");
    var fresh = fragment.querySelectorAll("[data-job-section]");
    for (var i = 0; i < fresh.length; i += 1) {
      var name = fresh[i].getAttribute("data-job-section");
      var current = document.querySelector('[data-job-section="' + name + '"]');
      if (!current || same(current, fresh[i])) { continue; }
      var active = document.activeElement;
      var key = active && active !== document.body && current.contains(active) ? focusKey(active) : null;
      var node = document.importNode(fresh[i], true);
      current.parentNode.replaceChild(node, current);
      if (key) {
        var candidates = node.querySelectorAll("a[href], button, input, select, textarea, summary");
        for (var j = 0; j < candidates.length; j += 1) {
          if (focusKey(candidates[j]) === key) { candidates[j].focus(); break; }
        }
      }
    }
  }

  function follow() {
    var live = document.getElementById("job-live");
    if (!live || !window.fetch || !window.DOMParser) { return; }
    if (live.getAttribute("data-terminal") === "true" && live.getAttribute("data-control-pending") !== "true") { return; }
    var url = live.getAttribute("data-live-url");
    var after = Number(live.getAttribute("data-after")) || 0;
    var level = live.getAttribute("data-level") || "";
    // The sections the page shows, by the key the server gave them: it sends them again,
    // in the same answer, only when they changed.
    var sectionsKey = live.getAttribute("data-sections-key") || "";
    var name = document.getElementById("job-name");
    var bar = document.getElementById("job-progress");
    var progressText = document.getElementById("job-progress-text");
    var body = document.getElementById("events-body");
    var eventsNote = document.getElementById("events-live");
    var base = 2000;
    var idleMax = 10000;  // keeps the job "watched" (synced every few seconds) while open
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
        if (data.estimated_finish && !data.terminal) { text += "; estimated finish " + data.estimated_finish.slice(0, 19).replace("T", " "); }
        progressText.textContent = text + ".";
      }
      progressText.setAttribute("data-step", String(p.last_step || 0));
      var tokens = document.getElementById("job-trained-tokens");
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

    function finish() {
      stopped = true;
      live.setAttribute("data-terminal", "true");
      if (eventsNote) { eventsNote.textContent = "Newest first."; }
    }

    // Everything one answer says, applied in one go: header, status, progress, events,
    // sections (when they changed), then the charts and their diagnosis.
    function apply(data) {
      after = data.last_event_id;
      addEvents(data.events || []);
      name.textContent = data.name;
      if (data.sections_html !== undefined) {
        swapSections(data.sections_html);
        sectionsKey = data.sections_key;
      }
      var charts = data.charts && window.tuneboardRunCharts;
      var drawn = charts ? window.tuneboardRunCharts.apply(data.charts) : null;
      function showState() {
        document.getElementById("job-status").textContent = data.status_display;
        showProgress(data);
        live.setAttribute("data-polls", String(Number(live.getAttribute("data-polls") || 0) + 1));
      }
      // When the charts need new figures first, the status and progress wait for them: the
      // text never names a step the chart does not show yet.
      if (drawn) { drawn.then(showState); } else { showState(); }
    }

    function poll() {
      var query = "?after=" + encodeURIComponent(after) + (level ? "&level=" + encodeURIComponent(level) : "") +
        "&sections=" + encodeURIComponent(sectionsKey);
      var charts = window.tuneboardRunCharts;
      if (charts && charts.busy()) { schedule(200); return; }
      if (charts) { query += "&after_step=" + encodeURIComponent(charts.lastStep()); }
      fetch(url + query, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          // Redirected: signed out meanwhile (the login page is no answer of this view).
          if (!response.ok || response.redirected) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          var moved = data.last_event_id !== after || data.sections_html !== undefined ||
            Boolean(data.charts && data.charts.points && data.charts.points.length);
          apply(data);
          var controlPending = Boolean(data.control && data.control.pending);
          var chartsBehind = Boolean(data.charts && data.charts.has_more);
          var sectionsBehind = data.sections_key !== sectionsKey;
          if (data.terminal && !data.has_more && !chartsBehind && !sectionsBehind && !controlPending) { finish(); return; }
          if (data.has_more || chartsBehind) { schedule(0); return; }
          delay = moved || controlPending ? base : Math.min(delay * 1.5, idleMax);
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
