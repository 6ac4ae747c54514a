// "Use my location": fill the place (or postcode) field with the postcode nearest the browser's
// position and search. Progressive enhancement: without JavaScript (or geolocation) the
// button stays hidden and the form works as before. The position is rounded to about
// 100 m before it leaves the browser, and is sent only when the patient asks.
//
// It binds to the button in the page and to one in a form added later ("searchform:added",
// from change-search.js, which fetches the results page's search form when it is opened).
(function () {
  "use strict";
  if (!("geolocation" in navigator) || !window.fetch) {
    return;
  }

  function bind(root) {
    var button = root.querySelector("[data-locate]");
    if (!button || button.hasAttribute("data-locate-bound")) {
      return;
    }
    button.setAttribute("data-locate-bound", "");
    var form = button.form;
    // The finder's field is "place" (it takes a postcode too); the embed's is "postcode".
    var field = form.querySelector("[name=place]") || form.querySelector("[name=postcode]");
    var status = document.getElementById(button.getAttribute("data-status"));
    button.hidden = false;

    function say(message) {
      status.textContent = message;
    }

    function round(value) {
      return Math.round(value * 1000) / 1000;
    }

    button.addEventListener("click", function () {
      button.disabled = true;
      say(button.getAttribute("data-looking"));
      navigator.geolocation.getCurrentPosition(
        function (position) {
          var query =
            "latitude=" + round(position.coords.latitude) +
            "&longitude=" + round(position.coords.longitude);
          fetch(button.getAttribute("data-endpoint") + "?" + query, {
            headers: { Accept: "application/json" },
          })
            .then(function (response) {
              return response.json().then(function (body) {
                return { ok: response.ok, body: body };
              });
            })
            .then(function (answer) {
              if (!answer.ok || !answer.body.postcode) {
                throw new Error("no postcode");
              }
              field.value = answer.body.postcode;
              say(button.getAttribute("data-found").replace("{postcode}", answer.body.postcode));
              form.submit();
            })
            .catch(function () {
              button.disabled = false;
              say(button.getAttribute("data-failed"));
              field.focus();
            });
        },
        function () {
          button.disabled = false;
          say(button.getAttribute("data-refused"));
          field.focus();
        },
        { enableHighAccuracy: false, timeout: 10000, maximumAge: 300000 }
      );
    });
  }

  bind(document);
  document.addEventListener("searchform:added", function (event) {
    bind(event.target);
  });
})();
