// The progress of an uploaded clinic list, while a job checks or imports it: asked for
// every second and swapped in, and the page loaded again when the job is done. Without
// JavaScript the page reloads itself instead (a <meta> refresh inside <noscript>).
(function () {
  "use strict";
  var box = document.querySelector("[data-progress-url]");
  if (!box || !window.fetch) {
    return;
  }
  var url = box.getAttribute("data-progress-url");

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (progress) {
        if (!progress.working) {
          window.location.reload();
          return;
        }
        box.innerHTML = progress.html;
        window.setTimeout(poll, 1000);
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }

  window.setTimeout(poll, 1000);
})();
