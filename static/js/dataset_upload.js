/* Upload page: sends the form with XMLHttpRequest to show upload progress. Without
   JavaScript the form posts normally and the server answers with the same messages. */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var statusText = document.getElementById("upload-status");
  var submit = document.getElementById("upload-submit");
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;

  function size(bytes) {
    var units = ["bytes", "KB", "MB", "GB"];
    var i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
    return (i === 0 ? bytes : bytes.toFixed(1)) + " " + units[i];
  }

  function showErrors(errors) {
    var slots = form.querySelectorAll("[data-errors-for]");
    for (var i = 0; i < slots.length; i += 1) { slots[i].textContent = ""; }
    Object.keys(errors).forEach(function (field) {
      var slot = form.querySelector('[data-errors-for="' + field + '"]') ||
        form.querySelector('[data-errors-for="file"]');
      errors[field].forEach(function (message) {
        var p = document.createElement("p");
        p.textContent = message;  // textContent: server messages may quote user input
        slot.appendChild(p);
      });
    });
  }

  function done() {
    submit.disabled = false;
    box.hidden = true;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var input = form.querySelector('input[type="file"]');
    var file = input && input.files && input.files[0];
    if (!file) { showErrors({file: ["Choose a .jsonl file to upload."]}); return; }
    if (maxBytes && file.size > maxBytes) {
      showErrors({file: ["The file is " + size(file.size) + "; the limit is " + size(maxBytes) + "."]});
      return;
    }
    showErrors({});
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) { return; }
      var pct = Math.floor((100 * e.loaded) / e.total);
      bar.value = pct;
      bar.textContent = pct + "%";
      statusText.textContent = size(e.loaded) + " of " + size(e.total) + " sent (" + pct + "%)";
    });
    xhr.upload.addEventListener("load", function () {
      statusText.textContent = "Upload complete; the server is storing the file…";
    });
    xhr.addEventListener("load", function () {
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
      if (xhr.status === 200 && data && data.redirect) {
        window.location.assign(data.redirect);
        return;
      }
      done();
      showErrors(data && data.errors ? data.errors : {file: ["The upload failed (HTTP " + xhr.status + ")."]});
    });
    xhr.addEventListener("error", function () {
      done();
      showErrors({file: ["The connection was lost during the upload; try again."]});
    });
    submit.disabled = true;
    box.hidden = false;
    bar.value = 0;
    statusText.textContent = "Starting upload…";
    xhr.send(new FormData(form));
  });
})();
