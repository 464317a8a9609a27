/* Loads plotly.js once the page has been painted, so a page with charts shows what the server
   rendered (each chart's text alternative among it) at once, and the charts fill in after:
   plotly.js is 4.8 MB of script, and evaluating it before the first paint would hold the whole
   page back. The bundle's URL (hashed, cached for good) is this tag's data-plotly attribute.

   Page scripts draw with   window.tuneboardPlotly(function (Plotly) { ... });
   called once plotly.js has loaded (at once when it has already). The performance mark
   "tuneboard:plotly" records when it was ready (bench/page_weight.py reports it). */
(function () {
  "use strict";

  var tag = document.currentScript;
  var waiting = [];
  var loaded = false;
  var started = false;

  function ready() {
    loaded = true;
    if (window.performance && performance.mark) { performance.mark("tuneboard:plotly"); }
    waiting.splice(0).forEach(function (draw) {
      // One chart's error must not keep the others from being drawn; it still shows.
      try { draw(window.Plotly); } catch (error) { setTimeout(function () { throw error; }, 0); }
    });
  }

  function load() {
    if (started) { return; }
    started = true;
    var script = document.createElement("script");
    script.src = tag.getAttribute("data-plotly");
    script.addEventListener("load", ready);
    document.head.appendChild(script);
  }

  window.tuneboardPlotly = function (draw) {
    if (loaded) { draw(window.Plotly); } else { waiting.push(draw); }
  };

  // Chromium, Firefox and Safari report the first contentful paint once it is on screen (a
  // frame drawn by the page is not yet shown: on a busy machine it can be shown only after
  // plotly.js had run). Elsewhere: after the next frame (a timeout set in an animation-frame
  // callback runs once that frame is drawn). A hidden page paints nothing: it loads at once,
  // and any page loads after PAINT_WAIT_MS whatever was reported.
  var PAINT_WAIT_MS = 3000;
  var types = (window.PerformanceObserver && PerformanceObserver.supportedEntryTypes) || [];
  if (document.hidden) {
    load();
  } else if (types.indexOf("paint") !== -1) {
    var observer = new PerformanceObserver(function (list) {
      if (list.getEntriesByName("first-contentful-paint").length) {
        observer.disconnect();
        load();
      }
    });
    observer.observe({type: "paint", buffered: true});
    setTimeout(load, PAINT_WAIT_MS);
  } else {
    requestAnimationFrame(function () { setTimeout(load, 0); });
  }
}());
