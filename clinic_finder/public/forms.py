"""The search form, shared by the finder page and the JSON API."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, NumberRange, Optional, Regexp, ValidationError

from ..extensions import db
from ..models import Profession
from ..postcodes import PostcodePlace, lookup_postcode
from ..search import DEFAULT_RADIUS_KM, RADIUS_CHOICES_KM


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _choose_one_of(values) -> str:
    # API callers read these messages too, so they name the allowed values.
    return "Choose one of: " + ", ".join(str(value) for value in values) + "."


PROFESSION_MESSAGE = _choose_one_of(p.value for p in Profession)
RADIUS_MESSAGE = _choose_one_of(RADIUS_CHOICES_KM)


class SearchForm(FlaskForm):
    """Postcode, profession and radius: what a patient can search by.

    Submitted by GET so the article site can deep-link to a prefilled search; it
    changes nothing, so it carries no CSRF token.
    """

    class Meta:
        csrf = False

    postcode = StringField(
        "Postcode",
        filters=[_strip],
        validators=[
            InputRequired("Enter your postcode."),
            Regexp(r"^[0-9]{4}$", message="A postcode is four digits, for example 0150."),
        ],
    )
    profession = SelectField(
        "Clinician",
        choices=[SelectChoice("", "Any clinician")]
        + [SelectChoice(p.value, f"{p.label} ({p.norwegian})") for p in Profession],
        default="",
        invalid_choice_message=PROFESSION_MESSAGE,
    )
    radius = SelectField(
        "Within",
        coerce=int,
        choices=[SelectChoice(str(km), f"{km} km") for km in RADIUS_CHOICES_KM],
        default=DEFAULT_RADIUS_KM,
        invalid_value_message=RADIUS_MESSAGE,
        invalid_choice_message=RADIUS_MESSAGE,
    )
    page = IntegerField(
        "Page",
        default=1,
        validators=[
            Optional(),
            NumberRange(min=1, max=10_000, message="Page must be from 1 to 10000."),
        ],
    )

    postal_code: PostcodePlace | None = None

    def validate_postcode(self, field: StringField) -> None:
        """Accept only postcodes in the register, and remember the one found."""
        if field.errors:  # already not four digits: one message is enough
            return
        self.postal_code = lookup_postcode(db.session, field.data)
        if self.postal_code is None:
            raise ValidationError(
                f"We do not know the postcode {field.data}. Check it and try again."
            )

    @property
    def selected_profession(self) -> Profession | None:
        return Profession(self.profession.data) if self.profession.data else None

    @property
    def page_number(self) -> int:
        return self.page.data or 1


class ApiSearchForm(SearchForm):
    """The search form plus how many results an API caller wants per page."""

    limit = IntegerField(
        "Limit",
        default=20,
        validators=[Optional(), NumberRange(min=1, max=100, message="limit must be 1 to 100.")],
    )
