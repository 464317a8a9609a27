/* Launch form: keeps the defaults beside the hyperparameters (from the launch-data JSON the
   server embedded) and the estimated cost (asked from the server) in step with the chosen
   dataset, model and epochs, offers only this connection's fine-tuned models, shows each
   parameter only for the method (and training type) it applies to, with the chosen model's
   allowed range, reloads the form when a connection of another provider family is chosen, and
   asks the provider for its price where it gives one. */
(function () {
  "use strict";

  var source = document.getElementById("launch-data");
  var form = document.getElementById("launch-form");
  if (!source || !form) { return; }
  var data = JSON.parse(source.textContent);
  var connection = document.getElementById("id_connection");
  var model = document.getElementById("id_base_model");
  var dataset = document.getElementById("id_training_dataset");
  var epochs = document.getElementById("id_n_epochs");
  var method = document.getElementById("id_method");
  var output = document.getElementById("cost-estimate");
  var boxes = form.querySelectorAll("[data-hp]");
  var quoteBox = document.getElementById("provider-quote");
  var quoteOutput = document.getElementById("quote-output");
  var quoteButton = document.getElementById("ask-quote");

  function showDefaults(facts) {
    var spans = form.querySelectorAll("[data-default-for]");
    for (var i = 0; i < spans.length; i += 1) {
      var key = spans[i].getAttribute("data-default-for");
      if (key === "beta") { continue; }
      spans[i].textContent = facts ? String(facts.defaults[key]) : "choose a training dataset";
    }
  }

  // The estimate is computed on the server (one rule for the page, the form and the launch);
  // answers that arrive after a newer question are dropped.
  var asked = 0;
  var timer = null;

  function fetchEstimate() {
    var ticket = ++asked;
    var params = new URLSearchParams({
      connection: connection ? connection.value : "",
      method: method ? method.value : "",
      training_dataset: dataset.value,
      base_model: model.value,
      n_epochs: epochs ? epochs.value || "" : ""
    });
    fetch(output.getAttribute("data-url") + "?" + params.toString(), {
      credentials: "same-origin",
      headers: {"Accept": "text/html"}
    }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null || ticket !== asked) { return; }
      // Parsed inertly (no scripts run, nothing is attached); only its text is shown.
      var text = new DOMParser().parseFromString(html, "text/html").body.textContent;
      output.textContent = text.trim();
    }).catch(function () { /* keep the last estimate; the next change asks again */ });
  }

  function estimate() {
    showDefaults(data.datasets[dataset.value]);
    window.clearTimeout(timer);
    timer = window.setTimeout(fetchEstimate, 150);
  }

  function filterModels() {
    var current = connection ? connection.value : "";
    var options = model.querySelectorAll("option[data-connection]");
    var lostSelection = false;
    for (var i = 0; i < options.length; i += 1) {
      var other = options[i].getAttribute("data-connection") !== current;
      options[i].hidden = other;
      options[i].disabled = other;
      if (other && options[i].selected) { lostSelection = true; }
    }
    var groups = model.querySelectorAll("optgroup");
    for (var g = 0; g < groups.length; g += 1) {
      var visible = groups[g].querySelectorAll("option:not([hidden])").length > 0;
      groups[g].hidden = !visible;
    }
    if (lostSelection) { model.selectedIndex = 0; }
  }

  function valueOf(name) {
    var input = form.elements.namedItem(name);
    return input && "value" in input ? input.value : "";
  }

  // A parameter applies to some methods only, and some only when another one has a value
  // (LoRA settings with LoRA training); a box showing an error stays visible.
  function toggleParameters() {
    var chosen = method ? method.value : "supervised";
    for (var i = 0; i < boxes.length; i += 1) {
      var box = boxes[i];
      var methods = (box.getAttribute("data-methods") || "").split(" ");
      var applies = methods.indexOf(chosen) !== -1;
      var when = box.getAttribute("data-only-when");
      if (applies && when) {
        var parts = when.split("=");
        var current = valueOf(parts[0]);
        applies = current === "" || current === parts[1];
      }
      box.hidden = !applies && box.querySelector(".error") === null;
    }
  }

  // The chosen model's limits for the chosen method and training type (from the provider's
  // list, embedded by the server).
  function showRanges() {
    var byModel = (data.ranges || {})[model.value];
    if (!byModel) { return; }
    var training = valueOf("training_type") || "lora";
    var ranges = byModel[(method ? method.value : "supervised") + "/" + training] || {};
    Object.keys(ranges).forEach(function (name) {
      // [range, default] as the server writes them ("1e-08–1", "8").
      var span = form.querySelector('[data-range-for="' + name + '"]');
      if (span && ranges[name][0]) { span.textContent = ranges[name][0]; }
      var fixed = form.querySelector('[data-fixed-default-for="' + name + '"]');
      if (fixed && ranges[name][1]) { fixed.textContent = ranges[name][1]; }
    });
  }

  // Another provider family has other parameters: the server draws its form.
  function switchConnection() {
    var family = (data.families || {})[connection.value];
    if (family && family !== data.family) {
      var params = new URLSearchParams({connection: connection.value});
      if (dataset.value) { params.set("dataset", dataset.value); }
      window.location.assign(window.location.pathname + "?" + params.toString());
      return true;
    }
    return false;
  }

  // --- The provider's own price ------------------------------------------------------------
  var quoteTimer = null;
  var quoteTicket = 0;

  function quoteReset() {
    if (!quoteOutput) { return; }
    quoteTicket += 1;
    window.clearTimeout(quoteTimer);
    quoteOutput.textContent = "not asked for these settings yet.";
  }

  function quoteShow(ticket, answer, delay) {
    if (ticket !== quoteTicket) { return; }
    quoteOutput.textContent = answer.text;
    if (answer.status === "pending" && answer.url) {
      // Slower while the tab is hidden; the provider answers in seconds to minutes.
      var wait = document.hidden ? Math.min(delay * 4, 60000) : delay;
      quoteTimer = window.setTimeout(function () {
        fetch(answer.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
          .then(function (r) { return r.json(); })
          .then(function (next) { quoteShow(ticket, next, Math.min(delay * 1.5, 15000)); })
          .catch(function () { quoteShow(ticket, answer, Math.min(delay * 2, 30000)); });
      }, wait);
    }
  }

  function askQuote() {
    quoteTicket += 1;
    var ticket = quoteTicket;
    window.clearTimeout(quoteTimer);
    quoteOutput.textContent = "asking…";
    fetch(quoteBox.getAttribute("data-ask-url"), {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: {"Accept": "application/json"}
    }).then(function (response) {
      return response.json();
    }).then(function (answer) {
      quoteShow(ticket, answer, 1000);
    }).catch(function () {
      if (ticket === quoteTicket) { quoteOutput.textContent = "the request failed; try again."; }
    });
  }

  if (connection) {
    connection.addEventListener("change", function () {
      if (switchConnection()) { return; }
      filterModels();
      estimate();
      quoteReset();
    });
  }
  form.addEventListener("change", function (event) {
    var name = event.target && event.target.name;
    if (name === "method" || name === "training_type") { toggleParameters(); showRanges(); }
    if (name === "base_model") { showRanges(); }
    if (name && name !== "connection" && quoteBox) { quoteReset(); }
  });
  if (quoteButton) { quoteButton.addEventListener("click", askQuote); }
  model.addEventListener("change", estimate);
  dataset.addEventListener("change", estimate);
  if (epochs) { epochs.addEventListener("input", estimate); }
  filterModels();
  toggleParameters();
  showRanges();
  showDefaults(data.datasets[dataset.value]);
})();
