"""Generate the demo clinic list ``data/clinics.csv`` for the clinic finder.

Everything in the output is FICTIONAL demo data: clinic names, addresses, phone numbers,
e-mail addresses, websites and clinicians are made up. Organisation numbers are random
9-digit numbers that merely pass the Brønnøysund check digit (they may or may not belong
to a real organisation), and HPR numbers are random numbers from 900000000-999999999,
above the range the real Health Personnel Register has handed out, so they name nobody.

Only the geography is real: clinics are placed in postcodes from Norway's postcode
register (``data/postnummer-koordinatar.tsv``), weighted by population, with a small
random offset from the postcode centre. Two areas are kept empty on purpose so the app
can demonstrate its "nothing within your radius" fallback: no clinic lies within 30 km of
Longyearbyen (9171) or Båtsfjord (9990); Svalbard's only clinic is in Barentsburg.

The output is deterministic for a given seed::

    python scripts/generate_demo_clinics.py [--seed N] [--output PATH] [--postcodes PATH]
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from stdnum.no import orgnr

from clinic_finder.import_format import CANONICAL_COLUMNS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTCODES = REPO_ROOT / "data" / "postnummer-koordinatar.tsv"
DEFAULT_OUTPUT = REPO_ROOT / "data" / "clinics.csv"
DEFAULT_SEED = 20261125

# The import format's columns, from the importer itself so the two cannot drift apart.
COLUMNS = CANONICAL_COLUMNS

# --- How many clinics, and where --------------------------------------------------------

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

# Output order of services (so a clinician's list reads the same way everywhere).
SERVICES = (
    "exercise therapy", "manual therapy", "spinal manipulation", "dry needling",
    "shockwave therapy", "massage", "acupuncture", "taping", "ergonomic advice",
    "sports injuries", "rehabilitation", "pregnancy care", "pelvic girdle pain",
    "headache treatment", "jaw treatment", "psychomotor physiotherapy",
)
# Each profession has a core service everyone offers plus typical extras (with weights).
CORE_SERVICE = {
    "chiropractor": "spinal manipulation",
    "physiotherapist": "exercise therapy",
    "manual_therapist": "manual therapy",
}
EXTRA_SERVICES: dict[str, dict[str, int]] = {
    "chiropractor": {
        "shockwave therapy": 6, "dry needling": 6, "exercise therapy": 4,
        "headache treatment": 4, "jaw treatment": 3, "sports injuries": 3, "pregnancy care": 2,
        "taping": 2, "ergonomic advice": 2, "massage": 1, "acupuncture": 1,
    },
    "physiotherapist": {
        "rehabilitation": 7, "sports injuries": 5, "taping": 4, "massage": 4,
        "ergonomic advice": 4, "pregnancy care": 3, "pelvic girdle pain": 3, "dry needling": 3,
        "psychomotor physiotherapy": 2, "shockwave therapy": 2, "acupuncture": 2,
        "headache treatment": 2,
    },
    "manual_therapist": {
        "exercise therapy": 8, "dry needling": 6, "headache treatment": 4,
        "spinal manipulation": 3, "jaw treatment": 3, "shockwave therapy": 3,
        "sports injuries": 3, "ergonomic advice": 2, "taping": 2, "rehabilitation": 2,
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
HELFO_SHARE_PHYSIO = 0.4
HELFO_SHARE_OTHER = 0.1
ACCEPTS_NEW_SHARE = 0.75
HPR_RANGE = (900_000_000, 999_999_999)
# fmt: on

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
    name: str
    first_name: str
    surname: str
    profession: str
    hpr_number: str
    languages: tuple[str, ...]
    services: tuple[str, ...]


@dataclass
class Clinic:
    name: str
    org_number: str
    address: str
    postcode: Postcode
    phone: str
    email: str
    website: str
    helfo_agreement: bool
    accepts_new_patients: bool
    latitude: float
    longitude: float
    clinicians: list[Clinician] = field(default_factory=list)


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
    has_physio = any(c.profession == "physiotherapist" for c in clinicians)
    latitude, longitude = scatter(rng, pc)
    return Clinic(
        name=name,
        org_number=org_number(rng, registry) if rng.random() < ORG_NUMBER_SHARE else "",
        address=address,
        postcode=pc,
        phone=phone_number(rng, pc.county, registry),
        email=email,
        website=f"https://{slug}.example/" if rng.random() < WEBSITE_SHARE else "",
        helfo_agreement=rng.random() < (HELFO_SHARE_PHYSIO if has_physio else HELFO_SHARE_OTHER),
        accepts_new_patients=rng.random() < ACCEPTS_NEW_SHARE,
        latitude=latitude,
        longitude=longitude,
        clinicians=clinicians,
    )


def generate(rng: random.Random, postcodes: Sequence[Postcode]) -> list[Clinic]:
    registry = Registry()
    svalbard = next((pc for pc in postcodes if pc.code == SVALBARD_POSTCODE), None)
    if svalbard is None:
        raise SystemExit(f"postcode {SVALBARD_POSTCODE} (Barentsburg) is not in the register")
    clinics = [make_clinic(rng, svalbard, registry, size=1, kind="physio")]
    for pc in choose_locations(rng, candidate_postcodes(postcodes)):
        clinics.append(make_clinic(rng, pc, registry))
    # Sorted by postcode so the file reads south-east to north and diffs stay readable.
    return sorted(clinics, key=lambda c: (c.postcode.code, c.name))


# --- Checks and output --------------------------------------------------------------------


def check(clinics: Sequence[Clinic], postcodes: Sequence[Postcode]) -> None:
    """Refuse to write a file that breaks what the demo relies on."""
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
    clinicians = [c for clinic in clinics for c in clinic.clinicians]
    municipalities = {clinic.postcode.kommnr for clinic in clinics}
    finnmark = municipalities & FINNMARK_KOMMNR
    counties = {clinic.postcode.county for clinic in clinics}
    missing_counties = {pc.county for pc in postcodes} - counties - {"Jan Mayen"}
    hprs = [c.hpr_number for c in clinicians]
    if len(set(hprs)) != len(hprs):
        problems.append("HPR numbers are not unique")
    if len({c.name for c in clinics}) != len(clinics):
        problems.append("clinic names are not unique")
    if len(clinics) < MIN_CLINICS:
        problems.append(f"only {len(clinics)} clinics")
    if len(clinicians) < MIN_CLINICIANS:
        problems.append(f"only {len(clinicians)} clinicians")
    if len(municipalities) < MIN_MUNICIPALITIES:
        problems.append(f"only {len(municipalities)} municipalities")
    if len(finnmark) < MIN_FINNMARK_MUNICIPALITIES:
        problems.append(f"only {len(finnmark)} Finnmark municipalities")
    if missing_counties:
        problems.append("no clinic in " + ", ".join(sorted(missing_counties)))
    if problems:
        raise SystemExit("generated data rejected:\n  " + "\n  ".join(problems))


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def write_csv(path: Path, clinics: Sequence[Clinic]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for clinic in clinics:
            for clinician in clinic.clinicians:
                writer.writerow(
                    [
                        clinic.name,
                        clinic.org_number,
                        clinic.address,
                        clinic.postcode.code,
                        clinic.postcode.city,
                        clinic.phone,
                        clinic.email,
                        clinic.website,
                        clinician.name,
                        clinician.profession,
                        clinician.hpr_number,
                        yes_no(clinic.helfo_agreement),
                        yes_no(clinic.accepts_new_patients),
                        ";".join(clinician.languages),
                        ";".join(clinician.services),
                        f"{clinic.latitude:.5f}",
                        f"{clinic.longitude:.5f}",
                    ]
                )


def summary(clinics: Sequence[Clinic]) -> str:
    professions = Counter(c.profession for clinic in clinics for c in clinic.clinicians)
    municipalities = {clinic.postcode.kommnr for clinic in clinics}
    counties = {clinic.postcode.county for clinic in clinics}
    rows = ", ".join(f"{name}={count}" for name, count in sorted(professions.items()))
    return (
        f"{len(clinics)} clinics, {professions.total()} clinicians, "
        f"{len(municipalities)} municipalities, {len(counties)} counties; rows: {rows}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--postcodes", type=Path, default=DEFAULT_POSTCODES)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    postcodes = load_postcodes(args.postcodes)
    clinics = generate(random.Random(args.seed), postcodes)
    check(clinics, postcodes)
    write_csv(args.output, clinics)
    print(f"{args.output}: {summary(clinics)}", file=sys.stderr)


if __name__ == "__main__":
    main()
