// "Directions" opens the phone's own maps app: a geo: link on Android, Apple Maps' link
// on iOS (which has no geo: handler). Elsewhere, and without JavaScript, the link stays
// OpenStreetMap's directions, as the server wrote it.
(function () {
  "use strict";
  var agent = navigator.userAgent || "";
  var android = /Android/i.test(agent);
  var ios = /iPhone|iPad|iPod/i.test(agent) ||
    (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
  if (!android && !ios) {
    return;
  }
  var links = document.querySelectorAll("a[data-geo]");
  for (var i = 0; i < links.length; i++) {
    links[i].href = links[i].getAttribute(android ? "data-geo" : "data-apple");
  }
})();
