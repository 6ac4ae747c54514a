"""JSON API v1: the same search the finder page runs, for the article site and others."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..extensions import csrf, db
from ..models import Clinic, PostalCode, now_utc, today
from ..public.forms import ApiSearchForm
from ..search import ClinicHit, find_clinics_near, get_postcode

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Read-only JSON endpoints: no cookies are used to authorise them, so no CSRF token.
csrf.exempt(bp)


def postcode_json(postal_code: PostalCode) -> dict:
    """Describe a postcode for API callers."""
    return {
        "postcode": postal_code.postcode,
        "place": postal_code.place,
        "municipality": postal_code.municipality,
        "county": postal_code.county,
        "latitude": postal_code.latitude,
        "longitude": postal_code.longitude,
        "in_use": postal_code.in_use,
    }


def clinic_json(clinic: Clinic) -> dict:
    """Describe a clinic and its clinicians for API callers."""
    return {
        "id": clinic.id,
        "name": clinic.name,
        "address": clinic.address,
        "postcode": clinic.postcode,
        "city": clinic.city,
        "latitude": clinic.latitude,
        "longitude": clinic.longitude,
        "location_precision": clinic.location_source.value,
        "professions": [profession.value for profession in clinic.professions],
        "clinicians": [
            {
                "name": clinician.name,
                "profession": clinician.profession.value,
                "hpr_number": clinician.hpr_number,
                "languages": clinician.languages,
                "services": clinician.services,
            }
            for clinician in clinic.active_clinicians
        ],
        "phone": clinic.phone,
        "email": clinic.email,
        "website": clinic.website,
        "helfo_agreement": clinic.helfo_agreement,
        # null when unknown or not confirmed within 90 days
        "accepts_new_patients": clinic.accepts_new_patients_as_of(now_utc()),
        "closed_until": clinic.closed_until.isoformat() if clinic.is_closed_on(today()) else None,
    }


def hit_json(hit: ClinicHit) -> dict:
    """Describe a search hit: the clinic and its distance, rounded to metres."""
    return {**clinic_json(hit.clinic), "distance_km": round(hit.distance_km, 3)}


def _bad_request(errors: dict[str, list[str]]):
    return jsonify({"error": "Bad Request", "errors": errors}), 400


@bp.get("/clinics")
def clinics():
    """Search clinics near a postcode; 400 naming each bad parameter."""
    form = ApiSearchForm(request.args)
    if not form.validate():
        return _bad_request(form.errors)
    limit = form.limit.data or 20
    result = find_clinics_near(
        db.session,
        form.postal_code,
        radius_km=form.radius.data,
        profession=form.selected_profession,
        limit=limit,
        offset=(form.page_number - 1) * limit,
    )
    return jsonify(
        {
            "origin": postcode_json(result.origin),
            "radius_km": result.radius_km,
            "within_radius": result.within_radius,
            "total": result.total,
            "page": form.page_number if result.within_radius else 1,
            "limit": limit,
            "results": [hit_json(hit) for hit in result.hits],
        }
    )


@bp.get("/postcodes/<code>")
def postcode(code: str):
    """Return one postcode from the register, or 404."""
    if not (len(code) == 4 and code.isascii() and code.isdigit()):
        return _bad_request({"postcode": ["A postcode is four digits, for example 0150."]})
    postal_code = get_postcode(db.session, code)
    if postal_code is None:
        return jsonify(
            {"error": "Not Found", "message": f"No postcode {code} in the register."}
        ), 404
    return jsonify(postcode_json(postal_code))
