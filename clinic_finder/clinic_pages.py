"""One public page per listed clinic: its address, slug, structured data, map and sitemap.

Plain functions the views in ``public/pages.py`` call, so those stay thin.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote
from xml.etree import ElementTree

import folium
from babel import Locale
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from .formatting import http_url
from .maps import BIND_POPUP, MapParts, base_map, clinic_feature, escape_for_map, map_parts
from .models import Clinic, ListedClinic, Practice, Profession

SCHEMA_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SITEMAP_NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
# Letters NFKD cannot take apart into ASCII; Norwegian ones first.
_TRANSLITERATION = str.maketrans(
    {"æ": "ae", "ø": "o", "å": "a", "ß": "ss", "đ": "d", "ð": "d", "þ": "th", "ł": "l", "œ": "oe"}
)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
SLUG_MAX_LENGTH = 80


def slugify(name: str) -> str:
    """An ASCII slug for a URL: ``Fysio Ås & Sønn`` becomes ``fysio-as-sonn``."""
    text = unicodedata.normalize("NFKC", name).lower().translate(_TRANSLITERATION)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", text).strip("-")[:SLUG_MAX_LENGTH].rstrip("-")
    # A name with no Latin letters at all still gets a readable URL.
    return slug or "clinic"


def language_name(code: str, in_language: str) -> str:
    """A language code such as ``en`` named in the page's language ("engelsk"); else the code."""
    try:
        name = Locale.parse(in_language).languages.get(code.strip().lower())
    except (ValueError, TypeError):
        name = None
    return name or code


def _listed():
    """Clinics patients can find: those in the search index (ListedClinic), which the
    database's triggers keep to exactly the active clinics with a listed practice."""
    return exists().where(ListedClinic.clinic_id == Clinic.id)


def get_listed_clinic(session: Session, clinic_id: int) -> Clinic | None:
    """The clinic with this id if patients can find it, with its practices loaded; else None."""
    return session.scalar(
        select(Clinic)
        .where(Clinic.id == clinic_id, _listed())
        .options(
            selectinload(Clinic.practices).joinedload(Practice.clinician),
            selectinload(Clinic.postal_code),
        )
    )


def listed_clinic_slugs(session: Session) -> list[tuple[int, str]]:
    """(id, slug) of every listed clinic, by id: what the sitemap lists."""
    rows = session.execute(select(Clinic.id, Clinic.name).where(_listed()).order_by(Clinic.id))
    return [(clinic_id, slugify(name)) for clinic_id, name in rows]


def all_physiotherapy(clinic: Clinic) -> bool:
    """Whether every clinician here practises physiotherapy.

    Manual therapists count: in Norway manuellterapeut is a specialisation that only
    physiotherapists can take, so a clinic of physiotherapists and manual therapists is a
    physiotherapy practice. Chiropractic has no schema.org type of its own.
    """
    physiotherapy = {Profession.PHYSIOTHERAPIST, Profession.MANUAL_THERAPIST}
    practices = clinic.listed_practices
    return bool(practices) and all(p.profession in physiotherapy for p in practices)


def clinic_structured_data(clinic: Clinic, page_url: str) -> dict:
    """schema.org data for the clinic, for a ``<script type="application/ld+json">``.

    ``url`` is this page (the page about this location), ``sameAs`` the clinic's own
    website; MedicalClinic in general, Physiotherapy when all clinicians practise it.
    """
    data: dict = {
        "@context": "https://schema.org",
        "@type": "Physiotherapy" if all_physiotherapy(clinic) else "MedicalClinic",
        "@id": f"{page_url}#clinic",
        "name": clinic.name,
        "url": page_url,
        "address": {
            "@type": "PostalAddress",
            "streetAddress": clinic.address,
            "postalCode": clinic.postcode,
            "addressLocality": clinic.city,
            "addressCountry": "NO",
        },
        "geo": {
            "@type": "GeoCoordinates",
            "latitude": round(clinic.latitude, 6),
            "longitude": round(clinic.longitude, 6),
        },
    }
    if clinic.phone:
        data["telephone"] = clinic.phone
    if clinic.email:
        data["email"] = clinic.email
    website = http_url(clinic.website)
    if website:
        data["sameAs"] = website
    if clinic.opening_hours:
        data["openingHoursSpecification"] = [
            {
                "@type": "OpeningHoursSpecification",
                "dayOfWeek": f"https://schema.org/{SCHEMA_DAYS[entry.weekday]}",
                "opens": entry.opens.strftime("%H:%M"),
                "closes": entry.closes.strftime("%H:%M"),
            }
            for entry in clinic.opening_hours
        ]
    return data


def _coordinates(latitude: float, longitude: float) -> str:
    return f"{latitude:.5f},{longitude:.5f}"


def directions_url(origin: tuple[float, float] | None, clinic: Clinic) -> str:
    """OpenStreetMap's car directions to the clinic, from a point (the searched place) or,
    without one, from wherever the patient types in."""
    start = _coordinates(*origin) if origin is not None else ""
    route = f"{start};{_coordinates(clinic.latitude, clinic.longitude)}"
    return "https://www.openstreetmap.org/directions?engine=fossgis_osrm_car&route=" + quote(
        route, safe=""
    )


@dataclass(frozen=True)
class Directions:
    """Where "Directions" leads: OpenStreetMap in a browser; on a phone, its maps app
    (a geo: URI on Android, Apple Maps' link on iOS, which has no geo: handler).
    static/js/directions.js picks the phone's link; without JavaScript it is OpenStreetMap."""

    web_url: str
    geo_uri: str
    apple_url: str


def directions(clinic: Clinic, origin: tuple[float, float] | None = None) -> Directions:
    """The ways to get directions to a clinic (see ``Directions``)."""
    point = _coordinates(clinic.latitude, clinic.longitude)
    # RFC 5870 with the label convention Android's maps apps read: geo:0,0?q=lat,lon(Name).
    label = quote(clinic.name, safe="")
    return Directions(
        web_url=directions_url(origin, clinic),
        geo_uri=f"geo:{point}?q={quote(point, safe=',')}({label})",
        apple_url=f"https://maps.apple.com/?daddr={quote(point, safe=',')}&q={label}",
    )


def openstreetmap_url(clinic: Clinic) -> str:
    """The clinic's place on openstreetmap.org, with a marker."""
    lat, lon = f"{clinic.latitude:.5f}", f"{clinic.longitude:.5f}"
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"


def build_clinic_map(clinic: Clinic, *, tiles_url: str, tiles_attribution: str) -> MapParts:
    """Build a small map with one marker on the clinic (Leaflet from our static files)."""
    location = (clinic.latitude, clinic.longitude)
    clinic_map = base_map(location, 15, tiles_url=tiles_url, tiles_attribution=tiles_attribution)
    # A GeoJSON feature bound as the results map does it (maps.py): folium's own Popup
    # needs jQuery and writes inline styles, which the page's CSP refuses.
    popup_html = "<br>".join(
        escape_for_map(line)
        for line in (clinic.name, clinic.address, f"{clinic.postcode} {clinic.city}")
        if line.strip()
    )
    folium.GeoJson(
        {"type": "FeatureCollection", "features": [clinic_feature(clinic, popup_html)]},
        name="clinic",
        on_each_feature=BIND_POPUP,
    ).add_to(clinic_map)
    return map_parts(clinic_map)


def sitemap_xml(urls: Iterable[str]) -> bytes:
    """A sitemap (sitemaps.org 0.9) listing these absolute URLs; ElementTree escapes them."""
    urlset = ElementTree.Element(f"{{{SITEMAP_NAMESPACE}}}urlset")
    for url in urls:
        entry = ElementTree.SubElement(urlset, f"{{{SITEMAP_NAMESPACE}}}url")
        ElementTree.SubElement(entry, f"{{{SITEMAP_NAMESPACE}}}loc").text = url
    return ElementTree.tostring(
        urlset, encoding="utf-8", xml_declaration=True, default_namespace=SITEMAP_NAMESPACE
    )
