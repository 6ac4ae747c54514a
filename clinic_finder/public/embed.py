"""The finder for an article site's iframe: a compact search and a short list of clinics.

No map: on a phone a map inside an article's frame catches the reader's finger and the
page stops scrolling. The full finder, with its map and filters, is one tap away.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from ..clinic_pages import slugify
from ..extensions import db
from ..finder import FinderQuery
from ..finder import find as run_finder
from ..headers import frameable_by_article_sites
from ..i18n import profession_name
from ..models import now_utc
from ..origins import allowed_origins
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
        # embed-frame.js tells only these article sites how tall the page is.
        "parent_origins": allowed_origins(current_app.config),
    }
    if not request.args.get("postcode") and not request.args.get("place"):
        # Only the article's topic (a profession) is given: a prefilled form, not an error.
        return render_template("public/embed.html", result=None, **context)
    valid = form.validate()
    db.session.commit()  # keeps a new geocoder answer in the cache
    if form.place_choices:
        # A name several places share: offered as a choice, as the full finder does.
        return render_template("public/embed.html", result=None, **context)
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
    return render_template("public/embed.html", result=result, **context)
