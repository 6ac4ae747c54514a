// "Change search" on the results page. The search form, with a count beside every choice,
// costs about a third of the page to build and most patients never open it, so the page
// comes without it: opening the panel fetches it (GET /find/search-form, the same query)
// and puts it in. Without JavaScript, or if the fetch fails, the panel's link opens the
// same form on a page of its own. Scripts bound to the form (locate.js, places.js) hear
// "searchform:added" on the new form and bind to it.
(function () {
  "use strict";
  var panel = document.querySelector("details[data-search-form]");
  if (!panel || !window.fetch || !window.DOMParser) {
    return;
  }
  var body = panel.querySelector("[data-search-form-body]");
  var status = panel.querySelector("[data-search-form-status]");
  var link = body.firstElementChild;
  var state = "folded"; // then "loading", then "loaded" (or back to "folded" on failure)

  function failed() {
    state = "folded";
    body.removeAttribute("aria-busy");
    link.hidden = false;
    status.textContent = panel.getAttribute("data-failed");
  }

  function insert(html) {
    var fragment = new DOMParser().parseFromString(html, "text/html");
    var form = fragment.querySelector("form.search-form");
    if (!form) {
      failed();
      return;
    }
    form = document.importNode(form, true);
    body.textContent = "";
    body.appendChild(form);
    body.removeAttribute("aria-busy");
    status.textContent = "";
    state = "loaded";
    form.dispatchEvent(new CustomEvent("searchform:added", { bubbles: true }));
  }

  function load() {
    if (state !== "folded") {
      return;
    }
    state = "loading";
    // The link stays in the page until the form replaces it; while loading, the panel says so.
    link.hidden = true;
    body.setAttribute("aria-busy", "true");
    status.textContent = panel.getAttribute("data-loading");
    fetch(panel.getAttribute("data-search-form"), {
      headers: { Accept: "text/html" },
      credentials: "same-origin",
    })
      .then(function (response) {
        // A 400 is the form with its errors: the patient sees them where they are.
        if (!response.ok && response.status !== 400) {
          throw new Error("status " + response.status);
        }
        return response.text();
      })
      .then(insert)
      .catch(failed);
  }

  panel.addEventListener("toggle", function () {
    if (panel.open) {
      load();
    }
  });
  if (panel.open) {
    load();
  }
})();
