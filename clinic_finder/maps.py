"""Turn search results into the parts of a folium map that a template embeds.

Leaflet itself comes from our static files (see ``vendor.py``); folium's own header,
which links to CDNs and styles the whole page, is not used.

Everything from the data reaches the page through two pitfalls of folium's. It places
popup and tooltip text inside JavaScript template strings, where HTML-escaping alone
still lets ``${…}`` and backticks run. And branca renders each element's script, then
compiles that output *again* as a Jinja template: a clinic named ``{{ 7*7 }}`` would show
as 49, and Jinja syntax in a name could run code on the server. So no brace from the data
ever reaches folium: HTML gets ``&#123;``/``&#125;``, and plain text (a marker's title)
travels percent-encoded and is decoded in the browser.

The results map changes with every search only in its data, so folium builds the rest
once per language and tile setting, and each page carries its searched place, pins,
popups and bounds as JSON (``MapParts.data``, written by Flask's ``tojson``, which also
escapes ``<``, ``>``, ``&`` and ``'``) for the map's script to read. That data never passes
through folium, and it is escaped exactly as before all the same, so a popup reads the
same whichever way it travels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from urllib.parse import quote

import folium
import xyzservices
from branca.element import MacroElement
from flask_babel import gettext as _
from folium.plugins import MarkerCluster
from folium.template import Template
from folium.utilities import JsCode
from markupsafe import Markup, escape

from .formatting import format_km
from .search import SearchResult


def escape_for_map(text: object) -> str:
    """Escape text for a map popup or tooltip (HTML): markup, ``${…}``, backticks, braces."""
    return (
        str(escape(str(text)))
        .replace("$", "&#36;")
        .replace("`", "&#96;")
        .replace("{", "&#123;")
        .replace("}", "&#125;")
    )


def text_for_map(text: object) -> str:
    """Plain text for a feature property that the browser decodes (decodeURIComponent)."""
    return quote(str(text), safe=" ")


@dataclass(frozen=True)
class MapParts:
    """The map's element and the script that fills it (and, for the results map, the
    page's clinics, which the page embeds as JSON: see ``build_results_map``)."""

    html: Markup
    script: Markup
    data: dict | None = None


# Bind each clinic's popup from its pre-escaped feature property; no HTML is built in JS.
# The title is text, set as a DOM property, so it can never be markup.
BIND_POPUP = JsCode(
    "function(feature, layer) {"
    " var title = decodeURIComponent(feature.properties.title);"
    " layer.bindPopup(feature.properties.popup_html);"
    " layer.options.title = title;"
    " layer.options.alt = title;"
    " }"
)


# A results pin carries its place in the list, so "3" on the map is the third card. The
# number is an int the server wrote, made a number again before it becomes markup.
NUMBERED_PIN = JsCode(
    "function(feature, latlng) {"
    " var number = String(Number(feature.properties.number));"
    " var icon = L.divIcon({className: 'clinic-pin', html: '<span>' + number + '</span>',"
    " iconSize: [32, 32], iconAnchor: [16, 32], popupAnchor: [0, -30]});"
    " return L.marker(latlng, {icon: icon});"
    " }"
)

# As BIND_POPUP, and each pin registers under its clinic id, so static/js/results.js can
# light up the pin of a tapped card, and a tapped pin can bring its card into view.
BIND_RESULT_PIN = JsCode(
    "function(feature, layer) {"
    " var title = decodeURIComponent(feature.properties.title);"
    " layer.bindPopup(feature.properties.popup_html);"
    " layer.options.title = title;"
    " layer.options.alt = title;"
    " var id = Number(feature.properties.clinic_id);"
    " (window.clinicPins = window.clinicPins || {})[id] = layer;"
    " layer.on('click', function() {"
    " document.dispatchEvent(new CustomEvent('clinic-pin', {detail: id}));"
    " });"
    " }"
)


class MetricScale(MacroElement):
    """Leaflet's scale bar in kilometres and metres only (its default adds miles)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


class MapRegistry(MacroElement):
    """Keep the map where page scripts find it (window.clinicFinderMaps, by its element's
    id) and say when it is drawn: templates/_partials/map_script.html runs folium's script
    inside a function, so its ``var map_…`` is no global. The event waits a turn, so the
    layers added after this element are on the map by then."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            (window.clinicFinderMaps = window.clinicFinderMaps || {})[
                {{ this._parent.get_name() | tojson }}] = {{ this._parent.get_name() }};
            window.setTimeout(function () {
                document.dispatchEvent(new CustomEvent("clinic-map-ready",
                    {detail: {{ this._parent.get_name() | tojson }}}));
            }, 0);
        {% endmacro %}
        """
    )


def base_map(
    location: tuple[float, float],
    zoom: int,
    *,
    tiles_url: str,
    tiles_attribution: str,
    first: MacroElement | None = None,
) -> folium.Map:
    """A folium map with our tile layer and nothing else (but ``first``, given, which
    runs before the tiles are added)."""
    new_map = folium.Map(location=location, zoom_start=zoom, tiles=None)
    if first is not None:
        first.add_to(new_map)
    MetricScale().add_to(new_map)
    MapRegistry().add_to(new_map)
    # A TileProvider, not the URL: given a string, folium first searches xyzservices'
    # whole catalogue for a provider of that name, which costs milliseconds a page.
    provider = xyzservices.TileProvider(
        name="tiles",
        url=tiles_url,
        # Operator-set HTML, shown as given; only braces are kept from Jinja (see above).
        attribution=tiles_attribution.replace("{", "&#123;").replace("}", "&#125;"),
    )
    folium.TileLayer(tiles=provider, attr=provider.attribution, max_zoom=18).add_to(new_map)
    return new_map


def clinic_feature(clinic, popup_html: str, number: int | None = None) -> dict:
    """A clinic as a GeoJSON point whose popup and title BIND_POPUP attaches; ``number``
    is its place in the list, shown on its pin."""
    properties = {
        "clinic_id": clinic.id,
        "title": text_for_map(clinic.name),
        "popup_html": popup_html,
    }
    if number is not None:
        properties["number"] = int(number)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [clinic.longitude, clinic.latitude]},
        "properties": properties,
    }


def map_parts(finished_map: folium.Map) -> MapParts:
    """Render a map into the element and the script a page embeds."""
    root = finished_map.get_root()
    root.render()
    # folium's output is markup by design; every value from the data in it went through
    # escape_for_map or text_for_map, and folium writes options with JSON encoding.
    html = Markup(root.html.render())  # noqa: S704  # nosec B704  # folium's markup, data escaped
    script = Markup(root.script.render())  # noqa: S704  # nosec B704  # as above
    return MapParts(html=html, script=script)


def _popup_html(hit, number: int) -> str:
    clinic = hit.clinic
    details = escape_for_map(_("Details in the list"))
    distance = _("%(distance)s in a straight line", distance=format_km(hit.distance_km))
    lines = [
        f"<strong>{int(number)}. {escape_for_map(clinic.name)}</strong>",
        escape_for_map(clinic.address),
        escape_for_map(f"{clinic.postcode} {clinic.city}"),
        escape_for_map(distance),
        f'<a href="#clinic-{int(clinic.id)}">{details}</a>',
    ]
    return "<br>".join(line for line in lines if line)


# The searched place: a circle, not a pin, so every pin on the map is a clinic.
ORIGIN_CIRCLE = {
    "radius": 9,
    "color": "#b3261e",
    "fill": True,
    "fill_opacity": 0.6,
}


class ResultsData(MacroElement):
    """Read the page's clinics (``results_data``, JSON in the page) and centre the map on
    the searched place before any tile is asked for."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var results_data = JSON.parse(
                document.getElementById({{ this.element_id | tojson }}).textContent);
            {{ this._parent.get_name() }}.setView(results_data.origin, 11);
        {% endmacro %}
        """
    )

    def __init__(self, element_id: str):
        super().__init__()
        self.element_id = element_id


class ResultsPlace(MacroElement):
    """Move the searched place's circle there and name it (its tooltip, escaped HTML)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.setLatLng(results_data.origin);
            {{ this._parent.get_name() }}.bindTooltip(
                "<div>" + results_data.origin_tooltip + "</div>", {"sticky": true});
        {% endmacro %}
        """
    )


class ResultsPins(MacroElement):
    """The page's clinics as one GeoJSON layer of numbered pins in the cluster group."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.geoJson(null, {
                onEachFeature: {{ this.on_each_feature }},
                pointToLayer: {{ this.point_to_layer }}
            });
            {{ this.get_name() }}.addData(results_data.features);
            {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, on_each_feature: JsCode, point_to_layer: JsCode):
        super().__init__()
        self._name = "ResultsPins"
        self.on_each_feature = on_each_feature.js_code
        self.point_to_layer = point_to_layer.js_code


class ResultsBounds(MacroElement):
    """Zoom to fit the searched place and every pin."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.fitBounds(
                results_data.bounds, {"maxZoom": 15, "padding": [30, 30]});
        {% endmacro %}
        """
    )


RESULTS_DATA_ID = "results-map-data"


@cache
def _results_map_frame(language: str, tiles_url: str, tiles_attribution: str) -> MapParts:
    """The results map without its clinics, built once per language and tile setting.

    Every page's map is the same apart from its data (the searched place, the pins and
    their popups, the bounds), which the page carries as JSON that ``ResultsData`` reads:
    folium builds the rest once (it took about 6 ms a page). Nothing from the data ever
    passes through folium, so its double Jinja pass never sees it.
    """
    del language  # part of the key: the frame holds no words today, but a translation may
    results_map = base_map(
        (0.0, 0.0),
        11,
        tiles_url=tiles_url,
        tiles_attribution=tiles_attribution,
        first=ResultsData(RESULTS_DATA_ID),
    )
    circle = folium.CircleMarker((0.0, 0.0), **ORIGIN_CIRCLE).add_to(results_map)
    ResultsPlace().add_to(circle)
    # Clinics in one building, or many in a city centre, merge into a numbered cluster
    # that opens when clicked or zoomed into (leaflet.markercluster, from our files).
    clusters = MarkerCluster(
        name="clinic clusters",
        options={"maxClusterRadius": 40, "disableClusteringAtZoom": 17},
    ).add_to(results_map)
    ResultsPins(BIND_RESULT_PIN, NUMBERED_PIN).add_to(clusters)
    ResultsBounds().add_to(results_map)
    return map_parts(results_map)


def build_results_map(
    result: SearchResult,
    *,
    tiles_url: str,
    tiles_attribution: str,
    first_number: int = 1,
    language: str = "",
) -> MapParts:
    """Build a map of the searched place and one pin per clinic, zoomed to fit.

    Pins are numbered like the list: the first clinic on this page is ``first_number``.
    The map's fixed part is built once (``_results_map_frame``); ``data`` is this page's.
    """
    origin = (result.origin.latitude, result.origin.longitude)
    # One GeoJSON layer for all clinics: far faster to render than a folium object each.
    features = [
        clinic_feature(hit.clinic, _popup_html(hit, number), number)
        for number, hit in enumerate(result.hits, start=first_number)
    ]
    points = [origin] + [(hit.clinic.latitude, hit.clinic.longitude) for hit in result.hits]
    south = min(lat for lat, _ in points)
    north = max(lat for lat, _ in points)
    west = min(lon for _, lon in points)
    east = max(lon for _, lon in points)
    frame = _results_map_frame(language, tiles_url, tiles_attribution)
    return replace(
        frame,
        data={
            "origin": list(origin),
            "origin_tooltip": escape_for_map(f"{result.origin.postcode} {result.origin.place}"),
            "features": features,
            "bounds": [[south, west], [north, east]],
        },
    )
