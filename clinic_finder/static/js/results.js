// The result list and its map together. On a phone the list comes first and "Show map"
// opens the map above it; on a wide screen they sit side by side. A tapped card lights up
// its numbered pin, and a tapped pin brings its card into view. Without JavaScript there
// is no map (Leaflet needs it) and the list is the whole page.
(function () {
  "use strict";
  var layout = document.querySelector("[data-results]");
  if (!layout) {
    return;
  }
  var region = layout.querySelector(".results-map");
  var toggle = layout.querySelector("[data-map-toggle]");
  var wide = window.matchMedia("(min-width: 60rem)");
  var activeId = null;

  function leafletMap() {
    var element = region && region.querySelector(".folium-map");
    return element && window.clinicFinderMaps ? window.clinicFinderMaps[element.id] : null;
  }

  function pins() {
    return window.clinicPins || {};
  }

  function clusterGroup(map) {
    var group = null;
    map.eachLayer(function (layer) {
      if (typeof layer.zoomToShowLayer === "function") {
        group = layer;
      }
    });
    return group;
  }

  function mapShown() {
    return wide.matches || layout.classList.contains("map-open");
  }

  function markPin(id) {
    Object.keys(pins()).forEach(function (key) {
      var element = pins()[key].getElement && pins()[key].getElement();
      if (element) {
        element.classList.toggle("is-active", Number(key) === id);
      }
    });
  }

  function showPin(id) {
    var map = leafletMap();
    var pin = pins()[id];
    if (!map || !pin || !mapShown()) {
      return;
    }
    var group = clusterGroup(map);
    var done = function () {
      markPin(id);
    };
    if (group) {
      group.zoomToShowLayer(pin, done);
    } else {
      map.panTo(pin.getLatLng());
      done();
    }
  }

  function markCard(id) {
    var cards = layout.querySelectorAll("[data-clinic-id]");
    for (var i = 0; i < cards.length; i++) {
      cards[i].classList.toggle("is-active", Number(cards[i].getAttribute("data-clinic-id")) === id);
    }
  }

  function refit() {
    var map = leafletMap();
    var layers = Object.keys(pins()).map(function (key) {
      return pins()[key];
    });
    if (!map || !window.L) {
      return;
    }
    map.invalidateSize();
    if (layers.length) {
      map.fitBounds(window.L.featureGroup(layers).getBounds(), { padding: [30, 30], maxZoom: 15 });
    }
    if (activeId !== null) {
      showPin(activeId);
    }
  }

  // The map region is hidden on phones until asked for; on a wide screen it is shown.
  layout.classList.add("has-map-toggle");
  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = layout.classList.toggle("map-open");
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = toggle.getAttribute(open ? "data-hide" : "data-show");
      if (open) {
        window.setTimeout(refit, 0);
      }
    });
  }
  if (wide.addEventListener) {
    wide.addEventListener("change", function () {
      window.setTimeout(refit, 0);
    });
  }

  // The map is drawn after the page has loaded (map_script.html); fit it to the region
  // it is shown in then, and again whenever the region appears.
  document.addEventListener("clinic-map-ready", function () {
    if (mapShown()) {
      refit();
    }
  });

  layout.addEventListener("click", function (event) {
    var card = event.target.closest("[data-clinic-id]");
    // Links and buttons in a card do their own thing; a tap elsewhere on it picks its pin.
    if (!card || event.target.closest("a, button, summary")) {
      return;
    }
    activeId = Number(card.getAttribute("data-clinic-id"));
    markCard(activeId);
    showPin(activeId);
  });

  document.addEventListener("clinic-pin", function (event) {
    activeId = Number(event.detail);
    markCard(activeId);
    markPin(activeId);
    var card = document.getElementById("clinic-" + activeId);
    if (card) {
      card.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  });
})();
