/* Launch form: keeps the defaults beside the hyperparameters (from the launch-data JSON the
   server embedded) and the estimated cost (asked from the server) in step with the chosen
   dataset, model and epochs, offers only this connection's fine-tuned models, and shows β for
   DPO only. */
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
  var betaBox = form.querySelector('[data-hp="beta"]');

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
      training_dataset: dataset.value,
      base_model: model.value,
      n_epochs: epochs.value || ""
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

  function toggleBeta() {
    if (!betaBox || !method) { return; }
    var hasError = betaBox.querySelector(".error") !== null;
    betaBox.hidden = method.value !== "dpo" && !hasError;
  }

  if (connection) { connection.addEventListener("change", function () { filterModels(); estimate(); }); }
  if (method) { method.addEventListener("change", toggleBeta); }
  model.addEventListener("change", estimate);
  dataset.addEventListener("change", estimate);
  epochs.addEventListener("input", estimate);
  filterModels();
  toggleBeta();
  showDefaults(data.datasets[dataset.value]);
})();
