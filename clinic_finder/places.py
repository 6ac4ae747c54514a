"""Where a search starts: a postcode, a post town, a municipality, or an address or district.

Patients type what they know: "0150", "Tromsø", "tromso", "Bø", "Majorstuen" or
"Storgata 1, Bodø". :func:`resolve_place` answers with one :class:`Place`, a choice of
places (a name that several share, like the two «Bø»), or a reason it found none.

The postcode register answers first: four digits are a postcode, and a name is looked up
among the post towns (POSTSTAD) and municipalities (KOMMUNE), case- and accent-tolerant
("tromso" finds Tromsø, "baerum" Bærum) but exact spellings first. A post town called
"Bø i Telemark" is also found as "Bø", which is how people say it. A post town and the
municipality around it of the same name are one place, not a choice. A place's point is
the middle of its street-address postcodes (P.O. boxes sit at the post office), and its
postcode, for links that still carry one, the street-address postcode nearest that point.

Anything else goes to the configured geocoder, limited to Norway, once per text: answers,
found or not, are kept in the ``geocode_cache`` table. The geocoder is only asked when a
search is sent, never while the patient types (suggestions come from the register alone).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from .geocoding import GeocoderUnavailable, ThrottledGeocoder
from .importer import normalise_key
from .models import GeocodeCacheEntry, insert_on_conflict, now_utc
from .postcodes import PostcodePlace, lookup_postcode, postcode_cache
from .search import distance_km
from .validation import check_in_norway

logger = logging.getLogger(__name__)

# A postcode, alone or followed by its place ("0150 Oslo", as suggestions show it).
POSTCODE_FIRST = re.compile(r"^\s*(\d{4})(?:\s+\D.*)?$")
# Longer text is no place name and no address; it is not sent to the geocoder.
MAX_PLACE_LENGTH = 200
# How many suggestions /api/v1/places gives.
MAX_SUGGESTIONS = 10
# Prefix of the geocode cache's keys for searched places (imports key full addresses).
CACHE_PREFIX = "place-sha256:"
# Seconds a search waits at most for the geocoder (its own timeout may be longer).
GEOCODER_WAIT_SECONDS = 6.0


class PlaceKind(StrEnum):
    """How a place was found."""

    POSTCODE = "postcode"
    POST_TOWN = "post_town"
    MUNICIPALITY = "municipality"
    ADDRESS = "address"  # anything the geocoder placed: an address, a district, a landmark


@dataclass(frozen=True)
class Place:
    """A search's origin: a point with a postcode for links and a name for headings.

    ``postcode`` and ``place`` are those of a postcode in the register (the one typed, or
    the street-address postcode nearest the point), so links that carry a postcode
    (``contact?postcode=``, a clinic page's ``?from=``) keep working; ``label`` is what a
    heading says ("Tromsø", "Majorstuen, Oslo", "0150 Oslo"); ``query`` is the text that
    finds this place again in ``?place=``.
    """

    kind: PlaceKind
    label: str
    query: str
    postcode: str
    place: str
    municipality: str
    county: str
    latitude: float
    longitude: float
    in_use: bool = True

    @property
    def region(self) -> str:
        """Where it lies, to tell namesakes apart: "Midt-Telemark, Vestfold og Telemark"."""
        if self.kind is PlaceKind.MUNICIPALITY or self.municipality == self.label:
            return self.county
        return f"{self.municipality}, {self.county}"


@dataclass(frozen=True)
class PlaceAnswer:
    """What a typed text resolved to: one place, a choice, or nothing (and why)."""

    place: Place | None = None
    choices: tuple[Place, ...] = ()
    # The geocoder was needed but could not be asked (down, busy, or switched off).
    geocoder_unavailable: bool = False

    @property
    def found(self) -> bool:
        return self.place is not None


def fold(text: str) -> str:
    """Fold a name as Norwegians type it on any keyboard: "Tromsø" → "tromso", "Ålesund" and
    "Aalesund" → "alesund", "Bærum" and "Baerum" → "baerum", "Kárášjohka" → "karasjohka"."""
    text = " ".join(text.casefold().split())
    text = text.replace("aa", "å").replace("æ", "ae").replace("ø", "o").replace("å", "a")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _exact(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _base_name(name: str) -> str | None:
    # Posten tells namesakes apart with " i <region>": "Bø i Telemark" is Bø.
    head, separator, _ = name.partition(" i ")
    return head if separator and head else None


def _display_name(names: list[str]) -> str:
    # The register writes some P.O.-box towns in capitals ("BØVERBRU"): prefer a spelling
    # with small letters, else capitalise each word.
    mixed = [name for name in names if name != name.upper()]
    if mixed:
        return Counter(mixed).most_common(1)[0][0]
    return " ".join(word.capitalize() for word in names[0].split())


@dataclass
class _Area:
    """A post town or municipality as the index holds it, before it becomes a Place."""

    kind: PlaceKind
    name: str
    municipality: str
    municipality_key: str
    county: str
    postcodes: list[PostcodePlace] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Folded once here: suggestions compare every area's name at each keystroke.
        self.folded = fold(self.name)
        base = _base_name(self.name) if self.kind is PlaceKind.POST_TOWN else None
        self.folded_base = fold(base) if base else None
        self.exact = _exact(self.name)

    def to_place(self, query: str) -> Place:
        usable = [p for p in self.postcodes if p.for_street_addresses] or self.postcodes
        latitude = sum(p.latitude for p in usable) / len(usable)
        longitude = sum(p.longitude for p in usable) / len(usable)
        nearest = min(
            usable, key=lambda p: distance_km((latitude, longitude), (p.latitude, p.longitude))
        )
        return Place(
            kind=self.kind,
            label=self.name,
            query=query,
            postcode=nearest.postcode,
            place=_display_name([nearest.place]),
            municipality=self.municipality,
            county=self.county,
            latitude=round(latitude, 5),
            longitude=round(longitude, 5),
        )


@dataclass
class PlaceIndex:
    """The register's post towns and municipalities, by exact and by folded name."""

    areas: list[_Area]
    exact: dict[str, list[_Area]]
    folded: dict[str, list[_Area]]

    def matches(self, name: str) -> list[_Area]:
        """The areas a name means: exact spellings first; folded ones only if none is."""
        found = self.exact.get(_exact(name))
        if found:
            return found
        return self.folded.get(fold(name), [])


def build_index(postcodes: list[PostcodePlace]) -> PlaceIndex:
    """Group the postcodes in use into post towns and municipalities, and index their names."""
    towns: dict[str, list[PostcodePlace]] = defaultdict(list)
    municipalities: dict[tuple[str, str], list[PostcodePlace]] = defaultdict(list)
    for postcode in postcodes:
        if not postcode.in_use:
            continue
        if postcode.place:
            towns[_exact(postcode.place)].append(postcode)
        if postcode.municipality:
            # Two municipalities share a name (Våler, Herøy): the county tells them apart.
            municipalities[(postcode.municipality, postcode.county)].append(postcode)
    areas: list[_Area] = []
    for members in towns.values():
        home = Counter((p.municipality, p.county) for p in members).most_common(1)[0][0]
        areas.append(
            _Area(
                PlaceKind.POST_TOWN,
                _display_name(
                    [p.place for p in members if p.for_street_addresses]
                    or [p.place for p in members]
                ),
                home[0],
                _exact(f"{home[0]}|{home[1]}"),
                home[1],
                members,
            )
        )
    for (municipality, county), members in municipalities.items():
        areas.append(
            _Area(
                PlaceKind.MUNICIPALITY,
                municipality,
                municipality,
                _exact(f"{municipality}|{county}"),
                county,
                members,
            )
        )
    areas.sort(key=lambda area: (fold(area.name), area.kind != PlaceKind.POST_TOWN, area.county))
    exact: dict[str, list[_Area]] = defaultdict(list)
    folded: dict[str, list[_Area]] = defaultdict(list)
    for area in areas:
        names = [area.name]
        base = _base_name(area.name) if area.kind is PlaceKind.POST_TOWN else None
        if base:
            names.append(base)
        for name in names:
            exact[_exact(name)].append(area)
            folded[fold(name)].append(area)
    return PlaceIndex(areas, dict(exact), dict(folded))


def place_index(session: Session) -> PlaceIndex:
    """This process's index of the register's names (rebuilt when the register reloads)."""
    return postcode_cache().derived(session, "place_index", build_index)


def _one_per_place(areas: list[_Area]) -> list[_Area]:
    # Tromsø the post town and Tromsø the municipality are one place to a patient: keep
    # the post town (its point is the town, not the middle of a municipality's islands).
    town_homes = {area.municipality_key for area in areas if area.kind is PlaceKind.POST_TOWN}
    return [
        area
        for area in areas
        if area.kind is PlaceKind.POST_TOWN or area.municipality_key not in town_homes
    ]


def _qualified(areas: list[_Area], qualifier: str) -> list[_Area]:
    # "Våler, Innlandet" or "Sande, Sunnfjord": keep the areas the words after the comma name.
    wanted = fold(qualifier)
    return [
        area
        for area in areas
        if wanted in (fold(area.municipality), fold(area.county), fold(area.name))
    ]


def _areas_for(index: PlaceIndex, text: str) -> list[_Area]:
    areas = _one_per_place(index.matches(text))
    if areas or "," not in text:
        return areas
    name, _, qualifier = text.rpartition(",")
    return _qualified(_one_per_place(index.matches(name)), qualifier)


def _query_for(index: PlaceIndex, area: _Area) -> str:
    """The shortest text that finds exactly this area again."""
    for text in (area.name, f"{area.name}, {area.municipality}", f"{area.name}, {area.county}"):
        if _areas_for(index, text) == [area]:
            return text
    return area.to_place("").postcode


def postcode_place(postcode: PostcodePlace) -> Place:
    """A postcode from the register as a search's origin, named "0150 Oslo"."""
    name = _display_name([postcode.place])
    return Place(
        kind=PlaceKind.POSTCODE,
        label=f"{postcode.postcode} {name}",
        query=postcode.postcode,
        postcode=postcode.postcode,
        place=postcode.place,
        municipality=postcode.municipality,
        county=postcode.county,
        latitude=postcode.latitude,
        longitude=postcode.longitude,
        in_use=postcode.in_use,
    )


def find_in_register(session: Session, text: str) -> PlaceAnswer | None:
    """Resolve a text from the register alone; None when the register does not know it."""
    match = POSTCODE_FIRST.match(text)
    if match:
        postcode = lookup_postcode(session, match.group(1))
        return PlaceAnswer(place=postcode_place(postcode)) if postcode else None
    index = place_index(session)
    areas = _areas_for(index, text)
    if not areas:
        return None
    places = tuple(area.to_place(_query_for(index, area)) for area in areas)
    if len(places) == 1:
        return PlaceAnswer(place=places[0])
    return PlaceAnswer(choices=places)


def suggest_places(session: Session, text: str, limit: int = MAX_SUGGESTIONS) -> list[Place]:
    """Places in the register whose name (or postcode) starts with what was typed so far."""
    text = " ".join(text.split())
    if not text:
        return []
    if text.isdigit():
        if len(text) > 4:
            return []
        cache = postcode_cache()
        cache.get(session, "")
        codes = [p for p in cache.places() if p.in_use and p.postcode.startswith(text)]
        return [postcode_place(p) for p in sorted(codes, key=lambda p: p.postcode)[:limit]]
    index = place_index(session)
    wanted = fold(text)
    starts = [area for area in index.areas if area.folded.startswith(wanted)]
    typed = _exact(text)

    def order(area: _Area) -> tuple:
        # The places the text names ("Bø i Telemark" for "bø") before longer names.
        named = wanted in (area.folded, area.folded_base)
        return (not named, not area.exact.startswith(typed), len(area.name), area.folded)

    starts.sort(key=order)
    seen: set[str] = set()
    places: list[Place] = []
    for area in _one_per_place(starts):
        place = area.to_place(_query_for(index, area))
        if place.query in seen:
            continue
        seen.add(place.query)
        places.append(place)
        if len(places) == limit:
            break
    return places


def _cached_point(session: Session, key: str) -> tuple[bool, tuple[float, float] | None]:
    entry = session.scalar(select(GeocodeCacheEntry).where(GeocodeCacheEntry.query == key))
    if entry is None:
        return False, None
    if entry.latitude is None or entry.longitude is None:
        return True, None
    return True, (entry.latitude, entry.longitude)


def _remember(session: Session, key: str, provider: str, point: tuple[float, float] | None) -> None:
    # One statement that yields to a row another request stored a moment ago: losing that
    # race must not undo the caller's transaction, and the API searches without one
    # (autocommit), where PostgreSQL refuses the savepoint this once took.
    session.execute(
        insert_on_conflict(session)(GeocodeCacheEntry)
        .values(
            query=key,
            provider=provider,
            latitude=point[0] if point else None,
            longitude=point[1] if point else None,
            created_at=now_utc(),
        )
        .on_conflict_do_nothing(index_elements=["query"])
    )


def _nearest_street_postcode(session: Session, point: tuple[float, float]) -> PostcodePlace | None:
    cache = postcode_cache()
    cache.get(session, "")
    candidates = [p for p in cache.places() if p.in_use and p.for_street_addresses]
    if not candidates:
        return None
    return min(candidates, key=lambda p: distance_km(point, (p.latitude, p.longitude)))


def _geocoded_place(session: Session, text: str, point: tuple[float, float]) -> Place | None:
    try:
        check_in_norway(*point)
    except ValueError:
        return None
    nearest = _nearest_street_postcode(session, point)
    if nearest is None:
        return None
    town = _display_name([nearest.place])
    label = text if fold(town) in fold(text) else f"{text}, {town}"
    return Place(
        kind=PlaceKind.ADDRESS,
        label=label,
        query=text,
        postcode=nearest.postcode,
        place=nearest.place,
        municipality=nearest.municipality,
        county=nearest.county,
        latitude=point[0],
        longitude=point[1],
    )


def cache_key(text: str) -> str:
    """The geocode cache's key for a searched text: a hash, so the table holds no typed
    address a patient may have given as their own, only what it placed."""
    digest = hashlib.sha256(normalise_key(text).encode("utf-8")).hexdigest()
    return CACHE_PREFIX + digest


def geocode_place(session: Session, text: str, geocoder: ThrottledGeocoder | None) -> PlaceAnswer:
    """Place an address or district through the cache, then the geocoder; flushes, never commits."""
    key = cache_key(text)
    cached, point = _cached_point(session, key)
    if not cached:
        if geocoder is None:
            return PlaceAnswer(geocoder_unavailable=True)
        try:
            point = geocoder.lookup(text, deadline=time.monotonic() + GEOCODER_WAIT_SECONDS)
        except GeocoderUnavailable as error:
            logger.warning("a searched place could not be geocoded: %s", type(error).__name__)
            return PlaceAnswer(geocoder_unavailable=True)
        _remember(session, key, geocoder.provider, point)
    if point is None:
        return PlaceAnswer()
    place = _geocoded_place(session, text, point)
    return PlaceAnswer(place=place)


def resolve_place(session: Session, text: str, geocoder: ThrottledGeocoder | None) -> PlaceAnswer:
    """Resolve what a patient typed: the register first, then the geocoder (see the module).

    A new geocoder answer is added to the cache and flushed; the caller commits.
    """
    text = " ".join(text.split())
    if not text or len(text) > MAX_PLACE_LENGTH:
        return PlaceAnswer()
    answer = find_in_register(session, text)
    if answer is not None:
        return answer
    if POSTCODE_FIRST.match(text) or not any(c.isalpha() for c in text):
        return PlaceAnswer()  # an unknown postcode, or no words: nothing to geocode
    return geocode_place(session, text, geocoder)
