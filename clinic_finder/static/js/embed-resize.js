// On the article page, from the snippet: make each iframe of our finder as tall as the
// page inside it reports (embed-frame.js), so readers don't scroll inside a scroll.
// A message counts only when it comes from our origin (where this script is served)
// and only for the iframe whose window sent it; heights stay within sane bounds.
// Without this script the iframe keeps the height written in the snippet.
(function () {
  "use strict";
  if (window.clinicFinderResize || !window.postMessage || !window.URL) {
    return; // the snippet pasted twice: one listener is enough
  }
  var script =
    document.currentScript || document.querySelector('script[src$="/js/embed-resize.js"]');
  if (!script) {
    return;
  }
  var ours = new URL(script.src, window.location.href).origin;
  var MIN_HEIGHT = 200;
  var MAX_HEIGHT = 5000;
  window.clinicFinderResize = { origin: ours };

  function ourFrames() {
    return Array.prototype.filter.call(document.getElementsByTagName("iframe"), function (frame) {
      try {
        return new URL(frame.src, window.location.href).origin === ours;
      } catch (error) {
        return false;
      }
    });
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (
      event.origin !== ours ||
      !data ||
      data.type !== "clinic-finder:height" ||
      typeof data.height !== "number" ||
      !isFinite(data.height)
    ) {
      return;
    }
    var height = Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, Math.ceil(data.height)));
    ourFrames().forEach(function (frame) {
      if (frame.contentWindow === event.source) {
        frame.style.height = height + "px";
      }
    });
  });

  // A frame that loaded before this script already said its height: ask again.
  function ask() {
    ourFrames().forEach(function (frame) {
      if (frame.contentWindow) {
        frame.contentWindow.postMessage({ type: "clinic-finder:measure" }, ours);
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ask);
  } else {
    ask();
  }
})();
