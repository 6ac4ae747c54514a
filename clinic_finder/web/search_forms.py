"""The search forms, shared by the finder page and the embedded finder.

The JSON API reads the same parameters by the same rules without WTForms
(``api/search_query.py``); what "no" means and which languages count are shared from here.
"""

from __future__ import annotations

import re
from functools import lru_cache

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_wtf import FlaskForm
from limits import parse
from limits.errors import StorageError
from wtforms import (
    BooleanField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..clinic_pages import language_name
from ..complaints import Complaint
from ..extensions import db, limiter
from ..finder import FinderQuery
from ..geocoding import GeocoderBusy, ThrottledGeocoder, current_geocoder
from ..i18n import PROFESSION_NAMES, SUPPORTED_LOCALES, current_language
from ..models import INDEXED_LANGUAGES, Profession
from ..places import MAX_PLACE_LENGTH, POSTCODE_FIRST, Place, postcode_place, resolve_place
from ..postcodes import lookup_postcode
from ..search import DEFAULT_RADIUS_KM, RADIUS_CHOICES_KM
from .catalogues import complaint_catalogue
from .forms import stripped

# The languages patients most often look for in Norway, by ISO 639-1 code as clinicians'
# languages are stored; names come from Babel in the page's language. The search index
# keeps them per clinic (models.INDEXED_LANGUAGES), so their counts read the index alone.
LANGUAGE_CODES = INDEXED_LANGUAGES
# New addresses and districts one client may have placed by the geocoder (ClientGeocoder).
GEOCODER_LOOKUPS_PER_CLIENT = parse("20 per 10 minutes")
FOUR_DIGITS = re.compile(r"^[0-9]{4}$")
# What a query string may say for "yes" and "no" (the API's callers write true/false).
FALSE_VALUES = (False, "false", "False", "0", "no", "nei", "")
# The last page a search may ask for, on the pages and in the API.
MAX_PAGE = 10_000


def _choose_one_of(values):
    # The messages name the allowed values, as the API's do (api/search_query.py).
    return _l("Choose one of: %(values)s.", values=", ".join(str(value) for value in values))


PROFESSION_MESSAGE = _choose_one_of(p.value for p in Profession)
RADIUS_MESSAGE = _choose_one_of(RADIUS_CHOICES_KM)


class SearchForm(FlaskForm):
    """A place (or postcode), profession and radius: what a patient can search by.

    Submitted by GET so the article site can deep-link to a prefilled search; it
    changes nothing, so it carries no CSRF token. ``place`` takes a postcode, a post
    town, a municipality, an address or a district (places.py); ``postcode`` is what
    links made before places were searchable carry, and means exactly what it did.
    After validation ``origin`` is the search's :class:`~clinic_finder.places.Place`,
    or ``place_choices`` the places a name may mean.
    """

    class Meta:
        csrf = False

    place = StringField(
        _l("Postcode or place"),
        filters=[stripped],
        validators=[
            Length(
                max=MAX_PLACE_LENGTH,
                message=_l("Write at most %(max)d characters.", max=MAX_PLACE_LENGTH),
            )
        ],
    )
    postcode = StringField(_l("Postcode"), filters=[stripped])
    profession = SelectField(
        _l("Clinician"),
        choices=[SelectChoice("", _l("Any clinician"))]
        + [SelectChoice(p.value, PROFESSION_NAMES[p]) for p in Profession],
        default="",
        invalid_choice_message=PROFESSION_MESSAGE,
    )
    radius = SelectField(
        _l("Within"),
        coerce=int,
        choices=[SelectChoice(str(km), f"{km} km") for km in RADIUS_CHOICES_KM],
        default=DEFAULT_RADIUS_KM,
        invalid_value_message=RADIUS_MESSAGE,
        invalid_choice_message=RADIUS_MESSAGE,
    )
    page = IntegerField(
        _l("Page"),
        default=1,
        validators=[
            Optional(),
            NumberRange(min=1, max=MAX_PAGE, message=_l("Page must be from 1 to 10000.")),
        ],
    )

    origin: Place | None = None
    place_choices: tuple[Place, ...] = ()
    # A page that shows only the place field shows an old link's postcode errors there.
    postcode_errors_on_place = False

    def validate(self, extra_validators=None) -> bool:
        # A name several places share is not valid yet, but no mistake: the page offers
        # the places (templates/public/_place_choice.html).
        valid = super().validate(extra_validators) and not self.place_choices
        if self.postcode_errors_on_place and self.postcode.errors:
            self.place.errors = [*self.place.errors, *self.postcode.errors]
            self.postcode.errors = []
        return valid

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.place.data and self.postcode.data:
            self.place.data = self.postcode.data  # an old link's postcode shows in the field

    @property
    def postal_code(self) -> Place | None:
        """The search's origin (its old name: it always has a postcode for links)."""
        return self.origin

    @property
    def by_postcode(self) -> bool:
        """Whether the search came as ``postcode=`` (an older link), not ``place=``."""
        return not self.place.raw_data and bool(self.postcode.raw_data)

    def validate_postcode(self, field: StringField) -> None:
        """Accept only postcodes in the register, and remember the one found."""
        if not self.by_postcode:
            return
        if not field.data:
            raise ValidationError(gettext("Enter your postcode."))
        if not FOUR_DIGITS.match(field.data):
            raise ValidationError(gettext("A postcode is four digits, for example 0150."))
        postcode = lookup_postcode(db.session, field.data)
        if postcode is None:
            raise ValidationError(_unknown_postcode(field.data))
        self.origin = postcode_place(postcode)

    def validate_place(self, field: StringField) -> None:
        """Resolve the place typed: one place, a choice of places, or a message saying why not."""
        if self.by_postcode or field.errors:
            return
        if not field.data:
            raise ValidationError(gettext("Enter a postcode or a place."))
        geocoder = current_geocoder()
        answer = resolve_place(
            db.session, field.data, ClientGeocoder(geocoder) if geocoder is not None else None
        )
        if answer.place is not None:
            self.origin = answer.place
            return
        if answer.choices:
            self.place_choices = answer.choices
            return
        if answer.geocoder_unavailable:
            raise ValidationError(
                gettext(
                    "We cannot look up addresses just now. "
                    "Type a postcode or the name of a town instead."
                )
            )
        if POSTCODE_FIRST.match(field.data):
            raise ValidationError(_unknown_postcode(field.data[:4]))
        raise ValidationError(
            gettext(
                "We could not find %(place)s in Norway. Check the spelling, or type a postcode.",
                place=field.data,
            )
        )

    def origin_arguments(self) -> dict:
        """The search's place as URL arguments: as it came (``postcode=`` or ``place=``)."""
        if self.by_postcode:
            return {"postcode": self.postcode.data}
        return {"place": self.origin.query if self.origin else self.place.data}

    @property
    def selected_profession(self) -> Profession | None:
        return Profession(self.profession.data) if self.profession.data else None

    @property
    def page_number(self) -> int:
        return self.page.data or 1


class ClientGeocoder:
    """The site's geocoder, asked for at most ``GEOCODER_LOOKUPS_PER_CLIENT`` new texts a client.

    A patient searches a few addresses; more is a script using our geocoder, whose one turn
    a second the whole site shares (a request waits for it). Cached texts cost nothing.
    """

    def __init__(self, geocoder: ThrottledGeocoder) -> None:
        self.geocoder = geocoder
        self.provider = geocoder.provider

    def lookup(self, query: str, deadline: float | None = None):
        if not self._allowed():
            raise GeocoderBusy("this client asked for many new places a short while ago")
        return self.geocoder.lookup(query, deadline=deadline)

    @staticmethod
    def _allowed() -> bool:
        if not current_app.config.get("RATELIMIT_ENABLED", True):
            return True
        try:
            return limiter.limiter.hit(
                GEOCODER_LOOKUPS_PER_CLIENT, "place-geocoder", get_remote_address()
            )
        except (StorageError, ConnectionError, OSError):
            return True  # the limits' storage is away: the site-wide spacing still holds


def _unknown_postcode(code: str) -> str:
    return gettext(
        "We do not know the postcode %(postcode)s. Check it and try again.", postcode=code
    )


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _drop_empty(values):
    # profession= (empty) in a link means "any", as it always has.
    return [value for value in values or [] if value]


@lru_cache(maxsize=len(SUPPORTED_LOCALES))
def _language_choices(language: str) -> tuple[SelectChoice, ...]:
    # Babel's names for 21 languages cost a millisecond a search; they never change.
    return tuple(
        SelectChoice(code, _capitalised(language_name(code, language))) for code in LANGUAGE_CODES
    )


class FinderForm(SearchForm):
    """The full finder: several professions at once, a complaint, and filters.

    ``profession`` may be repeated (``profession=chiropractor&profession=physiotherapist``);
    a link with one, or none, means what it always meant.
    """

    postcode_errors_on_place = True

    profession = SelectMultipleField(
        _l("Clinician"),
        choices=[SelectChoice(p.value, PROFESSION_NAMES[p]) for p in Profession],
        filters=[_drop_empty],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        invalid_choice_message=PROFESSION_MESSAGE,
    )
    complaint = SelectField(_l("What is bothering you?"), default="", validate_choice=False)
    helfo = BooleanField(
        _l("Public agreement (HELFO): you pay the public rate"), false_values=FALSE_VALUES
    )
    new_patients = BooleanField(_l("Taking new patients"), false_values=FALSE_VALUES)
    open_now = BooleanField(_l("Open now"), false_values=FALSE_VALUES)
    step_free = BooleanField(_l("Step-free entrance"), false_values=FALSE_VALUES)
    language = SelectField(_l("Language the clinician speaks"), default="", validate_choice=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        language = current_language()
        self.complaint.choices = [SelectChoice("", _l("Optional"))] + [
            SelectChoice(slug, complaint.name(language))
            for slug, complaint in complaint_catalogue().items()
        ]
        self.language.choices = [SelectChoice("", _l("Any language")), *_language_choices(language)]

    def validate_complaint(self, field: SelectField) -> None:
        """Forget a complaint the catalogue does not know: an article's old link still works."""
        if field.data and field.data not in complaint_catalogue():
            field.data = ""

    def validate_language(self, field: SelectField) -> None:
        if field.data and field.data not in LANGUAGE_CODES:
            raise ValidationError(_choose_one_of(LANGUAGE_CODES))

    @property
    def selected_professions(self) -> frozenset[Profession]:
        return frozenset(Profession(value) for value in self.profession.data or [])

    @property
    def selected_profession(self) -> Profession | None:
        professions = self.selected_professions
        return next(iter(professions)) if len(professions) == 1 else None

    @property
    def selected_complaint(self) -> Complaint | None:
        return complaint_catalogue().get(self.complaint.data or "")

    def finder_query(self) -> FinderQuery:
        """What the (validated) form asks the finder for."""
        return FinderQuery(
            radius_km=self.radius.data,
            professions=self.selected_professions,
            complaint=self.selected_complaint,
            helfo_only=self.helfo.data,
            new_patients_only=self.new_patients.data,
            open_now=self.open_now.data,
            language=self.language.data or None,
            step_free_only=self.step_free.data,
        )

    def query_arguments(self) -> dict:
        """The search as URL arguments, for pagination, the language switch and sharing."""
        arguments = {
            **self.origin_arguments(),
            "profession": sorted(self.profession.data or []) or None,
            "radius": self.radius.data,
            "complaint": self.complaint.data or None,
            "helfo": "true" if self.helfo.data else None,
            "new_patients": "true" if self.new_patients.data else None,
            "open_now": "true" if self.open_now.data else None,
            "language": self.language.data or None,
            "step_free": "true" if self.step_free.data else None,
        }
        return {name: value for name, value in arguments.items() if value is not None}
