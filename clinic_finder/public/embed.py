"""The finder for an article site's iframe: postcode, profession, a short list and a map."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from ..clinic_pages import profession_name, slugify
from ..extensions import db
from ..headers import frameable_by_article_sites
from ..maps import build_results_map
from ..search import find_clinics_near
from .forms import SearchForm

bp = Blueprint("embed", __name__)

# An article's box has room for a few; the full finder is one link away.
EMBED_RESULTS = 5
COMPLAINT_MAX_LENGTH = 100


@bp.get("/embed")
@frameable_by_article_sites
def embed():
    """Show the compact finder, with the nearest clinics when a postcode was given."""
    form = SearchForm(request.args)
    context = {
        "form": form,
        "profession_name": profession_name,
        "slugify": slugify,
        # Passed through untouched for the complaint catalogue to come; never interpreted.
        "complaint": request.args.get("complaint", "")[:COMPLAINT_MAX_LENGTH] or None,
    }
    if not request.args.get("postcode"):
        # Only the article's topic (a profession) is given: a prefilled form, not an error.
        return render_template("public/embed.html", result=None, **context)
    if not form.validate():
        return render_template("public/embed.html", result=None, **context), 400
    result = find_clinics_near(
        db.session,
        form.postal_code,
        radius_km=form.radius.data,
        profession=form.selected_profession,
        limit=EMBED_RESULTS,
    )
    results_map = build_results_map(
        result,
        tiles_url=current_app.config["MAP_TILES_URL"],
        tiles_attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
    )
    return render_template("public/embed.html", result=result, results_map=results_map, **context)
