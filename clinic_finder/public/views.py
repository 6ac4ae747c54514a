"""The patient-facing finder: a postcode search with a list and a map."""

from __future__ import annotations

from flask import Blueprint, current_app, make_response, render_template, request

from ..extensions import db
from ..finder import count_choices
from ..finder import find as run_finder
from ..i18n import PROFESSION_NAMES, current_language
from ..maps import build_results_map
from ..models import Profession, now_utc
from ..web.catalogues import profession_guide
from ..web.links import request_arguments, url_pattern
from ..web.page_meta import finder_page_meta, results_page_meta
from ..web.search_forms import LANGUAGE_CODES, FinderForm

bp = Blueprint("public", __name__)
bp.add_app_template_global(url_pattern)
bp.add_app_template_global(request_arguments)


def _profession_words() -> dict:
    """The professions in words once a page, not once a card and clinician (each a
    catalogue look-up)."""
    return {
        "profession_names": {
            profession: str(name) for profession, name in PROFESSION_NAMES.items()
        },
        "profession_by_value": {profession.value: profession for profession in Profession},
    }


@bp.get("/")
@bp.get("/find")
def find():
    """Show the search form, and the nearest clinics when a postcode was given."""
    form = FinderForm(request.args)
    context = {"form": form, "result": None, "guide": profession_guide(), **_profession_words()}
    complaint = form.selected_complaint
    context["page_meta"] = finder_page_meta(complaint)
    if "postcode" not in request.args and "place" not in request.args:
        # A deep link may bring a complaint or profession alone: a prefilled form, no error,
        # and for a complaint, who can help with it.
        return render_template("public/find.html", **context, complaint=complaint)
    valid = form.validate()
    db.session.commit()  # keeps a new geocoder answer in the cache
    if form.place_choices:
        # A name several places share: the page offers them, it is no mistake of the patient.
        return render_template("public/find.html", **context, complaint=complaint)
    if not valid:
        return render_template("public/find.html", **context), 400

    page_size = current_app.config["SEARCH_PAGE_SIZE"]
    moment = now_utc()
    found = run_finder(
        db.session,
        form.origin,
        form.finder_query(),
        limit=page_size,
        offset=(form.page_number - 1) * page_size,
        now=moment,
        as_cards=True,
    )
    result = found.search
    results_map = build_results_map(
        result,
        tiles_url=current_app.config["MAP_TILES_URL"],
        tiles_attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
        language=current_language(),
    )
    page_count = max(1, -(-result.total // page_size))
    context["result"] = result
    context["page_meta"] = results_page_meta(result, form)
    return render_template(
        "public/find.html",
        **context,
        found=found,
        results_map=results_map,
        page=form.page_number,
        page_count=page_count,
        first_index=(form.page_number - 1) * page_size if result.within_radius else 0,
        complaint=complaint,
    )


@bp.get("/find/search-form")
def search_form():
    """Show the search form with a count beside each choice, as an HTML fragment: what the
    results page's "Change search" panel fetches when it is opened."""
    return _search_form_response("public/_search_form.html")


@bp.get("/find/change-search")
def change_search():
    """Show the search form with its counts on a page of its own: "Change search" without
    JavaScript."""
    return _search_form_response("public/change_search.html")


def _search_form_response(template: str):
    """Render the search form for /find's query arguments, validated as /find does, with
    the counts only for a search /find would run (a form with errors is a 400)."""
    form = FinderForm(request.args)
    context = {
        "form": form,
        "choice_counts": None,
        # A place several places share: each choice runs the search itself.
        "place_choice_endpoint": "public.find",
        **_profession_words(),
    }
    status = 200
    if "postcode" in request.args or "place" in request.args:
        valid = form.validate()
        db.session.commit()  # keeps a new geocoder answer in the cache
        if not valid and not form.place_choices:
            status = 400
        elif valid:
            context["choice_counts"] = count_choices(
                db.session,
                form.origin,
                form.finder_query(),
                now=now_utc(),
                count_languages=LANGUAGE_CODES,
            )
    response = make_response(render_template(template, **context), status)
    # A copy of the results page's form: nothing a search engine should list.
    response.headers["X-Robots-Tag"] = "noindex"
    return response
