/* Share links page: copy the newly created link (shown once) to the clipboard. */
(function () {
  "use strict";
  var button = document.querySelector("[data-tb-copy]");
  var status = document.querySelector("[data-tb-copy-status]");
  if (!button) { return; }
  var input = document.getElementById(button.getAttribute("data-tb-copy"));
  function done(text) { if (status) { status.textContent = text; } }
  button.addEventListener("click", function () {
    input.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(input.value).then(
        function () { done("Copied."); },
        function () { done("Select the link and copy it."); }
      );
    } else {
      done("Select the link and copy it.");
    }
  });
}());
