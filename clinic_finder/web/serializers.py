"""JSON shapes of the directory, as the public API and the staff tools answer with them."""

from __future__ import annotations

from ..complaints import Complaint
from ..models import PostalCode
from ..places import Place
from ..postcodes import PostcodePlace
from ..public_json import clinic_json as clinic_json  # built in the domain, where it is stored
from ..public_json import services_json as services_json
from ..search import ClinicHit
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


def service_vocabulary_json() -> dict:
    """The service vocabulary: each key with its name in both languages."""
    return {
        "services": [
            {"key": service.key, "name": dict(service.names)}
            for service in service_vocabulary().services.values()
        ]
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
