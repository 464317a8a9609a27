/* The runs list: "Compare selected" goes to /compare/?runs=<id>,<id> (the form alone sends
   repeated runs= parameters, which the compare page also accepts), the inline tags and notes
   forms and the column chooser save without leaving the page. */
(function () {
  "use strict";

  var MIN = 2;
  var MAX = 20;
  var form = document.getElementById("tb-compare-form");
  var count = document.getElementById("tb-compare-count");
  var status = document.getElementById("tb-inline-status");

  function selected() {
    return Array.prototype.filter.call(
      document.querySelectorAll('input.tb-select[form="tb-compare-form"]'),
      function (box) { return box.checked; }
    ).map(function (box) { return box.value; });
  }

  // `tried`: "Compare selected" was pressed, so a selection it cannot compare is an error
  // announced at once (role=alert), not a hint.
  function updateCount(tried) {
    var n = selected().length;
    if (!count) { return; }
    if (n === 0) {
      count.textContent = tried
        ? "No runs selected: tick two to 20 runs in the first column, then compare."
        : "Select 2 to 20 runs.";
    }
    else if (n < MIN) { count.textContent = "1 selected: tick at least one more."; }
    else if (n > MAX) { count.textContent = n + " selected: at most " + MAX + " can be compared."; }
    else { count.textContent = n + " selected."; }
    var problem = n < MIN || n > MAX;
    if (tried && problem) { count.setAttribute("role", "alert"); count.classList.add("error"); }
    else if (!problem) { count.removeAttribute("role"); count.classList.remove("error"); }
  }

  if (form) {
    document.addEventListener("change", function (event) {
      if (event.target.classList && event.target.classList.contains("tb-select")) { updateCount(false); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var ids = selected();
      if (ids.length < MIN || ids.length > MAX) { updateCount(true); return; }
      window.location.href = form.getAttribute("action") + "?runs=" + ids.map(encodeURIComponent).join(",");
    });
    updateCount(false);
  }

  function say(text) { if (status) { status.textContent = text; } }

  // The server's soft_breaks filter: a <wbr> after each joiner between two parts (never after
  // a leading one, nor inside a number), so a long tag wraps between its parts.
  var JOINERS = /[_.:\/@=+,;|\\]+(?=[\p{L}\p{N}])/gu;
  function appendSoftBroken(element, text) {
    var start = 0;
    var match;
    JOINERS.lastIndex = 0;
    while ((match = JOINERS.exec(text)) !== null) {
      var end = match.index + match[0].length;
      var before = match.index > 0 ? text.charAt(match.index - 1) : "";
      if (!before || (/\d/.test(before) && /\d/.test(text.charAt(end)))) { continue; }
      element.appendChild(document.createTextNode(text.slice(start, end)));
      element.appendChild(document.createElement("wbr"));
      start = end;
    }
    element.appendChild(document.createTextNode(text.slice(start)));
  }

  function renderTags(cell, tags) {
    while (cell.firstChild) { cell.removeChild(cell.firstChild); }
    tags.forEach(function (tag) {
      var badge = document.createElement("span");
      badge.className = "badge tb-tag";
      appendSoftBroken(badge, tag);
      cell.appendChild(badge);
      cell.appendChild(document.createTextNode(" "));
    });
  }

  // The column chooser: a column shows or hides as its box is ticked, and the choice is saved
  // for this user (the form's own submit does the same without the script).
  var columns = document.querySelector("form[data-tb-columns]");
  var table = document.querySelector("table.tb-runs");
  function saveColumns() {
    var token = columns.querySelector('input[name="csrfmiddlewaretoken"]');
    fetch(columns.action, {
      method: "POST",
      body: new FormData(columns),
      credentials: "same-origin",
      headers: {Accept: "application/json", "X-CSRFToken": token ? token.value : ""}
    }).then(function (response) {
      say(response.ok ? "Saved the columns." : "Columns not saved: try again.");
    }).catch(function () { say("Columns not saved: the server could not be reached."); });
  }
  if (columns && table) {
    columns.addEventListener("change", function (event) {
      var box = event.target;
      if (box.name !== "show") { return; }
      table.classList.toggle("tb-hide-" + box.value, !box.checked);
      saveColumns();
    });
    columns.addEventListener("submit", function (event) {
      event.preventDefault();
      saveColumns();
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-tb-inline]"), function (inline) {
    inline.addEventListener("submit", function (event) {
      event.preventDefault();
      var field = inline.getAttribute("data-tb-inline");
      var row = inline.closest("tr");
      var token = inline.querySelector('input[name="csrfmiddlewaretoken"]');
      fetch(inline.action, {
        method: "POST",
        body: new FormData(inline),
        credentials: "same-origin",
        headers: {Accept: "application/json", "X-CSRFToken": token ? token.value : ""}
      }).then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      }).then(function (result) {
        if (!result.ok) { say("Not saved: " + (result.data.error || "try again.")); return; }
        if (field === "tags") {
          renderTags(row.querySelector('[data-field="tags"]'), result.data.tags);
          inline.querySelector('input[name="tags"]').value = result.data.tags.join(", ");
        } else {
          var notes = row.querySelector('[data-field="notes"]');
          var text = result.data.notes || "";
          notes.textContent = text.length > 120 ? text.slice(0, 119) + "…" : text;
        }
        var details = inline.closest("details");
        if (details) { details.open = false; details.querySelector("summary").focus(); }
        say("Saved the " + field + ".");
      }).catch(function () { say("Not saved: the server could not be reached."); });
    });
  });
}());
