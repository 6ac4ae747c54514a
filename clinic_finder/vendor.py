"""Serve Leaflet from the pinned XStatic-Leaflet package, so no page loads from a CDN."""

from flask import Blueprint
from xstatic.pkg import leaflet as xstatic_leaflet

LEAFLET_VERSION = xstatic_leaflet.VERSION

leaflet_bp = Blueprint(
    "leaflet",
    __name__,
    static_folder=xstatic_leaflet.BASE_DIR,
    static_url_path="/static/vendor/leaflet",
)
