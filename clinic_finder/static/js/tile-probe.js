/* A dedicated worker that asks the tile server for one tile, for map_script.html.
 *
 * A tile that cannot load as an <img> leaves "Failed to load resource" in the page's
 * console, once per tile: a map drawn without internet (or with the tile server down)
 * would bury a real error under dozens of them. A request made from a worker is logged in
 * the worker's own console instead, so the page asks here first and only lets Leaflet
 * load tiles once the server has answered. "no-cors": any answer at all counts (we cannot
 * read it), so a tile server without CORS headers works too.
 */
"use strict";

self.addEventListener("message", function (event) {
  fetch(event.data, {mode: "no-cors", credentials: "omit"}).then(
    function () { self.postMessage(true); },
    function () { self.postMessage(false); }
  );
});
