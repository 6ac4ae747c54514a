"""The finder for an article site's iframe: postcode, profession, a short list and a map."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from ..clinic_pages import slugify
from ..extensions import db
from ..finder import FinderQuery
from ..finder import find as run_finder
from ..headers import frameable_by_article_sites
from ..i18n import profession_name
from ..maps import build_results_map
from ..models import now_utc
from ..web.catalogues import complaint_catalogue
from ..web.search_forms import SearchForm

bp = Blueprint("embed", __name__)

# An article's box has room for a few; the full finder is one link away.
EMBED_RESULTS = 5


@bp.get("/embed")
@frameable_by_article_sites
def embed():
    """Show the compact finder, with the nearest clinics when a postcode was given."""
    form = SearchForm(request.args)
    # A complaint from the catalogue ranks the list and prefills the contact form; anything
    # else is ignored (an article's link must never break the box).
    complaint = complaint_catalogue().get(request.args.get("complaint", ""))
    context = {
        "form": form,
        "profession_name": profession_name,
        "slugify": slugify,
        "complaint": complaint.slug if complaint else None,
        "complaint_entry": complaint,
    }
    if not request.args.get("postcode") and not request.args.get("place"):
        # Only the article's topic (a profession) is given: a prefilled form, not an error.
        return render_template("public/embed.html", result=None, **context)
    valid = form.validate()
    db.session.commit()  # keeps a new geocoder answer in the cache
    if not valid:
        return render_template("public/embed.html", result=None, **context), 400
    result = run_finder(
        db.session,
        form.origin,
        FinderQuery(
            radius_km=form.radius.data,
            professions=frozenset([form.selected_profession] if form.selected_profession else []),
            complaint=complaint,
        ),
        limit=EMBED_RESULTS,
        offset=0,
        now=now_utc(),
    ).search
    results_map = build_results_map(
        result,
        tiles_url=current_app.config["MAP_TILES_URL"],
        tiles_attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
    )
    return render_template("public/embed.html", result=result, results_map=results_map, **context)
