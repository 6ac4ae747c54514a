"""JSON shapes of the directory, as the public API and the staff tools answer with them."""

from __future__ import annotations

from ..complaints import Complaint
from ..models import Clinic, PostalCode, now_utc, today
from ..postcodes import PostcodePlace
from ..search import ClinicHit
from ..validation import capped_list


def postcode_json(postal_code: PostalCode | PostcodePlace) -> dict:
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
                # Lists stored before the caps (validation.py) are cut to them here.
                "languages": capped_list(clinician.languages),
                "services": capped_list(clinician.services),
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


def complaint_json(complaint: Complaint) -> dict:
    """A complaint from the catalogue, named in both languages."""
    return {
        "slug": complaint.slug,
        "name": dict(complaint.names),
        "professions": [profession.value for profession in complaint.professions],
    }
