/* Playground: shows how many models are chosen, says "Asking N models…" while the question is
   in flight, and keeps the reference box of the save form in step with the chosen reply.
   Everything works without JavaScript; this only makes it friendlier. */
(function () {
  "use strict";

  var form = document.getElementById("playground-form");
  if (form) {
    var submit = document.getElementById("playground-submit");
    var statusText = document.getElementById("playground-status");
    var count = document.getElementById("models-count");
    var fieldset = form.querySelector(".pg-models");
    var max = fieldset ? parseInt(fieldset.getAttribute("data-max-models"), 10) || 4 : 4;

    var chosen = function () {
      return form.querySelectorAll('input[name="models"]:checked').length;
    };
    var showCount = function () {
      if (!count) { return; }
      var n = chosen();
      count.textContent = n + " of at most " + max + " chosen" +
        (n > max ? " — choose fewer." : ".");
      count.className = n > max ? "error" : "muted";
    };
    form.addEventListener("change", function (event) {
      if (event.target && event.target.name === "models") { showCount(); }
    });
    showCount();

    form.addEventListener("submit", function () {
      var n = chosen();
      if (n < 1 || n > max) { return; }  // the server explains what is wrong
      // Disabled after the submission has started, so the form is still sent.
      window.setTimeout(function () { submit.disabled = true; }, 0);
      statusText.textContent = "Asking " + n + (n === 1 ? " model…" : " models…");
    });
    // Back/forward cache: a page restored after leaving it must be usable again.
    window.addEventListener("pageshow", function () {
      submit.disabled = false;
      statusText.textContent = "";
    });
  }

  var save = document.getElementById("save-form");
  if (save) {
    var reference = save.querySelector('textarea[name="reference"]');
    var target = save.querySelector('select[name="target"]');
    var nameBox = document.getElementById("save-name");
    var radios = save.querySelectorAll('input[name="source"]');

    var edited = function () {
      for (var i = 0; i < radios.length; i += 1) {
        if (radios[i].value === "edited") { return radios[i]; }
      }
      return null;
    };
    for (var i = 0; i < radios.length; i += 1) {
      radios[i].addEventListener("change", function (event) {
        var source = document.getElementById("reference-text-" + event.target.value);
        if (source && reference) { reference.value = source.textContent; }
      });
    }
    if (reference) {
      reference.addEventListener("input", function () {
        var box = edited();
        if (box) { box.checked = true; }
      });
    }
    var showName = function () {
      if (nameBox && target) { nameBox.hidden = target.value !== "new"; }
    };
    if (target) { target.addEventListener("change", showName); }
    showName();
  }
})();
