// Suggestions while typing in "Postcode or place": names and postcodes from our own
// register (GET /api/v1/places?q=), shown in a <datalist> the browser offers under the
// field. Nothing typed goes anywhere else, and no address is looked up while typing: the
// geocoder is asked only when the search is sent. Progressive enhancement: without
// JavaScript the field is a plain text field and the search works the same.
//
// It binds to the field in the page and to one in a form added later ("searchform:added",
// from change-search.js, which fetches the results page's search form when it is opened).
(function () {
  "use strict";
  if (!window.fetch) {
    return;
  }

  function bind(root) {
    var field = root.querySelector("input[data-places]");
    if (!field || field.hasAttribute("list")) {
      return;
    }
    var endpoint = field.getAttribute("data-places");
    var status = document.getElementById(field.getAttribute("data-places-status"));
    var list = document.createElement("datalist");
    list.id = field.id + "-suggestions";
    field.parentNode.appendChild(list);
    field.setAttribute("list", list.id);

    var DELAY_MS = 250;
    var MIN_LENGTH = 2;
    var timer = null;
    var controller = null;
    var answers = {};
    var shown = "";

    function say(count) {
      if (!status) {
        return;
      }
      if (count === 0) {
        status.textContent = "";
      } else if (count === 1) {
        status.textContent = status.getAttribute("data-one");
      } else {
        status.textContent = status.getAttribute("data-many").replace("{count}", count);
      }
    }

    function show(text, places) {
      shown = text;
      list.textContent = "";
      places.forEach(function (place) {
        var option = document.createElement("option");
        // A postcode is offered as "0150 Oslo"; a name as the text that finds it again.
        option.value = place.kind === "postcode" ? place.label : place.query;
        option.textContent = place.kind === "postcode" ? place.municipality : place.label + " – " + regionOf(place);
        list.appendChild(option);
      });
      say(places.length);
    }

    function regionOf(place) {
      if (place.kind === "municipality" || place.municipality === place.label) {
        return place.county;
      }
      return place.municipality + ", " + place.county;
    }

    function ask(text) {
      if (answers.hasOwnProperty(text)) {
        show(text, answers[text]);
        return;
      }
      if (controller) {
        controller.abort();
      }
      controller = window.AbortController ? new AbortController() : null;
      fetch(endpoint + "?q=" + encodeURIComponent(text), {
        headers: { Accept: "application/json" },
        signal: controller ? controller.signal : undefined,
      })
        .then(function (response) {
          return response.ok ? response.json() : { places: [] };
        })
        .then(function (body) {
          answers[text] = body.places || [];
          if (field.value.trim() === text) {
            show(text, answers[text]);
          }
        })
        .catch(function () {
          // Aborted or offline: the field still works without suggestions.
        });
    }

    field.addEventListener("input", function () {
      var text = field.value.trim().replace(/\s+/g, " ");
      window.clearTimeout(timer);
      if (text.length < MIN_LENGTH || (/^\d+$/.test(text) && text.length > 4)) {
        show("", []);
        return;
      }
      if (text === shown) {
        return;
      }
      timer = window.setTimeout(function () {
        ask(text);
      }, DELAY_MS);
    });
  }

  bind(document);
  document.addEventListener("searchform:added", function (event) {
    bind(event.target);
  });
})();
