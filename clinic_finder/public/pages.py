"""Shareable clinic pages, and the sitemap and robots.txt that lead search engines to them."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)

from ..clinic_pages import (
    build_clinic_map,
    clinic_structured_data,
    directions,
    get_listed_clinic,
    language_name,
    listed_clinic_slugs,
    openstreetmap_url,
    sitemap_xml,
    slugify,
)
from ..extensions import db
from ..hours import has_hours, is_open_at, week_rows
from ..i18n import current_language, profession_name
from ..models import now_utc
from ..postcodes import lookup_postcode
from ..search import distance_km
from ..web.page_meta import clinic_description, page_meta, public_url

bp = Blueprint("clinics", __name__)
# Any template can link to a clinic page: url_for('clinics.clinic', clinic_id=…, slug=name|slug).
bp.add_app_template_filter(slugify, "slug")
# Any result card can offer directions: directions(clinic, (lat, lon) or None).
bp.add_app_template_global(directions, "directions")


def _canonical_path(clinic_id: int, name: str) -> str:
    return url_for("clinics.clinic", clinic_id=clinic_id, slug=slugify(name))


def _to_canonical(clinic_id: int, name: str):
    """Redirect for good (301) to the clinic's canonical address, keeping the query."""
    query = request.query_string.decode("ascii", "replace")
    return redirect(_canonical_path(clinic_id, name) + (f"?{query}" if query else ""), code=301)


@bp.get("/clinics/<int:clinic_id>")
def clinic_by_id(clinic_id: int):
    """Send a bare clinic id to the clinic's canonical address (301)."""
    clinic = get_listed_clinic(db.session, clinic_id)
    if clinic is None:
        abort(404)
    return _to_canonical(clinic.id, clinic.name)


@bp.get("/clinics/<int:clinic_id>-<slug>")
def clinic(clinic_id: int, slug: str):
    """Show one listed clinic; a wrong or old slug redirects (301) to the current one."""
    clinic = get_listed_clinic(db.session, clinic_id)
    if clinic is None:
        abort(404)
    if slug != slugify(clinic.name):
        return _to_canonical(clinic.id, clinic.name)

    # ?from= is the postcode the patient searched from; a bad one is simply ignored.
    code = request.args.get("from", "")
    origin = lookup_postcode(db.session, code) if code.isascii() and code.isdigit() else None
    start = (origin.latitude, origin.longitude) if origin is not None else None
    page_url = public_url(_canonical_path(clinic.id, clinic.name))
    language = current_language()
    moment = now_utc()
    return render_template(
        "public/clinic.html",
        clinic=clinic,
        origin=origin,
        distance=distance_km(start, (clinic.latitude, clinic.longitude)) if start else None,
        directions=directions(clinic, start),
        openstreetmap_url=openstreetmap_url(clinic),
        structured_data=clinic_structured_data(clinic, page_url),
        clinic_map=build_clinic_map(
            clinic,
            tiles_url=current_app.config["MAP_TILES_URL"],
            tiles_attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
        ),
        profession_name=profession_name,
        language_name=lambda code: language_name(code, language),
        opening_hours=week_rows(clinic, language) if has_hours(clinic) else None,
        open_now=is_open_at(clinic, moment),
        share_url=page_url,
        page_meta=page_meta(clinic_description(clinic, moment)),
    )


@bp.get("/sitemap.xml")
def sitemap():
    """List the finder and every listed clinic's page for search engines."""
    urls = [public_url(url_for("public.find"))]
    urls += [
        public_url(url_for("clinics.clinic", clinic_id=clinic_id, slug=slug))
        for clinic_id, slug in listed_clinic_slugs(db.session)
    ]
    response = Response(sitemap_xml(urls), mimetype="application/xml")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


@bp.get("/robots.txt")
def robots():
    """Point crawlers at the sitemap; keep them out of the staff area and the request API."""
    lines = [
        "User-agent: *",
        "Disallow: /staff",
        "Disallow: /api/v1/contact-requests",
        "",
        f"Sitemap: {public_url(url_for('clinics.sitemap'))}",
        "",
    ]
    return Response("\n".join(lines), mimetype="text/plain")
