"""The contact request form, used by the page and (with JSON turned into form data) the API."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Length,
    NumberRange,
    Optional,
    StopValidation,
    ValidationError,
)
from wtforms.widgets import HiddenInput

from ..clinic_pages import get_listed_clinic
from ..complaints import Complaint
from ..contact_requests import (
    CONTACT_TIMES,
    DURATIONS,
    MAX_MESSAGE_LENGTH,
    ContactDetails,
    contains_fodselsnummer,
)
from ..extensions import db
from ..i18n import PROFESSION_CHOICES
from ..models import Clinic, PostalCode, Profession
from ..validation import clean_email, clean_phone
from .catalogues import complaint_catalogue
from .forms import cleaned_by, name_text, stripped

UNKNOWN_CLINIC_MESSAGE = _l(
    "We cannot find the clinic you asked about any more. Send the form again, and we will "
    "help you find another."
)
# A clinic id from a URL: ASCII digits only (str.isdigit() also takes "²"), in int32.
_CLINIC_ID = re.compile(r"[0-9]{1,9}")

FODSELSNUMMER_MESSAGE = _l(
    "Please remove your national identity number (fødselsnummer). We do not need it, and "
    "we must not store it."
)


# What a ticked checkbox sends: WTForms' own value for it.
CHECKBOX_VALUE = "y"


def refuse_fodselsnummer(form, field) -> None:
    """Refuse a national identity number in a free-text field, and say only that."""
    if isinstance(field.data, str) and contains_fodselsnummer(field.data):
        raise StopValidation(FODSELSNUMMER_MESSAGE)


class CheckboxField(BooleanField):
    """A checkbox, ticked only by its own value: what a browser sends for a ticked box.

    WTForms' BooleanField reads anything but "false" and "" as ticked, so a crafted
    ``consent=no`` (or ``0``, or ``off``) would have counted as consent.
    """

    def process_formdata(self, valuelist) -> None:
        """Ticked only when the first value sent is the checkbox's own."""
        self.data = valuelist[:1] == [CHECKBOX_VALUE]

    def _value(self) -> str:
        # Shown again, the box keeps its own value, whatever was sent.
        return CHECKBOX_VALUE


class ClinicIdField(IntegerField):
    """The clinic a request is about, carried in a hidden input from the page that linked here."""

    widget = HiddenInput()

    def post_validate(self, form, validation_stopped) -> None:
        """Drop a value found wrong, so the form shown again (saying so) sends without it."""
        # The patient can neither see nor correct a hidden input.
        if self.errors:
            self.data = None
            self.raw_data = []
            form.clinic = None


class ContactForm(FlaskForm):
    """What a patient tells us, with their consent."""

    name = StringField(
        _l("Your name"),
        filters=[name_text],
        validators=[
            DataRequired(_l("Tell us your name.")),
            refuse_fodselsnummer,
            Length(max=200),
        ],
    )
    email = EmailField(
        _l("Email"),
        filters=[stripped],
        validators=[Optional(), refuse_fodselsnummer, Length(max=254), cleaned_by(clean_email)],
    )
    phone = TelField(
        _l("Phone"),
        filters=[stripped],
        validators=[Optional(), refuse_fodselsnummer, Length(max=40), cleaned_by(clean_phone)],
    )
    postcode = StringField(
        _l("Your postcode"),
        filters=[stripped],
        validators=[DataRequired(_l("Enter your postcode."))],
    )
    profession = SelectField(
        _l("Who would you like to see?"),
        choices=[SelectChoice("", _l("Not sure — advise me"))]
        + [SelectChoice(p.value, PROFESSION_CHOICES[p]) for p in Profession],
        default="",
        invalid_choice_message=_l(
            "Choose chiropractor, physiotherapist, manual_therapist or none."
        ),
    )
    message = TextAreaField(
        _l("What is bothering you?"),
        filters=[stripped],
        validators=[
            DataRequired(_l("Tell us briefly what is bothering you.")),
            refuse_fodselsnummer,
            # WTForms fills in %(max)d.
            Length(max=MAX_MESSAGE_LENGTH, message=_l("Please keep it under %(max)d characters.")),
        ],
        description=_l("Please do not write your national identity number (fødselsnummer)."),
    )
    duration = SelectField(
        _l("How long has it lasted?"),
        choices=[SelectChoice("", _l("Choose"))]
        + [SelectChoice(k, v) for k, v in DURATIONS.items()],
        default="",
    )
    contact_time = SelectField(
        _l("When may we call you?"),
        choices=[SelectChoice(k, v) for k, v in CONTACT_TIMES.items()],
        default="any",
    )
    clinic_id = ClinicIdField(
        _l("Clinic"),
        invalid_value_message=UNKNOWN_CLINIC_MESSAGE,
        validators=[
            Optional(),
            NumberRange(min=1, max=2**31 - 1, message=UNKNOWN_CLINIC_MESSAGE),
        ],
    )
    share_message_with_clinic = CheckboxField(
        _l("You may share my description with the clinic you refer me to")
    )
    consent = CheckboxField(
        _l("I agree that Finn klinikk may store and use what I have written to help me."),
        # Said on its own, in the error summary and under the box: no label repeated.
        validators=[DataRequired(_l("You must agree so that we can handle your request."))],
    )
    # The complaint the patient came about (a slug from the catalogue), carried through the
    # form for the right urgent-care advice, and stored (if the catalogue knows it) so staff
    # can refer to a clinic whose services suit it.
    complaint = HiddenField(filters=[stripped])
    # A honeypot: hidden from people (CSS and aria-hidden), irresistible to form-filling bots.
    website = StringField(_l("Leave this field empty"))

    postal_code: PostalCode | None = None
    clinic: Clinic | None = None

    def validate_postcode(self, field) -> None:
        """Accept only postcodes in the register."""
        self.postal_code = db.session.get(PostalCode, field.data or "")
        if self.postal_code is None:
            raise ValidationError(
                _l("We do not know that postcode. A postcode is four digits, e.g. 0150.")
            )

    def prefill_clinic(self, clinic_id: str) -> None:
        """Carry the clinic a link asked about, if patients can find it; else ignore it."""
        if _CLINIC_ID.fullmatch(clinic_id):
            self.clinic = get_listed_clinic(db.session, int(clinic_id))
            self.clinic_id.data = self.clinic.id if self.clinic else None

    def prefill_profession(self, searched: str) -> None:
        """Choose the profession the patient searched for, else the clinic's only one.

        A searched profession the clinic asked about does not practise is left out: the
        patient then chooses, or lets us advise.
        """
        offered = self.clinic.professions if self.clinic else list(Profession)
        if searched in {profession.value for profession in offered}:
            self.profession.data = searched
        elif self.clinic is not None and len(offered) == 1:
            self.profession.data = offered[0].value

    @property
    def about_complaint(self) -> Complaint | None:
        """The complaint the patient came about, if the catalogue knows it."""
        return complaint_catalogue().get(self.complaint.data or "")

    def validate_clinic_id(self, field) -> None:
        """A clinic the request is about must be one patients can find."""
        if field.data is None or field.errors:  # out of range: never ask the database
            return
        self.clinic = get_listed_clinic(db.session, field.data)
        if self.clinic is None:
            raise ValidationError(UNKNOWN_CLINIC_MESSAGE)

    def validate(self, extra_validators=None) -> bool:
        """Check the fields, then that there is at least one way to reach the patient."""
        valid = super().validate(extra_validators)
        if (
            not self.email.data
            and not self.phone.data
            and not self.email.errors
            and not self.phone.errors
        ):
            self.phone.errors = [
                *self.phone.errors,
                _l("Give a phone number or an email address, so we can answer."),
            ]
            return False
        return valid

    @property
    def is_bot(self) -> bool:
        """Whether the honeypot was filled in."""
        return bool((self.website.data or "").strip())

    def details(self) -> ContactDetails:
        """The validated request."""
        return ContactDetails(
            name=self.name.data,
            email=self.email.data or None,
            phone=self.phone.data or None,
            postcode=self.postcode.data,
            profession=Profession(self.profession.data) if self.profession.data else None,
            message=self.message.data,
            duration=self.duration.data or "",
            contact_time=self.contact_time.data or "any",
            clinic_id=self.clinic.id if self.clinic else None,
            share_message_with_clinic=bool(self.share_message_with_clinic.data),
            complaint=self.complaint.data if self.about_complaint else None,
        )
