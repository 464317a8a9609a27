/* The main navigation on narrow screens: folded behind the "Menu" button (Escape folds it
   again). Loaded in <head> so the page is marked as scripted before it is drawn: without
   JavaScript the links simply stay on show. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function setUp() {
    var toggle = document.querySelector(".nav-toggle");
    var bar = document.querySelector(".topbar");
    if (!toggle || !bar) { return; }
    function set(open) {
      bar.classList.toggle("nav-open", open);
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
    toggle.addEventListener("click", function () {
      set(toggle.getAttribute("aria-expanded") !== "true");
    });
    bar.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        set(false);
        toggle.focus();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
}());
