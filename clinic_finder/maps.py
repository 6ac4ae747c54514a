"""Turn search results into the parts of a folium map that a template embeds.

Leaflet itself comes from our static files (see ``vendor.py``); folium's own header,
which links to CDNs and styles the whole page, is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import folium
from flask_babel import gettext as _
from folium.plugins import MarkerCluster
from folium.utilities import JsCode
from markupsafe import Markup, escape

from .formatting import format_km
from .search import SearchResult


def escape_for_map(text: object) -> str:
    """Escape text for a map popup or tooltip.

    folium places popup and tooltip text inside JavaScript template strings, where
    HTML-escaping alone still lets ``${…}`` and backticks run; escape those too.
    """
    return str(escape(str(text))).replace("$", "&#36;").replace("`", "&#96;")


@dataclass(frozen=True)
class MapParts:
    """The map's element and the script that fills it."""

    html: Markup
    script: Markup


# Bind each clinic's popup from its pre-escaped feature property; no HTML is built in JS.
_BIND_POPUP = JsCode(
    "function(feature, layer) {"
    " layer.bindPopup(feature.properties.popup_html);"
    " layer.options.title = feature.properties.title;"
    " layer.options.alt = feature.properties.title;"
    " }"
)


def _popup_html(hit) -> str:
    clinic = hit.clinic
    details = escape_for_map(_("Details in the list"))
    lines = [
        f"<strong>{escape_for_map(clinic.name)}</strong>",
        escape_for_map(clinic.address),
        escape_for_map(f"{clinic.postcode} {clinic.city}"),
        escape_for_map(format_km(hit.distance_km)),
        f'<a href="#clinic-{int(clinic.id)}">{details}</a>',
    ]
    return "<br>".join(line for line in lines if line)


def build_results_map(result: SearchResult, *, tiles_url: str, tiles_attribution: str) -> MapParts:
    """Build a map of the searched postcode and one marker per clinic, zoomed to fit."""
    origin = (result.origin.latitude, result.origin.longitude)
    results_map = folium.Map(location=origin, zoom_start=11, tiles=None, control_scale=True)
    folium.TileLayer(tiles=tiles_url, attr=tiles_attribution, max_zoom=18).add_to(results_map)
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
        {
            "type": "Feature",
            "geometry": {
                "type": "Point",
                "coordinates": [hit.clinic.longitude, hit.clinic.latitude],
            },
            "properties": {
                "clinic_id": hit.clinic.id,
                # Leaflet sets the marker's title as a DOM property (text, never HTML),
                # so it takes the plain name; the JSON encoding keeps it inert in the script.
                "title": hit.clinic.name,
                "popup_html": _popup_html(hit),
            },
        }
        for hit in result.hits
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
            on_each_feature=_BIND_POPUP,
        ).add_to(clusters)

    points = [origin] + [(hit.clinic.latitude, hit.clinic.longitude) for hit in result.hits]
    south = min(lat for lat, _ in points)
    north = max(lat for lat, _ in points)
    west = min(lon for _, lon in points)
    east = max(lon for _, lon in points)
    results_map.fit_bounds([[south, west], [north, east]], padding=(30, 30), max_zoom=15)

    root = results_map.get_root()
    root.render()
    # folium's output is markup by design; every value from the data in it went through
    # escape_for_map or Jinja's HTML-safe tojson above.
    html = Markup(root.html.render())  # noqa: S704  # nosec B704  # folium's markup, data escaped
    script = Markup(root.script.render())  # noqa: S704  # nosec B704  # as above
    return MapParts(html=html, script=script)
