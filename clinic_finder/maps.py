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
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """The map's element and the script that fills it."""

    html: Markup
    script: Markup


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
    location: tuple[float, float], zoom: int, *, tiles_url: str, tiles_attribution: str
) -> folium.Map:
    """A folium map with our tile layer and nothing else."""
    new_map = folium.Map(location=location, zoom_start=zoom, tiles=None)
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


def build_results_map(
    result: SearchResult, *, tiles_url: str, tiles_attribution: str, first_number: int = 1
) -> MapParts:
    """Build a map of the searched place and one pin per clinic, zoomed to fit.

    Pins are numbered like the list: the first clinic on this page is ``first_number``.
    """
    origin = (result.origin.latitude, result.origin.longitude)
    results_map = base_map(origin, 11, tiles_url=tiles_url, tiles_attribution=tiles_attribution)
    # The searched place is a circle, not a pin, so every pin on the map is a clinic.
    folium.CircleMarker(
        origin,
        radius=9,
        color="#b3261e",
        fill=True,
        fill_opacity=0.6,
        tooltip=escape_for_map(f"{result.origin.postcode} {result.origin.place}"),
    ).add_to(results_map)

    # One GeoJSON layer for all clinics: far faster to render than a folium object each.
    features = [
        clinic_feature(hit.clinic, _popup_html(hit, number), number)
        for number, hit in enumerate(result.hits, start=first_number)
    ]
    if features:
        # Clinics in one building, or many in a city centre, merge into a numbered cluster
        # that opens when clicked or zoomed into (leaflet.markercluster, from our files).
        clusters = MarkerCluster(
            name="clinic clusters",
            options={"maxClusterRadius": 40, "disableClusteringAtZoom": 17},
        ).add_to(results_map)
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name="clinics",
            on_each_feature=BIND_RESULT_PIN,
            point_to_layer=NUMBERED_PIN,
        ).add_to(clusters)

    points = [origin] + [(hit.clinic.latitude, hit.clinic.longitude) for hit in result.hits]
    south = min(lat for lat, _ in points)
    north = max(lat for lat, _ in points)
    west = min(lon for _, lon in points)
    east = max(lon for _, lon in points)
    results_map.fit_bounds([[south, west], [north, east]], padding=(30, 30), max_zoom=15)
    return map_parts(results_map)
