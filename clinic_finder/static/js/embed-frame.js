// Inside the embedded finder: tell the article page how tall this page is, so the resize
// script in the snippet (embed-resize.js) can fit the iframe to it and readers never
// scroll inside a scroll. It reports on load, on resize and whenever the content changes
// size. Only the article sites allowed to frame us (EMBED_ALLOWED_ORIGINS, given in
// data-parent-origins) may receive the height: postMessage names each as the target, so
// the browser delivers to none other, never "*".
(function () {
  "use strict";
  // A snippet pasted without allow="geolocation" cannot ask for the reader's position:
  // no "Use my location" rather than one that always fails (locate.js showed it).
  var policy = document.featurePolicy || document.permissionsPolicy;
  var locate = document.querySelector("[data-locate]");
  if (locate && policy && policy.allowsFeature && !policy.allowsFeature("geolocation")) {
    locate.hidden = true;
  }

  var script = document.currentScript;
  if (!script || window.parent === window) {
    return;
  }
  var origins = (script.getAttribute("data-parent-origins") || "").split(/\s+/).filter(Boolean);
  var HEIGHT = "clinic-finder:height";
  var MEASURE = "clinic-finder:measure";
  var last = -1;

  // Chromium and Safari name the parent's origin; elsewhere the height goes to each
  // allowed origin and the browser drops the copies that don't match the parent.
  var targets = origins;
  var ancestors = window.location.ancestorOrigins;
  if (ancestors && ancestors.length) {
    targets = origins.indexOf(ancestors[0]) >= 0 ? [ancestors[0]] : [];
  }
  if (!targets.length) {
    return;
  }

  function height() {
    // The root element's box is the content's height, also when the frame is taller.
    return Math.ceil(document.documentElement.getBoundingClientRect().height);
  }

  function report(to) {
    var value = height();
    if (value === last && !to) {
      return;
    }
    last = value;
    (to ? [to] : targets).forEach(function (origin) {
      window.parent.postMessage({ type: HEIGHT, height: value }, origin);
    });
  }

  // The article's script may load after this page: it then asks, and gets an answer.
  window.addEventListener("message", function (event) {
    if (
      event.source === window.parent &&
      targets.indexOf(event.origin) >= 0 &&
      event.data &&
      event.data.type === MEASURE
    ) {
      report(event.origin);
    }
  });
  window.addEventListener("load", function () {
    report();
  });
  window.addEventListener("resize", function () {
    report();
  });
  if ("ResizeObserver" in window) {
    new ResizeObserver(function () {
      report();
    }).observe(document.documentElement);
  }
  report();
})();
