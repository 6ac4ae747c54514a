"""The API search's query string, read by hand: the finder form's rules, without WTForms.

Binding the WTForms search form (a dozen fields, their choices, filters and validators)
cost about a tenth of an API answer, for a query string of a few words. This reads the
same parameters by the same rules — the first value of each (every value of
``profession``), spaces stripped from ``place`` and ``postcode``, Python's ``int`` for
numbers, the form's words for "no" — and refuses what the form refused, with the same
400 answers byte for byte (``tests/api_query_answers.json`` holds the form's, recorded
before it was replaced).

The messages are written here, in English: API answers are English whatever the
request's language, and they are the API's contract, held by those tests, while the
pages' words (``web/search_forms.py``) are translated and may change with the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from ..complaints import Complaint
from ..finder import FinderQuery
from ..geocoding import current_geocoder
from ..models import Profession
from ..places import MAX_PLACE_LENGTH, POSTCODE_FIRST, Place, postcode_place, resolve_place
from ..postcodes import lookup_postcode
from ..search import DEFAULT_RADIUS_KM, RADIUS_CHOICES_KM
from ..web.search_forms import (
    FALSE_VALUES,
    FOUR_DIGITS,
    LANGUAGE_CODES,
    MAX_PAGE,
    ClientGeocoder,
)

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
PROFESSIONS = {profession.value: profession for profession in Profession}
NOT_AN_INTEGER = "Not a valid integer value."


def choose_one_of(values) -> str:
    """Name the values a parameter may take."""
    return f"Choose one of: {', '.join(str(value) for value in values)}."


PROFESSION_MESSAGE = choose_one_of(PROFESSIONS)
RADIUS_MESSAGE = choose_one_of(RADIUS_CHOICES_KM)


@dataclass
class ApiSearch:
    """A search as the API's query string asks for it; ``errors`` names each bad parameter.

    With no errors, ``origin`` is the search's place, or ``place_choices`` the places a
    name may mean (not an error, but no search either: the answer lists them).
    """

    place_text: str | None = None
    origin: Place | None = None
    place_choices: tuple[Place, ...] = ()
    # Whether the place was resolved (the only step that may write: a new geocoder answer
    # is cached), so that only then is there anything to commit.
    resolved_place: bool = False
    radius_km: int = DEFAULT_RADIUS_KM
    professions: frozenset[Profession] = frozenset()
    complaint: Complaint | None = None
    helfo_only: bool = False
    new_patients_only: bool = False
    open_now: bool = False
    step_free_only: bool = False
    language: str | None = None
    page_number: int = 1
    limit: int = DEFAULT_LIMIT
    errors: dict[str, list[str]] = field(default_factory=dict)

    def finder_query(self) -> FinderQuery:
        """What the search asks the finder for."""
        return FinderQuery(
            radius_km=self.radius_km,
            professions=self.professions,
            complaint=self.complaint,
            helfo_only=self.helfo_only,
            new_patients_only=self.new_patients_only,
            open_now=self.open_now,
            language=self.language,
            step_free_only=self.step_free_only,
        )


def read_search(session: Session, args: MultiDict, complaints: dict[str, Complaint]) -> ApiSearch:
    """Read an API search from its query string, resolving its place (see the module)."""
    search = ApiSearch()
    errors = search.errors
    _read_origin(session, args, search)

    radius = args.get("radius")
    if radius is not None:
        search.radius_km = _integer(radius)  # type: ignore[assignment]
        if search.radius_km not in RADIUS_CHOICES_KM:
            errors["radius"] = [RADIUS_MESSAGE]

    # profession= (empty) in a link means "any", as it always has.
    professions = [value for value in args.getlist("profession") if value]
    if any(value not in PROFESSIONS for value in professions):
        errors["profession"] = [PROFESSION_MESSAGE]
    else:
        search.professions = frozenset(PROFESSIONS[value] for value in professions)

    page = _bounded(args, "page", MAX_PAGE, "Page must be from 1 to 10000.", errors)
    search.page_number = page or 1
    limit = _bounded(args, "limit", MAX_LIMIT, "limit must be 1 to 100.", errors)
    search.limit = limit or DEFAULT_LIMIT

    complaint = args.get("complaint", "")
    if complaint and complaint not in complaints:
        errors["complaint"] = [choose_one_of(complaints)]
    else:
        search.complaint = complaints.get(complaint)

    language = args.get("language", "")
    if language and language not in LANGUAGE_CODES:
        errors["language"] = [choose_one_of(LANGUAGE_CODES)]
    else:
        search.language = language or None

    search.helfo_only = _yes(args, "helfo")
    search.new_patients_only = _yes(args, "new_patients")
    search.open_now = _yes(args, "open_now")
    search.step_free_only = _yes(args, "step_free")
    return search


def _read_origin(session: Session, args: MultiDict, search: ApiSearch) -> None:
    """Find the search's place: ``place``, or an older link's ``postcode``."""
    places = args.getlist("place")
    postcodes = args.getlist("postcode")
    place = places[0].strip() if places else None
    postcode = postcodes[0].strip() if postcodes else None
    # A link with only postcode= (even empty) asks by postcode, as links always did;
    # an empty place= with a postcode searches that postcode as a place.
    by_postcode = not places and bool(postcodes)
    if not place and postcode:
        place = postcode
    search.place_text = place
    if place and len(place) > MAX_PLACE_LENGTH:
        search.errors["place"] = [f"Write at most {MAX_PLACE_LENGTH} characters."]
    if by_postcode:
        message = _postcode_error(session, postcode, search)
        if message is not None:
            search.errors["postcode"] = [message]
    elif "place" not in search.errors:
        message = _place_error(session, place, search)
        if message is not None:
            search.errors["place"] = [message]


def _postcode_error(session: Session, postcode: str | None, search: ApiSearch) -> str | None:
    if not postcode:
        return "Enter your postcode."
    if not FOUR_DIGITS.match(postcode):
        return "A postcode is four digits, for example 0150."
    found = lookup_postcode(session, postcode)
    if found is None:
        return _unknown_postcode(postcode)
    search.origin = postcode_place(found)
    return None


def _place_error(session: Session, place: str | None, search: ApiSearch) -> str | None:
    if not place:
        return "Enter a postcode or a place."
    geocoder = current_geocoder()
    search.resolved_place = True
    answer = resolve_place(
        session, place, ClientGeocoder(geocoder) if geocoder is not None else None
    )
    if answer.place is not None:
        search.origin = answer.place
        return None
    if answer.choices:
        search.place_choices = answer.choices
        return None
    if answer.geocoder_unavailable:
        return (
            "We cannot look up addresses just now. Type a postcode or the name of a town instead."
        )
    if POSTCODE_FIRST.match(place):
        return _unknown_postcode(place[:4])
    return f"We could not find {place} in Norway. Check the spelling, or type a postcode."


def _unknown_postcode(code: str) -> str:
    return f"We do not know the postcode {code}. Check it and try again."


def _integer(text: str) -> int | None:
    # Python's int, as WTForms reads numbers: " 5", "+5" and "1_0" are numbers too.
    try:
        return int(text)
    except ValueError:
        return None


def _bounded(
    args: MultiDict, name: str, most: int, message: str, errors: dict[str, list[str]]
) -> int | None:
    """A whole number from 1 to ``most``, or None when missing or blank."""
    values = args.getlist(name)
    if not values or not values[0].strip():
        return None
    number = _integer(values[0])
    if number is None:
        errors[name] = [NOT_AN_INTEGER, message]
    elif not 1 <= number <= most:
        errors[name] = [message]
    return number


def _yes(args: MultiDict, name: str) -> bool:
    value = args.get(name)
    return value is not None and value not in FALSE_VALUES
