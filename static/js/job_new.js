/* Launch form: keeps the defaults beside the hyperparameters and the estimated cost in step
   with the chosen dataset, model and epochs (data from the launch-data JSON the server
   embedded), offers only this connection's fine-tuned models, and shows β for DPO only. */
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

  function thousands(n) { return Number(n).toLocaleString("en-US"); }

  function usd(value) {
    if (value === null) { return "unknown"; }
    if (value === 0) { return "$0.00"; }
    if (value < 0.01) { return "< $0.01"; }
    return "$" + value.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }

  function chosenEpochs() {
    var text = (epochs.value || "").trim().toLowerCase();
    if (text === "" || text === "auto") { return null; }
    var n = Number(text);
    return Number.isInteger(n) && n >= 1 && n <= 50 ? n : undefined;
  }

  function showDefaults(facts) {
    var spans = form.querySelectorAll("[data-default-for]");
    for (var i = 0; i < spans.length; i += 1) {
      var key = spans[i].getAttribute("data-default-for");
      if (key === "beta") { continue; }
      spans[i].textContent = facts ? String(facts.defaults[key]) : "choose a training dataset";
    }
  }

  function estimate() {
    var facts = data.datasets[dataset.value];
    var info = data.models[model.value];
    showDefaults(facts);
    if (!facts || !info) {
      output.textContent = "Choose a base model and a training dataset.";
      return;
    }
    var chosen = chosenEpochs();
    if (chosen === undefined) {
      output.textContent = "Enter a valid number of epochs (1–50) to see the cost.";
      return;
    }
    var n = chosen === null ? facts.defaults.n_epochs : chosen;
    var perEpoch = facts.tokens_by_context[String(info.context)];
    if (perEpoch === undefined) {
      output.textContent = "No estimate for this model.";
      return;
    }
    var billed = perEpoch * n;
    var price = info.price === null ? null : parseFloat(info.price);
    var text = (price === null ? "unknown (no training price for " + model.value + ")" : usd(billed * price / 1e6)) +
      " — " + thousands(billed) + " billed tokens over " + n + " epoch" + (n === 1 ? "" : "s") +
      (chosen === null ? " (estimated “auto”)" : "") +
      (price === null ? "" : " at $" + info.price + " per 1M") +
      (facts.encoding && facts.encoding !== info.encoding ? "; approximate: the dataset's tokens were counted with another tokenizer" : "") + ".";
    output.textContent = text;
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
  estimate();
})();
