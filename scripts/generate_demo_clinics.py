"""Generate the demo clinic list ``data/clinics.csv`` and what the Health Personnel Register
would answer about its clinicians, ``data/demo_hpr_register.json``.

Everything in the output is FICTIONAL demo data: clinic names, addresses, phone numbers,
e-mail addresses, websites, booking links and clinicians are made up. Organisation numbers
are random 9-digit numbers that merely pass the Brønnøysund check digit (they may or may not
belong to a real organisation), and HPR numbers are random numbers from 900000000-999999999,
above the range the real Health Personnel Register has handed out, so they name nobody.

Only the geography is real: clinics are placed in postcodes from Norway's postcode
register (``data/postnummer-koordinatar.tsv``), weighted by population, with a small
random offset from the postcode centre, and phone numbers use the area's landline prefix.
Two areas are kept empty on purpose so the app can demonstrate its "nothing within your
radius" fallback: no clinic lies within 30 km of Longyearbyen (9171) or Båtsfjord (9990);
Svalbard's only clinic is in Barentsburg.

The rest follows how Norway works, and ``check`` refuses a file that does not:

- One row per clinician at a clinic; the clinic's own columns repeat on each of its rows.
- The public agreement (driftsavtale) is the clinician's own, per clinic, with the clinic's
  municipality (the register's KOMMUNE, as the register spells it). Chiropractors never
  have one; about half the physiotherapists do, manual therapists sometimes. Physiotherapists
  with an agreement more often have a waiting list, so say no to new patients more often.
- About a tenth of the clinicians work at two clinics, within 30 km (the same or a
  neighbouring municipality): the same HPR number, name and languages on both rows, each
  practice with its own agreement and answer on new patients (an agreement is usually for
  one place of work). The same HPR number is never twice at one clinic.
- Services are from the service list (``data/services.json``), written as clinics write
  them: in Norwegian at about two clinics in three, in English at the rest.
- About half the clinics have a booking link (https, on .example) and, independently,
  about half say whether they have a step-free entrance, an accessible toilet and parking;
  for the others those cells are empty (unknown).
- Nearly nine in ten clinics have opening hours, written as receptionists type them
  (``man-fre 08-16; tor 08-19``, ``Man–fre 08.00–16.00``, a few in English): mostly
  weekday daytime, some evenings and a few Saturdays; villages have shorter weeks. So
  "open now" finds clinics in every big city on a weekday morning.

``data/demo_hpr_register.json`` has, for every clinician, the authorisations HPR would
report (KI chiropractor, FT physiotherapist, MT manual therapist, who also holds FT), so the
demo can run against a loopback HPR server. Most are valid; a handful each are deliberately
not: absent from the register, authorised for another profession only, suspended (from a
date before the reference date, with no end), and expired. Its dates are relative to a fixed
reference date (``REFERENCE_DATE``), never today, so regenerating changes nothing.

The output is deterministic for a given seed::

    python scripts/generate_demo_clinics.py [--seed N] [--output PATH] [--postcodes PATH]
        [--hpr-register PATH]

It prints a summary, with the HPR numbers of each licence case, to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import re
import sys
import unicodedata
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

from stdnum.no import orgnr

from clinic_finder.hours import DAY_ABBREVIATIONS, Week, parse_week
from clinic_finder.services import load_services

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTCODES = REPO_ROOT / "data" / "postnummer-koordinatar.tsv"
DEFAULT_OUTPUT = REPO_ROOT / "data" / "clinics.csv"
DEFAULT_HPR_REGISTER = REPO_ROOT / "data" / "demo_hpr_register.json"
DEFAULT_SEED = 20261125
VOCABULARY = load_services(REPO_ROOT / "data" / "services.json")

# The clinic list's columns in the order of the practices format (issue 12): one row per
# clinician at a clinic, the clinic's columns first.
COLUMNS = (
    "clinic_name", "org_number", "address", "postcode", "city", "phone", "email", "website",
    "booking_url", "step_free_access", "accessible_toilet", "parking", "opening_hours",
    "clinician_name", "profession", "hpr_number", "helfo_agreement", "municipality_agreement",
    "accepts_new_patients", "languages", "services", "latitude", "longitude",
)  # fmt: skip

# --- How many clinics, and where ----------------------------------------------------------

# Clinics drawn by population, so the cities get most of them.
POPULATION_CLINICS = 290
# Clinics put one each in a municipality that has none yet, so small places are covered too.
SPREAD_CLINICS = 45
# Municipalities that always get a clinic: Finnmark towns (the far north must not look
# empty apart from the deliberate Båtsfjord gap) and the two Sami core municipalities.
ANCHOR_MUNICIPALITIES = ("5403", "5406", "5405", "5444", "5430", "5437")
# Svalbard gets exactly one small clinic, in Barentsburg, well outside Longyearbyen's zone.
SVALBARD_POSTCODE = "9178"

MIN_CLINICS = 320
MIN_CLINICIANS = 550
MIN_MUNICIPALITIES = 90
MIN_FINNMARK_MUNICIPALITIES = 4

# fmt: off
FINNMARK_KOMMNR = frozenset(
    {"5403", "5404", "5405", "5406", "5430", "5432", "5433", "5434", "5435", "5436",
     "5437", "5438", "5439", "5440", "5441", "5442", "5443", "5444"}
)
# fmt: on
# Municipalities where Northern Sami is widely spoken (the Sami language administrative area).
SAMI_KOMMNR = frozenset({"5430", "5437", "5441", "5442", "5436"})
USABLE_KINDS = frozenset({"Gate-/veg-adresse", "Gateadresser og postboksar"})
EXCLUDED_COUNTIES = frozenset({"Svalbard", "Jan Mayen"})  # Svalbard is handled on its own.


@dataclass(frozen=True)
class EmptyZone:
    """A place the demo data must leave without any clinic nearby."""

    postcode: str
    place: str
    latitude: float
    longitude: float


EMPTY_ZONES = (
    EmptyZone("9171", "Longyearbyen", 78.21875, 15.64262),
    EmptyZone("9990", "Båtsfjord", 70.63440, 29.71850),
)
EMPTY_RADIUS_KM = 30.0

# A clinic sits near, not on, its postcode centre. Towns get a wider scatter than villages,
# whose postcode centre usually is the village itself (and the sea is close).
TOWN_POPULATION = 5000
TOWN_OFFSET_KM = 1.5
VILLAGE_OFFSET_KM = 0.8
MAX_OFFSET_KM = 3.0
EARTH_RADIUS_KM = 6371.0088

# --- Names and words ----------------------------------------------------------------------

# Word lists are kept dense on purpose, hence no formatter here.
# fmt: off
STREET_STEMS = (
    "Stor", "Kirke", "Strand", "Fjord", "Park", "Skole", "Sjø", "Havne", "Jernbane",
    "Stasjons", "Torg", "Konge", "Dronning", "Bjørke", "Furu", "Gran", "Eike", "Lønne",
    "Rogne", "Bjerke", "Elve", "Bekke", "Berg", "Fjell", "Skog", "Sol", "Mølle", "Smie",
    "Kvern", "Industri", "Handels", "Nygårds", "Ring", "Tun", "Løkke", "Myr", "Hage", "Bakke",
    "Holme", "Sandvik", "Lien", "Moe", "Prest", "Teater", "Post", "Tollbod",
)
# Eastern Norway writes -veien/-gaten, the west and north more often -vegen/-gata.
EAST_SUFFIXES = ("gata", "gaten", "veien", "veien", "vei", "gate")
WEST_SUFFIXES = ("gata", "vegen", "vegen", "veien", "gate")
WEST_COUNTIES = frozenset(
    {
        "Vestland", "Møre og Romsdal", "Trøndelag", "Nordland", "Innlandet",
        "Troms og Finnmark", "Rogaland", "Svalbard",
    }
)

NORWEGIAN_FIRST_NAMES = (
    "Anne", "Inger", "Kari", "Marit", "Ingrid", "Liv", "Eva", "Berit", "Astrid", "Hilde",
    "Solveig", "Marianne", "Randi", "Ida", "Nina", "Maria", "Elisabeth", "Kristin", "Emma",
    "Nora", "Sofie", "Ingeborg", "Sigrid", "Thea", "Silje", "Camilla", "Tone", "Hanne",
    "Marte", "Kristine", "Line", "Julie", "Åse", "Guro", "Ragnhild", "Tuva", "Maja", "Frida",
    "Bjørg", "Synnøve", "Jan", "Per", "Bjørn", "Ole", "Lars", "Kjell", "Knut", "Arne", "Svein",
    "Thomas", "Hans", "Geir", "Tor", "Morten", "Terje", "Espen", "Martin", "Anders", "Andreas",
    "Jonas", "Kristian", "Erik", "Magnus", "Henrik", "Even", "Sindre", "Håkon", "Øyvind",
    "Stian", "Jørgen", "Eirik", "Sander", "Mathias", "Emil", "Ola", "Trond", "Pål", "Sigurd",
    "Vegard", "Ørjan",
)
NORWEGIAN_SURNAMES = (
    "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen",
    "Jensen", "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen",
    "Johannessen", "Andreassen", "Jacobsen", "Dahl", "Jørgensen", "Halvorsen", "Henriksen",
    "Lund", "Sørensen", "Moen", "Gundersen", "Iversen", "Strand", "Solberg", "Svendsen",
    "Eide", "Knutsen", "Martinsen", "Paulsen", "Bakken", "Kristoffersen", "Mathisen", "Lie",
    "Amundsen", "Lunde", "Solheim", "Berge", "Moe", "Nygård", "Bakke", "Holm", "Lien", "Hauge",
    "Myhre", "Sæther", "Aas", "Haugland", "Sandvik", "Rønning", "Næss", "Vik", "Haug",
    "Birkeland", "Ødegård", "Strøm", "Myklebust", "Tangen", "Aune", "Bøe", "Brekke", "Tveit",
    "Løvås", "Fjeld", "Nordmann",
)


@dataclass(frozen=True)
class NamePool:
    """First names and surnames of one origin, and the language that goes with them."""

    first_names: tuple[str, ...]
    surnames: tuple[str, ...]
    language: str


# Clinicians of other origins, with the extra language they offer patients.
OTHER_ORIGINS = (
    NamePool(
        ("Piotr", "Katarzyna", "Tomasz", "Agnieszka", "Marta"),
        ("Nowak", "Kaczmarek", "Mazur", "Wójcik"),
        "pl",
    ),
    NamePool(
        ("Johan", "Elin", "Linnea", "Oskar"),
        ("Lindqvist", "Bergström", "Sjöberg", "Holmgren"),
        "sv",
    ),
    NamePool(
        ("Mette", "Rasmus", "Søren", "Louise"),
        ("Kjærgaard", "Mortensen", "Østergaard", "Lauridsen"),
        "da",
    ),
    NamePool(
        ("Lukas", "Katrin", "Jana", "Felix"), ("Müller", "Schneider", "Becker", "Hoffmann"), "de"
    ),
    NamePool(
        ("Ahmad", "Layla", "Omar", "Yasmin", "Rami"),
        ("Haddad", "Khalil", "Nasser", "Mansour"),
        "ar",
    ),
    NamePool(
        ("Abdirahman", "Hodan", "Fadumo", "Mahad"), ("Warsame", "Farah", "Abdi", "Jama"), "so"
    ),
    NamePool(
        ("Olena", "Oleksandr", "Iryna", "Dmytro"),
        ("Kovalenko", "Shevchenko", "Bondarenko", "Tkachenko"),
        "uk",
    ),
    NamePool(("James", "Emily", "Sarah", "Daniel"), ("Smith", "Taylor", "Wilson", "Murphy"), "en"),
)
SAMI_NAMES = NamePool(
    ("Máret", "Ánde", "Biret", "Niillas", "Inga", "Áslat", "Elle", "Mikkel"),
    ("Sara", "Eira", "Hætta", "Gaup", "Somby", "Buljo", "Utsi", "Turi"),
    "se",
)
OTHER_ORIGIN_SHARE = 0.12
SAMI_NAME_SHARE = 0.5  # in the Sami core municipalities

# Output order of services (so a clinician's list reads the same way everywhere), by their
# keys in data/services.json. The file names them as clinics write them: in Norwegian at
# most clinics, in English at about a third (writes_services_in_english), as imports do.
SERVICES = (
    "exercise-therapy", "manual-therapy", "spinal-manipulation", "dry-needling",
    "shockwave-therapy", "massage", "acupuncture", "taping", "ergonomic-advice",
    "sports-injuries", "rehabilitation", "pregnancy-care", "pelvic-girdle-pain",
    "headache-treatment", "jaw-treatment", "psychomotor-physiotherapy",
)
# Each profession has a core service everyone offers plus typical extras (with weights).
CORE_SERVICE = {
    "chiropractor": "spinal-manipulation",
    "physiotherapist": "exercise-therapy",
    "manual_therapist": "manual-therapy",
}
EXTRA_SERVICES: dict[str, dict[str, int]] = {
    "chiropractor": {
        "shockwave-therapy": 6, "dry-needling": 6, "exercise-therapy": 4,
        "headache-treatment": 4, "jaw-treatment": 3, "sports-injuries": 3, "pregnancy-care": 2,
        "taping": 2, "ergonomic-advice": 2, "massage": 1, "acupuncture": 1,
    },
    "physiotherapist": {
        "rehabilitation": 7, "sports-injuries": 5, "taping": 4, "massage": 4,
        "ergonomic-advice": 4, "pregnancy-care": 3, "pelvic-girdle-pain": 3, "dry-needling": 3,
        "psychomotor-physiotherapy": 2, "shockwave-therapy": 2, "acupuncture": 2,
        "headache-treatment": 2,
    },
    "manual_therapist": {
        "exercise-therapy": 8, "dry-needling": 6, "headache-treatment": 4,
        "spinal-manipulation": 3, "jaw-treatment": 3, "shockwave-therapy": 3,
        "sports-injuries": 3, "ergonomic-advice": 2, "taping": 2, "rehabilitation": 2,
    },
}

# Clinic kinds: which professions work there and what such clinics are called.
# {place} is the town or district, {street} the clinic's street, {surname} the sole owner's.
CLINIC_NAMES: dict[str, tuple[str, ...]] = {
    "physio": (
        "{place} Fysioterapi", "{place} Fysioterapisenter", "Aktiv Fysio {place}",
        "{street} Fysikalske Institutt",
        "{place} Fysio og Trening",
    ),
    "chiro": (
        "{place} Kiropraktorsenter", "{place} Kiropraktikk", "Ryggklinikken {place}",
        "{place} Kiropraktorklinikk",
    ),
    "manual": (
        "{place} Manuellterapi", "{place} Muskel- og Skjelettklinikk",
        "{street} Manuellterapi",
    ),
    "mixed": (
        "{place} Helsehus", "{place} Helsesenter", "Ryggklinikken {place}",
        "{street} Helsehus", "{place} Rygg og Nakke",
    ),
}
SOLE_OWNER_NAMES = {
    "physio": "Fysioterapeut {surname}",
    "chiro": "Kiropraktor {surname}",
    "manual": "Manuellterapeut {surname}",
}
SOLE_OWNER_NAME_SHARE = 0.35
KIND_WEIGHTS_SINGLE = {"physio": 50, "chiro": 25, "manual": 25}
KIND_WEIGHTS_GROUP = {"physio": 46, "chiro": 16, "manual": 12, "mixed": 26}
# Clinic sizes: villages mostly have one-person practices, cities have bigger ones.
SIZE_WEIGHTS_VILLAGE = {1: 50, 2: 30, 3: 15, 4: 5}
SIZE_WEIGHTS_TOWN = {1: 28, 2: 31, 3: 21, 4: 12, 5: 4, 6: 4}

# Landline area prefixes by county; mobile numbers start with 4 or 9.
LANDLINE_PREFIXES = {
    "Oslo": ("21", "22", "23"),
    "Viken": ("63", "64", "66", "67", "69", "32"),
    "Vestfold og Telemark": ("33", "35"),
    "Agder": ("37", "38"),
    "Rogaland": ("51", "52"),
    "Vestland": ("53", "55", "56", "57"),
    "Innlandet": ("61", "62"),
    "Møre og Romsdal": ("70", "71"),
    "Trøndelag": ("72", "73", "74"),
    "Nordland": ("75", "76"),
    "Troms og Finnmark": ("77", "78"),
    "Svalbard": ("79",),
}
MOBILE_PREFIXES = (
    "40", "41", "45", "46", "47", "48", "90", "91", "92", "93", "94", "95", "96", "97", "98",
    "99",
)
LANDLINE_SHARE = 0.7

ORG_NUMBER_SHARE = 0.85
WEBSITE_SHARE = 0.8
PERSONAL_EMAIL_SHARE = 0.3
HPR_RANGE = (900_000_000, 999_999_999)
# fmt: on

# --- Practices: who works where, with which agreement -------------------------------------

# The share of each profession's practices with a public agreement (driftsavtale). In Norway
# chiropractors never have one; many physiotherapists do; a manual therapist, being a
# physiotherapist with a specialisation, sometimes does.
AGREEMENT_SHARE = {"chiropractor": 0.0, "physiotherapist": 0.5, "manual_therapist": 0.25}
# At a clinician's second clinic the share is smaller: an agreement is usually for one place.
SECOND_CLINIC_AGREEMENT_FACTOR = 0.5
# Answers on new patients (yes, no, unknown); with an agreement the waiting list is longer.
NEW_PATIENTS_WITH_AGREEMENT = {True: 40, False: 48, None: 12}
NEW_PATIENTS_WITHOUT_AGREEMENT = {True: 68, False: 22, None: 10}
# About a tenth of clinicians also work at a second clinic near their first.
SECOND_CLINIC_SHARE = 0.10
SECOND_CLINIC_MAX_KM = 30.0
SECOND_CLINIC_NEAREST = 4  # chosen among this many nearest clinics that fit
MAX_CLINIC_SIZE = 8
# Which kinds of clinic take on a visiting clinician of each profession.
KINDS_FOR_PROFESSION = {
    "chiropractor": ("chiro", "mixed"),
    "physiotherapist": ("physio", "manual", "mixed"),
    "manual_therapist": ("physio", "manual", "mixed"),
}

# --- What patients ask before they come ---------------------------------------------------

BOOKING_SHARE = 0.5
# Clinics without their own booking page often use a shared booking service.
OWN_BOOKING_PAGE_SHARE = 0.6
SHARED_BOOKING_SERVICES = ("timebestilling.example", "bookfysio.example", "klinikktime.example")
ACCESS_FACTS_SHARE = 0.5
STEP_FREE_SHARE = 0.75
ACCESSIBLE_TOILET_SHARE = {True: 0.7, False: 0.15}  # by step-free entrance
PARKING_SHARE = {"town": 0.35, "village": 0.85}
# A municipality this populous counts as a town for hours and parking (a postcode's own
# population says little in a city: each of Oslo's is a few streets).
TOWN_MUNICIPALITY_POPULATION = 20_000

# --- Opening hours ------------------------------------------------------------------------

HOURS_SHARE = 0.88
# Weekly schedules (days and times as hours.format_week writes them) and how common each
# is. Towns have longer days, some evenings and a few Saturdays; villages a shorter week.
HOURS_TOWN = {
    "man–fre 08:00–16:00": 20,
    "man–tor 08:00–18:00; fre 08:00–15:00": 10,
    "man–fre 07:30–15:30": 8,
    "man–fre 08:00–16:00; tor 08:00–19:00": 8,
    "man–tor 08:00–20:00; fre 08:00–15:00": 8,
    "man–tor 08:00–11:30, 12:00–16:00; fre 08:00–14:00": 6,
    "man–fre 08:00–16:00; lør 10:00–14:00": 5,
    "man–fre 07:00–21:00": 4,
    "man–fre 09:00–17:00; lør 10:00–13:00": 3,
    "man–fre 07:00–15:00, 16:00–20:00": 3,
    "man, ons, fre 09:00–15:00": 3,
}
HOURS_VILLAGE = {
    "man–fre 08:00–15:30": 20,
    "man–tor 08:00–15:00": 10,
    "man, ons, fre 09:00–15:00": 8,
    "man–fre 08:00–16:00; tor 08:00–18:00": 5,
    "tir, tor 09:00–15:00": 5,
    "man–ons 08:00–15:00; tor 11:00–19:00": 4,
    "man–tor 08:00–11:30, 12:00–15:30": 3,
}
# How a schedule is typed; every one of these is read by hours.parse_week.
HOURS_STYLES = {"excel": 45, "canonical": 20, "dots": 15, "full": 10, "kl": 5, "english": 5}
FULL_DAY_NAMES = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
ENGLISH_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# "Open now" must find clinics in each of these on a weekday morning.
BIG_CITIES = ("Oslo", "Bergen", "Trondheim", "Stavanger", "Kristiansand", "Tromsø")
MIN_OPEN_NOW_PER_CITY = 3
OPEN_NOW_PROBE = (2, time(11))  # a Wednesday at 11:00

# --- Licences: what the Health Personnel Register would answer ----------------------------

# The fixed "today" of the register file, so regenerating it never changes it.
REFERENCE_DATE = date(2026, 12, 1)
# Code list 9060: the categories each listed profession needs.
HPR_CATEGORIES = {
    "chiropractor": ("KI",),
    "physiotherapist": ("FT",),
    "manual_therapist": ("FT", "MT"),
}
# What a clinician listed as one profession holds when authorised for another only.
OTHER_PROFESSION_ONLY = {"chiropractor": ("FT",), "manual_therapist": ("FT",)}
# How many clinicians of each case that is not simply valid.
LICENCE_CASES = {
    "not_found": 4,
    "no_authorisation_for_profession": 4,
    "suspended": 4,
    "expired": 4,
    "valid_until_future_date": 3,
    "valid_after_ended_suspension": 3,
}
# The earliest authorisation in the demo: chiropractors have been authorised health
# personnel in Norway since 1989; the physiotherapists go back a little further.
FIRST_AUTHORISATION = {"KI": date(1989, 1, 1), "FT": date(1985, 1, 1)}
# A manual therapist first works as a physiotherapist, then takes the specialisation.
MT_AFTER_FT_YEARS = (4, 12)

# --- Data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postcode:
    code: str
    city: str
    district: str
    kommnr: str
    municipality: str
    county: str
    population: int
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Clinician:
    """The person: the same name, HPR number and languages at every clinic they work at."""

    name: str
    first_name: str
    surname: str
    profession: str
    hpr_number: str
    languages: tuple[str, ...]
    services: tuple[str, ...]


@dataclass(frozen=True)
class Practice:
    """A clinician at one clinic, with their own agreement and answer on new patients there."""

    clinician: Clinician
    public_agreement: bool
    accepts_new_patients: bool | None


@dataclass
class Clinic:
    name: str
    slug: str
    kind: str
    org_number: str
    address: str
    postcode: Postcode
    phone: str
    email: str
    website: str
    latitude: float
    longitude: float
    clinicians: list[Clinician] = field(default_factory=list)
    practices: list[Practice] = field(default_factory=list)
    booking_url: str = ""
    # None: the clinic has not told us.
    step_free_access: bool | None = None
    accessible_toilet: bool | None = None
    parking: bool | None = None
    opening_hours: str = ""

    @property
    def agreement_municipality(self) -> str:
        """The municipality a public agreement for work here is with: the clinic's own."""
        return self.postcode.municipality


@dataclass
class Registry:
    """Values that must be unique across the whole file."""

    clinic_names: set[str] = field(default_factory=set)
    slugs: set[str] = field(default_factory=set)
    org_numbers: set[str] = field(default_factory=set)
    hpr_numbers: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    clinician_names: set[str] = field(default_factory=set)
    addresses: set[tuple[str, str]] = field(default_factory=set)


# --- Geography ----------------------------------------------------------------------------


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def nearest_empty_zone_km(latitude: float, longitude: float) -> float:
    return min(
        great_circle_km(latitude, longitude, zone.latitude, zone.longitude) for zone in EMPTY_ZONES
    )


def place_name(raw: str) -> str:
    """Normalise a POSTSTAD: a few are all capitals in the register ("MYSEN" → "Mysen")."""
    if raw != raw.upper():
        return raw
    return "-".join(part.capitalize() for part in raw.split("-"))


def load_postcodes(path: Path) -> list[Postcode]:
    """Read the street-address postcodes in use that have coordinates."""
    postcodes: list[Postcode] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["POSTSTAD"].endswith("(ikkje i bruk)"):
                continue
            if row["BRUKSOMRÅDE"] not in USABLE_KINDS or not row["LAT"] or not row["LON"]:
                continue
            postcodes.append(
                Postcode(
                    code=row["POSTNR"],
                    city=place_name(row["POSTSTAD"]),
                    district=row["BYDEL"].strip(),
                    # Some municipality numbers lose their leading zero in the register.
                    kommnr=row["KOMMNR"].zfill(4),
                    municipality=row["KOMMUNE"],
                    county=row["FYLKE"],
                    population=int(row["FOLKETAL"] or 0),
                    latitude=float(row["LAT"]),
                    longitude=float(row["LON"]),
                )
            )
    return postcodes


def candidate_postcodes(postcodes: Sequence[Postcode]) -> list[Postcode]:
    """Mainland postcodes far enough from the empty zones that no offset can reach them."""
    safe_km = EMPTY_RADIUS_KM + MAX_OFFSET_KM
    return [
        pc
        for pc in postcodes
        if pc.county not in EXCLUDED_COUNTIES
        and nearest_empty_zone_km(pc.latitude, pc.longitude) > safe_km
    ]


T = TypeVar("T")


def weighted_pick(rng: random.Random, items: Sequence[T], weights: Sequence[float]) -> T:
    return rng.choices(items, weights=weights, k=1)[0]


def postcode_in(rng: random.Random, postcodes: Sequence[Postcode]) -> Postcode:
    """A postcode of a municipality, favouring populous ones (+1 so unpopulated can win)."""
    return weighted_pick(rng, postcodes, [pc.population + 1 for pc in postcodes])


def apportion(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` by largest remainder (Hamilton's method)."""
    whole = sum(weights.values())
    quotas = {key: total * weight / whole for key, weight in weights.items()}
    shares = {key: int(quota) for key, quota in quotas.items()}
    # Ties are broken by key so the result never depends on dict order.
    by_remainder = sorted(quotas, key=lambda key: (shares[key] - quotas[key], key))
    for key in by_remainder[: total - sum(shares.values())]:
        shares[key] += 1
    return {key: count for key, count in sorted(shares.items()) if count}


def choose_locations(rng: random.Random, postcodes: Sequence[Postcode]) -> list[Postcode]:
    """One postcode per clinic: anchors, then by population, then spread to new places."""
    by_municipality: dict[str, list[Postcode]] = {}
    for pc in postcodes:
        by_municipality.setdefault(pc.kommnr, []).append(pc)

    chosen = [postcode_in(rng, by_municipality[kommnr]) for kommnr in ANCHOR_MUNICIPALITIES]
    # Share out the population clinics in proportion to municipality population (rather than
    # drawing them), so the big cities reliably get their many clinics.
    populations = {k: sum(pc.population for pc in pcs) for k, pcs in by_municipality.items()}
    for kommnr, count in apportion(POPULATION_CLINICS, populations).items():
        pcs = by_municipality[kommnr]
        chosen += rng.choices(pcs, weights=[pc.population + 1 for pc in pcs], k=count)

    # Spread: every county first, then further municipalities without a clinic. Weighting by
    # the square root of population favours towns over hamlets without shutting either out.
    def unused_municipalities() -> list[str]:
        used = {pc.kommnr for pc in chosen}
        return [k for k in sorted(by_municipality) if k not in used]

    def municipality_weight(kommnr: str) -> float:
        return math.sqrt(sum(pc.population for pc in by_municipality[kommnr]) + 100)

    for county in sorted({pc.county for pc in postcodes} - {pc.county for pc in chosen}):
        options = [k for k in unused_municipalities() if by_municipality[k][0].county == county]
        kommnr = weighted_pick(rng, options, [municipality_weight(k) for k in options])
        chosen.append(postcode_in(rng, by_municipality[kommnr]))
    while len(chosen) < len(ANCHOR_MUNICIPALITIES) + POPULATION_CLINICS + SPREAD_CLINICS:
        options = unused_municipalities()
        kommnr = weighted_pick(rng, options, [municipality_weight(k) for k in options])
        chosen.append(postcode_in(rng, by_municipality[kommnr]))
    return chosen


def scatter(rng: random.Random, pc: Postcode) -> tuple[float, float]:
    """A point near the postcode centre, rounded to 5 decimals (about a metre)."""
    radius = TOWN_OFFSET_KM if pc.population >= TOWN_POPULATION else VILLAGE_OFFSET_KM
    while True:
        # sqrt makes the points uniform over the disc rather than bunched in the middle.
        distance = radius * math.sqrt(rng.random())
        bearing = rng.uniform(0, 2 * math.pi)
        dlat = distance * math.cos(bearing) / 111.195
        dlon = distance * math.sin(bearing) / (111.195 * math.cos(math.radians(pc.latitude)))
        lat, lon = round(pc.latitude + dlat, 5), round(pc.longitude + dlon, 5)
        if great_circle_km(lat, lon, pc.latitude, pc.longitude) <= MAX_OFFSET_KM:
            return lat, lon


# --- Text helpers -------------------------------------------------------------------------


def slugify(text: str) -> str:
    """ASCII, lower case, hyphens: "Ålesund Helsehus" → "alesund-helsehus"."""
    text = text.lower().replace("æ", "ae").replace("ø", "o").replace("å", "a")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()
    return "-".join(words)


def clinic_place(rng: random.Random, pc: Postcode) -> str:
    """The town or, in the big cities, often the district the clinic is named after."""
    if pc.district and rng.random() < 0.6:
        return pc.district.replace("St.Hanshaugen", "St. Hanshaugen")
    words = pc.city.split()
    # "Kristiansand S" and "Kristiansund N": the letter is for the post office, not the name.
    if len(words) > 1 and len(words[-1]) == 1:
        words = words[:-1]
    return " ".join(words)


def street_address(rng: random.Random, pc: Postcode, registry: Registry) -> tuple[str, str]:
    """A fictional (street, "street number") pair, unique within the postcode."""
    suffixes = WEST_SUFFIXES if pc.county in WEST_COUNTIES else EAST_SUFFIXES
    while True:
        street = rng.choice(STREET_STEMS) + rng.choice(suffixes)
        # Low house numbers are the most common.
        number = str(int(rng.random() ** 1.8 * 90) + 1)
        if rng.random() < 0.12:
            number += rng.choice("ABC")
        address = f"{street} {number}"
        if (address, pc.code) not in registry.addresses:
            registry.addresses.add((address, pc.code))
            return street, address


def phone_number(rng: random.Random, county: str, registry: Registry) -> str:
    while True:
        if rng.random() < LANDLINE_SHARE:
            prefix = rng.choice(LANDLINE_PREFIXES[county])
        else:
            prefix = rng.choice(MOBILE_PREFIXES)
        rest = [f"{rng.randrange(100):02d}" for _ in range(3)]
        phone = " ".join(["+47", prefix, *rest])
        if phone not in registry.phones:
            registry.phones.add(phone)
            return phone


def org_number(rng: random.Random, registry: Registry) -> str:
    """A random 9-digit number starting with 9 that passes the orgnr check digit."""
    while True:
        base = "9" + "".join(str(rng.randrange(10)) for _ in range(7))
        # Some bases have no valid check digit (it would be 10); those are skipped.
        number = next((base + d for d in "0123456789" if orgnr.is_valid(base + d)), None)
        if number and number not in registry.org_numbers:
            registry.org_numbers.add(number)
            return number


# --- Clinicians ---------------------------------------------------------------------------


def clinician_languages(
    rng: random.Random, pc: Postcode, origin_language: str | None
) -> tuple[str, ...]:
    languages = ["nb"]
    if pc.county in {"Vestland", "Møre og Romsdal"} and rng.random() < 0.15:
        languages.append("nn")
    if origin_language == "en" or rng.random() < 0.8:
        languages.append("en")
    if origin_language and origin_language not in languages:
        languages.append(origin_language)
    # Non-Sami-named clinicians in the Sami core area often speak it too.
    if pc.kommnr in SAMI_KOMMNR and "se" not in languages and rng.random() < 0.3:
        languages.append("se")
    return tuple(languages)


def clinician_services(rng: random.Random, profession: str) -> tuple[str, ...]:
    extras = dict(EXTRA_SERVICES[profession])
    picked = {CORE_SERVICE[profession]}
    for _ in range(rng.randint(1, 4)):
        names = sorted(extras)
        service = weighted_pick(rng, names, [extras[name] for name in names])
        picked.add(service)
        del extras[service]
    return tuple(service for service in SERVICES if service in picked)


def make_clinician(
    rng: random.Random, pc: Postcode, profession: str, registry: Registry
) -> Clinician:
    while True:
        if pc.kommnr in SAMI_KOMMNR and rng.random() < SAMI_NAME_SHARE:
            pool = SAMI_NAMES
        elif rng.random() < OTHER_ORIGIN_SHARE:
            pool = rng.choice(OTHER_ORIGINS)
        else:
            pool = NamePool(NORWEGIAN_FIRST_NAMES, NORWEGIAN_SURNAMES, "")
        first, surname = rng.choice(pool.first_names), rng.choice(pool.surnames)
        name = f"{first} {surname}"
        if name not in registry.clinician_names:
            registry.clinician_names.add(name)
            break
    while True:
        hpr = str(rng.randint(*HPR_RANGE))
        if hpr not in registry.hpr_numbers:
            registry.hpr_numbers.add(hpr)
            break
    return Clinician(
        name=name,
        first_name=first,
        surname=surname,
        profession=profession,
        hpr_number=hpr,
        languages=clinician_languages(rng, pc, pool.language or None),
        services=clinician_services(rng, profession),
    )


def professions_for(rng: random.Random, kind: str, size: int) -> list[str]:
    """The professions of a clinic's staff, lead clinician first."""
    if kind == "chiro":
        return ["chiropractor"] * size
    if kind == "physio":
        staff = ["physiotherapist"] * size
        # Many physiotherapy institutes have a manual therapist (a specialised physio).
        if size >= 3 and rng.random() < 0.4:
            staff[-1] = "manual_therapist"
        return staff
    if kind == "manual":
        others = rng.choices(["manual_therapist", "physiotherapist"], k=size - 1)
        return ["manual_therapist", *others]
    # A mixed "helsehus": a chiropractor working alongside physio and manual therapists.
    others = rng.choices(
        ["physiotherapist", "manual_therapist", "chiropractor"], weights=[6, 4, 2], k=size - 1
    )
    if all(p == "chiropractor" for p in others):
        others[0] = "physiotherapist"
    return ["chiropractor", *others]


# --- Clinics ------------------------------------------------------------------------------


def clinic_name(
    rng: random.Random,
    kind: str,
    pc: Postcode,
    street: str,
    owner: Clinician | None,
    registry: Registry,
) -> str:
    """A unique plausible name; on a clash try other patterns, then a district or number."""
    if owner is not None and rng.random() < SOLE_OWNER_NAME_SHARE:
        name = SOLE_OWNER_NAMES[kind].format(surname=owner.surname)
        if name not in registry.clinic_names:
            registry.clinic_names.add(name)
            return name
    candidates = []
    for _ in range(6):
        pattern = rng.choice(CLINIC_NAMES[kind])
        candidates.append(pattern.format(place=clinic_place(rng, pc), street=street))
    base = candidates[0]
    if pc.district and pc.district not in base:
        candidates.append(f"{base} {pc.district}")
    candidates += [f"{base} {n}" for n in range(2, 100)]
    name = next(c for c in candidates if c not in registry.clinic_names)
    registry.clinic_names.add(name)
    return name


def unique_slug(name: str, registry: Registry) -> str:
    slug, n = slugify(name), 2
    while slug in registry.slugs:
        slug, n = f"{slugify(name)}-{n}", n + 1
    registry.slugs.add(slug)
    return slug


def make_clinic(
    rng: random.Random,
    pc: Postcode,
    registry: Registry,
    size: int | None = None,
    kind: str | None = None,
) -> Clinic:
    if size is None:
        weights = SIZE_WEIGHTS_TOWN if pc.population >= TOWN_POPULATION else SIZE_WEIGHTS_VILLAGE
        size = weighted_pick(rng, list(weights), list(weights.values()))
    if kind is None:
        kinds = KIND_WEIGHTS_SINGLE if size == 1 else KIND_WEIGHTS_GROUP
        kind = weighted_pick(rng, list(kinds), list(kinds.values()))
    clinicians = [make_clinician(rng, pc, p, registry) for p in professions_for(rng, kind, size)]
    street, address = street_address(rng, pc, registry)
    name = clinic_name(rng, kind, pc, street, clinicians[0] if size == 1 else None, registry)
    slug = unique_slug(name, registry)
    if rng.random() < PERSONAL_EMAIL_SHARE:
        email = f"{slugify(clinicians[0].first_name)}@{slug}.example"
    else:
        email = f"post@{slug}.example"
    latitude, longitude = scatter(rng, pc)
    return Clinic(
        name=name,
        slug=slug,
        kind=kind,
        org_number=org_number(rng, registry) if rng.random() < ORG_NUMBER_SHARE else "",
        address=address,
        postcode=pc,
        phone=phone_number(rng, pc.county, registry),
        email=email,
        website=f"https://{slug}.example/" if rng.random() < WEBSITE_SHARE else "",
        latitude=latitude,
        longitude=longitude,
        clinicians=clinicians,
    )


# --- Practices ----------------------------------------------------------------------------


def clinic_distance_km(first: Clinic, second: Clinic) -> float:
    return great_circle_km(first.latitude, first.longitude, second.latitude, second.longitude)


def second_clinic_options(
    home: Clinic, person: Clinician, clinics: Sequence[Clinic]
) -> list[Clinic]:
    """The nearest clinics (within reach of ``home``) that would take ``person`` on too."""
    fits = [
        clinic
        for clinic in clinics
        if clinic is not home
        and clinic.kind in KINDS_FOR_PROFESSION[person.profession]
        and clinic.postcode.code != SVALBARD_POSTCODE
        and len(clinic.clinicians) < MAX_CLINIC_SIZE
        and clinic_distance_km(home, clinic) <= SECOND_CLINIC_MAX_KM
    ]
    fits.sort(key=lambda clinic: (clinic_distance_km(home, clinic), clinic.name))
    return fits[:SECOND_CLINIC_NEAREST]


def add_second_clinics(rng: random.Random, clinics: Sequence[Clinic]) -> set[tuple[str, str]]:
    """Let about a tenth of the clinicians also work at a clinic near their first one.

    Returns (HPR number, clinic name) of each second practice.
    """
    home = {person.hpr_number: clinic for clinic in clinics for person in clinic.clinicians}
    people = [
        person
        for clinic in clinics
        if clinic.postcode.code != SVALBARD_POSTCODE
        for person in clinic.clinicians
    ]
    target = round(SECOND_CLINIC_SHARE * len(home))
    second: set[tuple[str, str]] = set()
    for person in rng.sample(people, len(people)):
        if len(second) == target:
            break
        first = home[person.hpr_number]
        options = second_clinic_options(first, person, clinics)
        if not options:
            continue
        # The same municipality is likelier than a neighbouring one.
        weights = [3 if c.postcode.kommnr == first.postcode.kommnr else 1 for c in options]
        clinic = weighted_pick(rng, options, weights)
        clinic.clinicians.append(person)
        second.add((person.hpr_number, clinic.name))
    return second


def make_practice(rng: random.Random, person: Clinician, second_clinic: bool) -> Practice:
    share = AGREEMENT_SHARE[person.profession]
    if second_clinic:
        share *= SECOND_CLINIC_AGREEMENT_FACTOR
    agreement = rng.random() < share
    answers = NEW_PATIENTS_WITH_AGREEMENT if agreement else NEW_PATIENTS_WITHOUT_AGREEMENT
    accepts = weighted_pick(rng, list(answers), list(answers.values()))
    return Practice(clinician=person, public_agreement=agreement, accepts_new_patients=accepts)


def add_practices(
    rng: random.Random, clinics: Sequence[Clinic], second: set[tuple[str, str]]
) -> None:
    for clinic in clinics:
        clinic.practices = [
            make_practice(rng, person, (person.hpr_number, clinic.name) in second)
            for person in clinic.clinicians
        ]


# --- Booking, access and opening hours ----------------------------------------------------


def booking_url(rng: random.Random, clinic: Clinic) -> str:
    if clinic.website and rng.random() < OWN_BOOKING_PAGE_SHARE:
        return f"{clinic.website}bestill-time"
    return f"https://{rng.choice(SHARED_BOOKING_SERVICES)}/{clinic.slug}"


def day_words(schedule: str, names: Sequence[str]) -> str:
    """The schedule with its Norwegian day abbreviations written as ``names``."""
    pattern = r"\b(" + "|".join(DAY_ABBREVIATIONS) + r")\b"
    return re.sub(pattern, lambda match: names[DAY_ABBREVIATIONS.index(match[1])], schedule)


def typed_hours(rng: random.Random, schedule: str) -> str:
    """A schedule as a receptionist might type it (hours.parse_week reads every style)."""
    style = weighted_pick(rng, list(HOURS_STYLES), list(HOURS_STYLES.values()))
    if style == "canonical":
        return schedule
    if style == "english":
        return day_words(schedule, ENGLISH_DAY_NAMES).replace("–", "-")
    if style == "dots":
        dotted = schedule.replace(":", ".")
        return dotted[0].upper() + dotted[1:]
    whole_hours = re.sub(r"(\d\d):00", r"\1", schedule)
    if style == "full":
        return day_words(whole_hours, FULL_DAY_NAMES)
    excel = whole_hours.replace("–", "-")
    if style == "kl":
        return re.sub(r"(^|; )([^;\d]+?) (?=\d)", r"\1\2 kl. ", excel)
    return excel


def town_municipalities(postcodes: Sequence[Postcode]) -> set[str]:
    """The numbers of the municipalities populous enough to count as towns."""
    population: Counter[str] = Counter()
    for pc in postcodes:
        population[pc.kommnr] += pc.population
    return {
        kommnr for kommnr, people in population.items() if people >= TOWN_MUNICIPALITY_POPULATION
    }


def add_clinic_facts(rng: random.Random, clinic: Clinic, in_town: bool) -> None:
    """Booking link, access facts and opening hours, each known for only some clinics."""
    if rng.random() < BOOKING_SHARE:
        clinic.booking_url = booking_url(rng, clinic)
    if rng.random() < ACCESS_FACTS_SHARE:
        clinic.step_free_access = rng.random() < STEP_FREE_SHARE
        clinic.accessible_toilet = rng.random() < ACCESSIBLE_TOILET_SHARE[clinic.step_free_access]
        clinic.parking = rng.random() < PARKING_SHARE["town" if in_town else "village"]
    if rng.random() < HOURS_SHARE:
        schedules = HOURS_TOWN if in_town else HOURS_VILLAGE
        schedule = weighted_pick(rng, list(schedules), list(schedules.values()))
        clinic.opening_hours = typed_hours(rng, schedule)


# --- Licences -----------------------------------------------------------------------------


def people_of(clinics: Sequence[Clinic]) -> list[Clinician]:
    """Every clinician once, by HPR number."""
    people = {p.clinician.hpr_number: p.clinician for c in clinics for p in c.practices}
    return [people[hpr] for hpr in sorted(people)]


def choose_licence_cases(
    rng: random.Random, clinics: Sequence[Clinic], at_two_clinics: set[str]
) -> dict[str, list[str]]:
    """The HPR numbers of each case that is not simply valid.

    Svalbard's clinician stays valid, so Svalbard keeps its clinic; one suspended clinician
    works at two clinics, so the demo shows a clinician hidden at both.
    """
    svalbard = {
        p.hpr_number for c in clinics if c.postcode.code == SVALBARD_POSTCODE for p in c.clinicians
    }
    professions = {p.hpr_number: p.profession for p in people_of(clinics)}
    pool = [hpr for hpr in professions if hpr not in svalbard]
    rng.shuffle(pool)
    # Listed as chiropractor or manual therapist, but authorised as a physiotherapist only.
    per_profession = LICENCE_CASES["no_authorisation_for_profession"] // 2
    other = [
        hpr
        for wanted in OTHER_PROFESSION_ONLY
        for hpr in [hpr for hpr in pool if professions[hpr] == wanted][:per_profession]
    ]
    cases = {"no_authorisation_for_profession": other}
    cases["suspended"] = [next(hpr for hpr in pool if hpr in at_two_clinics and hpr not in other)]
    taken = {hpr for numbers in cases.values() for hpr in numbers}
    rest = iter(hpr for hpr in pool if hpr not in taken)
    for case, count in LICENCE_CASES.items():
        numbers = cases.setdefault(case, [])
        numbers += [next(rest) for _ in range(count - len(numbers))]
    return {case: sorted(cases[case]) for case in LICENCE_CASES}


def some_day(rng: random.Random, earliest: date, latest: date) -> date:
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


def years(count: float) -> timedelta:
    return timedelta(days=round(365.25 * count))


def shape_case(rng: random.Random, entries: list[dict[str, Any]], case: str) -> None:
    """Give the authorisations the end date or suspension their case calls for."""
    last_start = max(entry["valid_from"] for entry in entries)
    if case == "expired":
        ended = some_day(
            rng, max(last_start, REFERENCE_DATE - years(2)), REFERENCE_DATE - timedelta(days=30)
        )
        for entry in entries:
            entry["valid_to"] = ended
    elif case == "suspended":
        suspended = some_day(
            rng, REFERENCE_DATE - timedelta(days=240), REFERENCE_DATE - timedelta(days=14)
        )
        for entry in entries:
            entry["suspensions"].append({"from": suspended, "to": None})
    elif case == "valid_until_future_date":
        ends = some_day(rng, REFERENCE_DATE + years(2), REFERENCE_DATE + years(20))
        for entry in entries:
            entry["valid_to"] = ends
    elif case == "valid_after_ended_suspension":
        latest = REFERENCE_DATE - years(1.2)
        earliest = max(last_start + timedelta(days=30), REFERENCE_DATE - years(8))
        began = some_day(rng, min(earliest, latest), latest)
        ended = began + timedelta(days=rng.randint(60, 365))
        for entry in entries:
            entry["suspensions"].append({"from": began, "to": ended})


def iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def authorisations(rng: random.Random, person: Clinician, case: str) -> list[dict[str, Any]]:
    """The person's authorisations as the register lists them, shaped by their case."""
    if case == "no_authorisation_for_profession":
        categories = OTHER_PROFESSION_ONLY[person.profession]
    else:
        categories = HPR_CATEGORIES[person.profession]
    # At least a few years before the reference date (more for a manual therapist's MT).
    settled = 3 if len(categories) == 1 else MT_AFTER_FT_YEARS[0] + 1
    first = some_day(rng, FIRST_AUTHORISATION[categories[0]], REFERENCE_DATE - years(settled))
    entries: list[dict[str, Any]] = []
    for category in categories:
        # A manual therapist's MT came years after their FT: it is a specialisation.
        start = first
        if entries:
            start = some_day(
                rng,
                first + years(MT_AFTER_FT_YEARS[0]),
                min(first + years(MT_AFTER_FT_YEARS[1]), REFERENCE_DATE - years(1)),
            )
        entries.append(
            {"category": category, "valid_from": start, "valid_to": None, "suspensions": []}
        )
    shape_case(rng, entries, case)
    return [
        {
            "category": entry["category"],
            "valid_from": iso(entry["valid_from"]),
            "valid_to": iso(entry["valid_to"]),
            "suspensions": [
                {"from": iso(s["from"]), "to": iso(s["to"])} for s in entry["suspensions"]
            ],
        }
        for entry in entries
    ]


def hpr_register(
    rng: random.Random, clinics: Sequence[Clinic]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """What the Health Personnel Register would answer about each clinician, and the HPR
    numbers of each case that is not simply valid."""
    counts = Counter(p.clinician.hpr_number for c in clinics for p in c.practices)
    cases = choose_licence_cases(rng, clinics, {hpr for hpr, n in counts.items() if n > 1})
    case_of = {hpr: case for case, numbers in cases.items() for hpr in numbers}
    people: dict[str, Any] = {}
    for person in people_of(clinics):
        case = case_of.get(person.hpr_number, "valid")
        if case != "not_found":
            # The loopback HPR's register format (tests/hpr_server.py, docs/hpr.md).
            first_name, _, last_name = person.name.rpartition(" ")
            people[person.hpr_number] = {
                "first_name": first_name,
                "last_name": last_name,
                "approvals": authorisations(rng, person, case),
            }
    return people, cases


# --- Generation ---------------------------------------------------------------------------


def generate(seed: int, postcodes: Sequence[Postcode]) -> list[Clinic]:
    """The clinics, their practices and what patients ask about them."""
    rng = random.Random(seed)
    registry = Registry()
    svalbard = next((pc for pc in postcodes if pc.code == SVALBARD_POSTCODE), None)
    if svalbard is None:
        raise SystemExit(f"postcode {SVALBARD_POSTCODE} (Barentsburg) is not in the register")
    clinics = [make_clinic(rng, svalbard, registry, size=1, kind="physio")]
    for pc in choose_locations(rng, candidate_postcodes(postcodes)):
        clinics.append(make_clinic(rng, pc, registry))
    # Sorted by postcode so the file reads south-east to north and diffs stay readable.
    clinics.sort(key=lambda c: (c.postcode.code, c.name))
    # Each kind of fact draws from a stream of its own, so changing one leaves the rest.
    second = add_second_clinics(random.Random(f"{seed}:second-clinics"), clinics)
    add_practices(random.Random(f"{seed}:practices"), clinics, second)
    facts, towns = random.Random(f"{seed}:clinic-facts"), town_municipalities(postcodes)
    for clinic in clinics:
        add_clinic_facts(facts, clinic, clinic.postcode.kommnr in towns)
    return clinics


# --- Checks -------------------------------------------------------------------------------


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def check_places(clinics: Sequence[Clinic], postcodes: Sequence[Postcode]) -> list[str]:
    problems: list[str] = []
    for clinic in clinics:
        km = nearest_empty_zone_km(clinic.latitude, clinic.longitude)
        if km < EMPTY_RADIUS_KM:
            problems.append(f"{clinic.name} is {km:.1f} km from an area that must stay empty")
        pc = clinic.postcode
        if (
            great_circle_km(clinic.latitude, clinic.longitude, pc.latitude, pc.longitude)
            > MAX_OFFSET_KM
        ):
            problems.append(f"{clinic.name} is more than {MAX_OFFSET_KM} km from {pc.code}")
        if clinic.org_number and not orgnr.is_valid(clinic.org_number):
            problems.append(f"{clinic.name} has an invalid org number {clinic.org_number}")
    municipalities = {clinic.postcode.kommnr for clinic in clinics}
    finnmark = municipalities & FINNMARK_KOMMNR
    counties = {clinic.postcode.county for clinic in clinics}
    missing_counties = {pc.county for pc in postcodes} - counties - {"Jan Mayen"}
    if len({c.name for c in clinics}) != len(clinics):
        problems.append("clinic names are not unique")
    if len(clinics) < MIN_CLINICS:
        problems.append(f"only {len(clinics)} clinics")
    if len(municipalities) < MIN_MUNICIPALITIES:
        problems.append(f"only {len(municipalities)} municipalities")
    if len(finnmark) < MIN_FINNMARK_MUNICIPALITIES:
        problems.append(f"only {len(finnmark)} Finnmark municipalities")
    if missing_counties:
        problems.append("no clinic in " + ", ".join(sorted(missing_counties)))
    return problems


def check_people(clinics: Sequence[Clinic]) -> list[str]:
    """One person per HPR number, never twice at a clinic, at most two clinics, near each other."""
    problems: list[str] = []
    clinics_of: dict[str, list[Clinic]] = defaultdict(list)
    person_of: dict[str, Clinician] = {}
    for clinic in clinics:
        numbers = [p.clinician.hpr_number for p in clinic.practices]
        if len(set(numbers)) != len(numbers):
            problems.append(f"{clinic.name} has an HPR number twice")
        for practice in clinic.practices:
            person = practice.clinician
            if person_of.setdefault(person.hpr_number, person) != person:
                problems.append(f"HPR {person.hpr_number} names two different people")
            clinics_of[person.hpr_number].append(clinic)
    if len({person.name for person in person_of.values()}) != len(person_of):
        problems.append("two clinicians share a name")
    if len(person_of) < MIN_CLINICIANS:
        problems.append(f"only {len(person_of)} clinicians")
    at_two = {hpr: places for hpr, places in clinics_of.items() if len(places) > 1}
    if any(len(places) > 2 for places in at_two.values()):
        problems.append("a clinician works at more than two clinics")
    if any(clinic_distance_km(*places[:2]) > SECOND_CLINIC_MAX_KM for places in at_two.values()):
        problems.append(f"a clinician's two clinics are more than {SECOND_CLINIC_MAX_KM} km apart")
    if not 0.07 <= share(len(at_two), len(person_of)) <= 0.13:
        problems.append(
            f"{len(at_two)} of {len(person_of)} clinicians at two clinics, not about a tenth"
        )
    return problems


def check_services(clinics: Sequence[Clinic]) -> list[str]:
    """Every service is in the vocabulary, and the file writes them in both languages."""
    problems: list[str] = []
    for clinic in clinics:
        for practice in clinic.practices:
            keys, unknown = VOCABULARY.resolve(service_names(clinic, practice.clinician.services))
            if unknown or keys != list(practice.clinician.services):
                problems.append(f"{clinic.name}: services not in the vocabulary: {unknown}")
    english = sum(writes_services_in_english(clinic) for clinic in clinics)
    if not 0.2 <= share(english, len(clinics)) <= 0.45:
        problems.append(f"{english} of {len(clinics)} clinics write services in English")
    return problems


def check_agreements(clinics: Sequence[Clinic]) -> list[str]:
    """Chiropractors never have a public agreement; about half the physiotherapists do."""
    practices = [p for clinic in clinics for p in clinic.practices]
    by_profession: dict[str, list[Practice]] = defaultdict(list)
    for practice in practices:
        by_profession[practice.clinician.profession].append(practice)
    problems = []
    if any(p.public_agreement for p in by_profession["chiropractor"]):
        problems.append("a chiropractor has a public agreement")
    for profession, low, high in (("physiotherapist", 0.4, 0.6), ("manual_therapist", 0.1, 0.4)):
        group = by_profession[profession]
        found = share(sum(p.public_agreement for p in group), len(group))
        if not low <= found <= high:
            problems.append(f"{found:.0%} of {profession} practices have an agreement")
    return problems


def open_at(week: Week, weekday: int, moment: time) -> bool:
    return any(opens <= moment < closes for opens, closes in week[weekday])


def check_clinic_facts(clinics: Sequence[Clinic]) -> list[str]:
    """Booking links and access facts for about half, opening hours for most, all readable."""
    problems = []
    weeks = {}
    for clinic in clinics:
        if clinic.booking_url and not re.fullmatch(
            r"https://[a-z0-9.-]+\.example/\S+", clinic.booking_url
        ):
            problems.append(f"{clinic.name} has a booking link off .example or not https")
        if clinic.opening_hours:
            weeks[clinic.name] = parse_week(clinic.opening_hours)  # raises if unreadable
    for what, count, low, high in (
        ("a booking link", sum(bool(c.booking_url) for c in clinics), 0.4, 0.6),
        ("access facts", sum(c.step_free_access is not None for c in clinics), 0.4, 0.6),
        ("opening hours", len(weeks), 0.8, 1.0),
    ):
        if not low <= share(count, len(clinics)) <= high:
            problems.append(f"{count} of {len(clinics)} clinics have {what}")
    for city in BIG_CITIES:
        open_now = [
            c
            for c in clinics
            if c.postcode.municipality == city
            and c.name in weeks
            and open_at(weeks[c.name], *OPEN_NOW_PROBE)
        ]
        if len(open_now) < MIN_OPEN_NOW_PER_CITY:
            problems.append(f"only {len(open_now)} clinics in {city} are open on a weekday morning")
    return problems


def licence_case_on(entry: dict[str, Any] | None, profession: str, day: date) -> str:
    """What a licence check on ``day`` would conclude from the register's entry."""
    if entry is None:
        return "not_found"
    held = {a["category"]: a for a in entry["approvals"]}
    needed = [held.get(category) for category in HPR_CATEGORIES[profession]]
    if None in needed:
        return "no_authorisation_for_profession"
    today = day.isoformat()
    if any(a["valid_from"] > today or (a["valid_to"] and a["valid_to"] < today) for a in needed):
        return "expired"
    for authorisation in needed:
        for suspension in authorisation["suspensions"]:
            if suspension["from"] <= today and (
                suspension["to"] is None or suspension["to"] >= today
            ):
                return "suspended"
    return "valid"


def check_register(
    clinics: Sequence[Clinic], register: dict[str, Any], cases: dict[str, list[str]]
) -> list[str]:
    """The register says of each clinician what their case says, and of nobody else."""
    people = people_of(clinics)
    expected = {hpr: case for case, numbers in cases.items() for hpr in numbers}
    status_of_case = {"valid_until_future_date": "valid", "valid_after_ended_suspension": "valid"}
    problems = []
    if set(register) - {p.hpr_number for p in people}:
        problems.append("the register names someone who is in no clinic")
    for person in people:
        case = expected.get(person.hpr_number, "valid")
        found = licence_case_on(register.get(person.hpr_number), person.profession, REFERENCE_DATE)
        if found != status_of_case.get(case, case):
            problems.append(f"HPR {person.hpr_number} should be {case}, the register says {found}")
    for case, count in LICENCE_CASES.items():
        if len(cases[case]) != count:
            problems.append(f"{len(cases[case])} clinicians are {case}, not {count}")
    return problems


def check(
    clinics: Sequence[Clinic],
    postcodes: Sequence[Postcode],
    register: dict[str, Any],
    cases: dict[str, list[str]],
) -> None:
    """Refuse to write files that break what the demo relies on."""
    problems = [
        *check_places(clinics, postcodes),
        *check_people(clinics),
        *check_services(clinics),
        *check_agreements(clinics),
        *check_clinic_facts(clinics),
        *check_register(clinics, register, cases),
    ]
    if problems:
        raise SystemExit("generated data rejected:\n  " + "\n  ".join(problems))


# --- Output -------------------------------------------------------------------------------


def yes_no(value: bool | None) -> str:
    """yes, no, or '' for unknown."""
    return "" if value is None else "yes" if value else "no"


def csv_row(clinic: Clinic, practice: Practice) -> list[str]:
    person = practice.clinician
    return [
        clinic.name,
        clinic.org_number,
        clinic.address,
        clinic.postcode.code,
        clinic.postcode.city,
        clinic.phone,
        clinic.email,
        clinic.website,
        clinic.booking_url,
        yes_no(clinic.step_free_access),
        yes_no(clinic.accessible_toilet),
        yes_no(clinic.parking),
        clinic.opening_hours,
        person.name,
        person.profession,
        person.hpr_number,
        yes_no(practice.public_agreement),
        clinic.agreement_municipality if practice.public_agreement else "",
        yes_no(practice.accepts_new_patients),
        ";".join(person.languages),
        ";".join(service_names(clinic, person.services)),
        f"{clinic.latitude:.5f}",
        f"{clinic.longitude:.5f}",
    ]


def writes_services_in_english(clinic: Clinic) -> bool:
    """About a third of the clinics write their services in English (by a stable hash of
    the name, so the choice uses no random numbers and changes nothing else)."""
    return zlib.crc32(clinic.slug.encode()) % 3 == 0


def service_names(clinic: Clinic, keys: Sequence[str]) -> list[str]:
    """A clinician's services as their clinic writes them, in Norwegian or English."""
    language = "en" if writes_services_in_english(clinic) else "nb"
    return VOCABULARY.names(keys, language)


def write_csv(path: Path, clinics: Sequence[Clinic]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for clinic in clinics:
            writer.writerows(csv_row(clinic, practice) for practice in clinic.practices)


def write_register(path: Path, register: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(register, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def summary(clinics: Sequence[Clinic], cases: dict[str, list[str]]) -> str:
    """The figures a reviewer checks, one fact a line."""
    practices = [p for clinic in clinics for p in clinic.practices]
    people = people_of(clinics)
    counts = Counter(p.clinician.hpr_number for p in practices)
    professions = Counter(p.clinician.profession for p in practices)
    agreements = Counter(p.clinician.profession for p in practices if p.public_agreement)
    municipalities = {clinic.postcode.kommnr for clinic in clinics}
    counties = {clinic.postcode.county for clinic in clinics}

    def of_clinics(count: int) -> str:
        return f"{count} of {len(clinics)} ({share(count, len(clinics)):.0%})"

    lines = [
        f"{len(practices)} rows, {len(clinics)} clinics, {len(people)} clinicians, "
        f"{len(municipalities)} municipalities, {len(counties)} counties",
        f"clinicians at two clinics: {sum(n > 1 for n in counts.values())} of {len(people)} "
        f"({share(sum(n > 1 for n in counts.values()), len(people)):.0%})",
        "public agreements by profession (practices): "
        + ", ".join(
            f"{name} {agreements[name]} of {count} ({share(agreements[name], count):.0%})"
            for name, count in sorted(professions.items())
        ),
        f"opening hours: {of_clinics(sum(bool(c.opening_hours) for c in clinics))}",
        f"booking link: {of_clinics(sum(bool(c.booking_url) for c in clinics))}",
        f"access facts: {of_clinics(sum(c.step_free_access is not None for c in clinics))}",
        f"licence cases (HPR register as of {REFERENCE_DATE}; everyone else valid):",
        *(f"  {case}: {' '.join(numbers)}" for case, numbers in cases.items()),
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--postcodes", type=Path, default=DEFAULT_POSTCODES)
    parser.add_argument("--hpr-register", type=Path, default=DEFAULT_HPR_REGISTER)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    postcodes = load_postcodes(args.postcodes)
    clinics = generate(args.seed, postcodes)
    register, cases = hpr_register(random.Random(f"{args.seed}:licences"), clinics)
    check(clinics, postcodes, register, cases)
    write_csv(args.output, clinics)
    write_register(args.hpr_register, register)
    print(f"{args.output}, {args.hpr_register}:\n{summary(clinics, cases)}", file=sys.stderr)


if __name__ == "__main__":
    main()
