"""JSON API v1: the same search the finder page runs, for the article site and others."""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources

from flask import Blueprint, current_app, jsonify, request
from werkzeug.datastructures import MultiDict

from ..extensions import csrf, db
from ..finder import rank
from ..models import now_utc
from ..origins import is_allowed_origin
from ..places import MAX_PLACE_LENGTH, suggest_places
from ..postcodes import lookup_postcode
from ..postcodes import nearest_postcode as find_nearest_postcode
from ..public_json import answer_texts
from ..validation import check_in_norway
from ..web.catalogues import complaint_catalogue
from ..web.contact_form import ContactForm
from ..web.contact_submission import (
    NOT_STORED_RETRY_AFTER,
    RequestNotStoredError,
    contact_requests_limit,
    submit_contact_request,
)
from ..web.serializers import (
    complaint_json,
    place_json,
    postcode_json,
    service_vocabulary_json,
)
from .search_query import read_search

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# No cookie authorises anything here, so there is no CSRF token: the reads change nothing,
# and the one write (contact requests) accepts only JSON from this site or allowed origins.
csrf.exempt(bp)

CONTACT_FIELDS = ("name", "email", "phone", "postcode", "profession", "message", "clinic_id")


def cacheable(body: dict):
    """A JSON answer that caches may keep for API_CACHE_MAX_AGE seconds, then revalidate.

    The ETag is a hash of the body, so it changes exactly when the answer does — when a
    clinic in it is added, edited, deactivated or moved — and a client or proxy that sends
    it back in If-None-Match gets 304 with no body. The answers hold only the public
    directory, never anything about the caller, so shared caches may keep them.
    """
    return _cacheable(jsonify(body))


def _cacheable(response):
    # Written whole: what response.cache_control would write, without parsing it back twice.
    response.headers["Cache-Control"] = f"public, max-age={current_app.config['API_CACHE_MAX_AGE']}"
    response.add_etag()
    return response.make_conditional(request)


def cacheable_with_results(body: dict, results: list[str]):
    """``cacheable(body)`` with ``body["results"]`` given as the entries' JSON texts, as
    ``jsonify`` writes them (public_json.answer_texts): put in, not parsed and encoded."""
    provider = current_app.json
    if not provider.writes_compact():  # debug mode indents: encode it all
        return cacheable({**body, "results": [json.loads(text) for text in results]})
    # Keys are sorted and a quote inside a string is escaped, so the empty list is found
    # exactly where the results go.
    text = provider.dumps({**body, "results": []}, separators=(",", ":"))
    text = text.replace('"results":[]', f'"results":[{",".join(results)}]', 1)
    return _cacheable(current_app.response_class(f"{text}\n", mimetype=provider.mimetype))


def _bad_request(errors: dict[str, list[str]]):
    return jsonify({"error": "Bad Request", "errors": errors}), 400


@bp.get("/clinics")
def clinics():
    """Search clinics near a postcode; 400 naming each bad parameter."""
    if not db.session().in_transaction():
        # A search only reads (bar a new geocoder answer, a cache): without a transaction
        # PostgreSQL is spared BEGIN and ROLLBACK, two of a search's six round trips. Each
        # statement reads its own snapshot either way (READ COMMITTED).
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    search = read_search(db.session, request.args, complaint_catalogue())
    if search.resolved_place:
        db.session.commit()  # keeps a new geocoder answer in the cache
    if search.errors or search.place_choices:
        if search.place_choices:
            several = f"Several places are called {search.place_text}: give one of choices' query."
            body = {
                "error": "Bad Request",
                "errors": {**search.errors, "place": [several]},
                "choices": [place_json(place) for place in search.place_choices],
            }
            return jsonify(body), 400
        return _bad_request(search.errors)
    limit = search.limit
    complaint = search.complaint
    now = now_utc()
    query = search.finder_query()
    page = rank(
        db.session,
        search.origin,
        query,
        limit=limit,
        offset=(search.page_number - 1) * limit,
        now=now,
    )
    # One read of the clinics' stored JSON (public_json.py), not the ORM.
    results = answer_texts(
        db.session,
        page.ranked,
        now,
        complaint.matching_service_keys if complaint is not None else None,
    )
    return cacheable_with_results(
        {
            "origin": place_json(search.origin),
            "radius_km": query.radius_km,
            "within_radius": page.within_radius,
            "total": page.total,
            "total_capped": page.total_capped,
            "page": search.page_number if page.within_radius else 1,
            "limit": limit,
            "complaint": complaint_json(complaint) if complaint is not None else None,
        },
        results,
    )


@bp.get("/places")
def places():
    """Suggest places from the postcode register for what was typed so far; 400 on a bad q.

    Only the register is read: no third party sees what patients type.
    """
    text = " ".join(request.args.get("q", "").split())
    if not text:
        return _bad_request({"q": ["Give q, the start of a postcode or place name."]})
    if len(text) > MAX_PLACE_LENGTH:
        return _bad_request({"q": [f"q must be at most {MAX_PLACE_LENGTH} characters."]})
    return cacheable({"places": [place_json(place) for place in suggest_places(db.session, text)]})


@bp.get("/services")
def services():
    """List the service vocabulary: each key, named in Norwegian and English."""
    return cacheable(service_vocabulary_json())


@bp.get("/postcodes/<code>")
def postcode(code: str):
    """Return one postcode from the register, or 404."""
    if not (len(code) == 4 and code.isascii() and code.isdigit()):
        return _bad_request({"postcode": ["A postcode is four digits, for example 0150."]})
    postal_code = lookup_postcode(db.session, code)
    if postal_code is None:
        return jsonify(
            {"error": "Not Found", "message": f"No postcode {code} in the register."}
        ), 404
    return cacheable(postcode_json(postal_code))


@bp.get("/postcodes/nearest")
def nearest_postcode():
    """The postcode nearest a point, for "use my location"; 400 naming a bad coordinate.

    The browser rounds the point to about 100 m before sending it; nothing here stores or
    logs it (access logs leave out query strings).
    """
    errors: dict[str, list[str]] = {}
    point = {}
    for name in ("latitude", "longitude"):
        try:
            value = float(request.args.get(name, ""))
        except ValueError:
            errors[name] = [f"{name} must be a number of degrees, e.g. 59.91."]
            continue
        if not math.isfinite(value):
            errors[name] = [f"{name} must be a number of degrees, e.g. 59.91."]
            continue
        point[name] = value
    if errors:
        return _bad_request(errors)
    try:
        check_in_norway(point["latitude"], point["longitude"])
    except ValueError:
        message = "That place is outside Norway; type a Norwegian postcode instead."
        return _bad_request({"latitude": [message], "longitude": [message]})
    place = find_nearest_postcode(db.session, point["latitude"], point["longitude"])
    if place is None:
        return jsonify({"error": "Not Found", "message": "The postcode register is empty."}), 404
    return jsonify(postcode_json(place))


@cache
def _openapi_description() -> dict:
    """Read the OpenAPI 3 description kept beside this module, once."""
    text = resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
    return json.loads(text)


@bp.get("/openapi.json")
def openapi():
    """Serve the OpenAPI 3 description of this API."""
    # Through jsonify, so it gets the same markup-safe escaping as every other response.
    return jsonify(_openapi_description())


def _origin_allowed(origin: str | None) -> bool:
    # Browsers send Origin with every cross-site POST; a request without one is not a
    # browser being tricked into posting, so it needs no CSRF defence.
    if origin is None:
        return True
    own = request.host_url.rstrip("/")
    return origin == own or is_allowed_origin(current_app.config, origin)


# What a preflight may ask for, per endpoint: the reads send If-None-Match to revalidate.
_CORS_METHODS = {
    "api.clinics": ("GET", "If-None-Match"),
    "api.places": ("GET", "If-None-Match"),
    "api.services": ("GET", "If-None-Match"),
    "api.postcode": ("GET", "If-None-Match"),
    "api.nearest_postcode": ("GET", "If-None-Match"),
    "api.contact_requests": ("POST", "Content-Type"),
}


@bp.after_request
def add_cors_headers(response):
    """Let the article sites (origins.py) read the API and post requests from a browser.

    An allowed Origin is echoed (never ``*``), with ``Vary: Origin`` — on every answer,
    since the reads are publicly cacheable and a cache must not hand one site's answer,
    with or without the header, to another. Other origins get no CORS header at all.
    """
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    allowed = _CORS_METHODS.get(request.endpoint or "")
    if allowed is None or not is_allowed_origin(current_app.config, origin):
        return response
    method, request_header = allowed
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = method
        response.headers["Access-Control-Allow-Headers"] = request_header
        response.headers["Access-Control-Max-Age"] = "600"
    elif method == "GET":
        response.headers["Access-Control-Expose-Headers"] = "ETag"
    return response


def _json_type_errors(body: dict) -> dict[str, list[str]]:
    """Name each field whose JSON type is wrong (a list where text goes, and so on)."""
    errors: dict[str, list[str]] = {}
    for field in CONTACT_FIELDS:
        value = body.get(field)
        if value is None:
            continue
        if field == "clinic_id":
            if isinstance(value, bool) or not isinstance(value, int):
                errors[field] = ["Give the clinic's id as a whole number, or null."]
        elif not isinstance(value, str):
            errors[field] = ["Give this as text (a JSON string), or null."]
    for flag in ("consent", "share_message_with_clinic"):
        if body.get(flag) is not None and not isinstance(body.get(flag), bool):
            errors[flag] = ["Give true or false."]
    return errors


def _form_data_from_json(body: dict) -> MultiDict:
    """Turn the API's JSON into the form data ContactForm validates, so both share rules."""
    data = MultiDict()
    for field in CONTACT_FIELDS:
        value = body.get(field)
        if value is not None:
            data[field] = str(value)
    if body.get("consent") is True:
        data["consent"] = "y"
    if body.get("share_message_with_clinic") is True:
        data["share_message_with_clinic"] = "y"
    return data


@bp.route("/contact-requests", methods=["POST", "OPTIONS"])
@contact_requests_limit
def contact_requests():
    """Store a contact request from the embedded finder; 201 with its reference."""
    origin = request.headers.get("Origin")
    if request.method == "OPTIONS":
        return current_app.make_response(("", 204))
    if not _origin_allowed(origin):
        return jsonify({"error": "Forbidden", "message": "This origin may not send requests."}), 403
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # absurdly nested JSON; silent=True does not catch this one
        body = None
    if not request.is_json or not isinstance(body, dict):
        return _bad_request({"body": ["Send a JSON object with Content-Type: application/json."]})
    type_errors = _json_type_errors(body)
    if type_errors:
        return _bad_request(type_errors)
    form = ContactForm(formdata=_form_data_from_json(body), meta={"csrf": False})
    if not form.validate():
        return _bad_request(form.errors)
    try:
        contact_request = submit_contact_request(form, "api")
    except RequestNotStoredError:
        body = {
            "error": "Service Unavailable",
            "message": "The request could not be stored, so nothing was kept or sent. "
            "Please send it again in a minute.",
        }
        headers = {"Retry-After": str(NOT_STORED_RETRY_AFTER), "Cache-Control": "no-store"}
        return jsonify(body), 503, headers
    response = jsonify({"reference": contact_request.reference})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response
