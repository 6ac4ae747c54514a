"""The patient-facing finder: a postcode search with a list and a map."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from ..extensions import db
from ..maps import build_results_map
from ..search import find_clinics_near
from .forms import SearchForm

bp = Blueprint("public", __name__)


@bp.get("/")
@bp.get("/find")
def find():
    """Show the search form, and the nearest clinics when a postcode was given."""
    form = SearchForm(request.args)
    if not request.args:
        return render_template("public/find.html", form=form, result=None)
    if not form.validate():
        return render_template("public/find.html", form=form, result=None), 400

    page_size = current_app.config["SEARCH_PAGE_SIZE"]
    result = find_clinics_near(
        db.session,
        form.postal_code,
        radius_km=form.radius.data,
        profession=form.selected_profession,
        limit=page_size,
        offset=(form.page_number - 1) * page_size,
    )
    results_map = build_results_map(
        result,
        tiles_url=current_app.config["MAP_TILES_URL"],
        tiles_attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
    )
    page_count = max(1, -(-result.total // page_size))
    return render_template(
        "public/find.html",
        form=form,
        result=result,
        results_map=results_map,
        page=form.page_number,
        page_count=page_count,
        first_index=(form.page_number - 1) * page_size if result.within_radius else 0,
    )
