"""Serve Leaflet and its marker-cluster plugin from pinned XStatic packages, so no page
loads from a CDN."""

from flask import Blueprint
from xstatic.pkg import leaflet as xstatic_leaflet
from xstatic.pkg import leaflet_markercluster as xstatic_markercluster

leaflet_bp = Blueprint(
    "leaflet",
    __name__,
    static_folder=xstatic_leaflet.BASE_DIR,
    static_url_path="/static/vendor/leaflet",
)
markercluster_bp = Blueprint(
    "markercluster",
    __name__,
    static_folder=xstatic_markercluster.BASE_DIR,
    static_url_path="/static/vendor/leaflet.markercluster",
)
