"""JSON shapes of the directory, as the public API and the staff tools answer with them."""

from __future__ import annotations

from ..complaints import Complaint
from ..models import Clinic, PostalCode, Practice, as_utc, now_utc, today
from ..places import Place
from ..postcodes import PostcodePlace
from ..search import ClinicHit
from ..validation import capped_list
from .catalogues import service_vocabulary


def postcode_json(postal_code: PostalCode | PostcodePlace | Place) -> dict:
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


def place_json(place: Place) -> dict:
    """Describe a search's origin or a suggested place: its postcode's facts, plus its name.

    ``label`` names it for people ("Tromsø", "0150 Oslo"), ``query`` is the ``place=``
    that finds it again, ``kind`` says how it was found.
    """
    return {
        **postcode_json(place),
        "label": place.label,
        "query": place.query,
        "kind": place.kind.value,
    }


def licence_json(practice: Practice) -> dict:
    """What the check against the Health Personnel Register found, for patients: never
    "valid" unless it was checked (``unchecked`` says it was not)."""
    clinician = practice.clinician
    checked_at = clinician.licence_checked_at
    return {
        "status": clinician.licence_status.value,
        "checked_at": as_utc(checked_at).isoformat() if checked_at else None,
        "categories": list(clinician.licence_categories or []),
    }


def practice_json(practice: Practice, now) -> dict:
    """One clinician as they work at this clinic."""
    clinician = practice.clinician
    return {
        "name": clinician.name,
        "profession": practice.profession.value,
        "hpr_number": clinician.hpr_number,
        # Lists stored before the caps (validation.py) are cut to them here.
        "languages": capped_list(clinician.languages),
        **services_json(capped_list(practice.services)),
        "public_agreement": practice.public_agreement,
        "agreement_municipality": practice.agreement_municipality,
        # null when unknown or not confirmed within 90 days
        "accepts_new_patients": practice.accepts_new_patients_as_of(now),
        "licence": licence_json(practice),
    }


def services_json(keys: list[str], prefix: str = "") -> dict:
    """Services as the API gives them: ``services`` their names (in English, like every
    API answer), ``service_keys`` their stable vocabulary keys, in the same order."""
    return {
        f"{prefix}services": service_vocabulary().names(keys, "en"),
        f"{prefix}service_keys": list(keys),
    }


def service_vocabulary_json() -> dict:
    """The service vocabulary: each key with its name in both languages."""
    return {
        "services": [
            {"key": service.key, "name": dict(service.names)}
            for service in service_vocabulary().services.values()
        ]
    }


def clinic_json(clinic: Clinic) -> dict:
    """Describe a clinic and its clinicians for API callers."""
    now = now_utc()
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
        "clinicians": [practice_json(practice, now) for practice in clinic.listed_practices],
        "phone": clinic.phone,
        "email": clinic.email,
        "website": clinic.website,
        "booking_url": clinic.booking_url,
        "step_free_access": clinic.step_free_access,
        "accessible_toilet": clinic.accessible_toilet,
        "parking": clinic.parking,
        # A listed clinician here has a public agreement (details per clinician).
        "helfo_agreement": clinic.has_public_agreement(),
        # True if a clinician here takes new patients, as confirmed within 90 days;
        # false if every one has said no; null when unknown.
        "accepts_new_patients": clinic.accepts_new_patients_as_of(now),
        "closed_until": clinic.closed_until.isoformat() if clinic.is_closed_on(today()) else None,
    }


def hit_json(hit: ClinicHit) -> dict:
    """Describe a search hit: the clinic and its distance, rounded to metres."""
    return {**clinic_json(hit.clinic), "distance_km": round(hit.distance_km, 3)}


def complaint_json(complaint: Complaint) -> dict:
    """A complaint from the catalogue, named in both languages."""
    return {
        "slug": complaint.slug,
        "name": dict(complaint.names),
        "professions": [profession.value for profession in complaint.professions],
    }
