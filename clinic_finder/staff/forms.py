"""Staff forms: sign-in, clinics, clinicians and their practices, staff accounts, imports.
CSRF on all of them."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from geopy.distance import great_circle
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    FloatField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from ..extensions import db
from ..i18n import PROFESSION_CHOICES, PROFESSION_NAMES, STATUS_NAMES, current_language
from ..models import LocationSource, PostalCode, Profession, RequestStatus, StaffUser
from ..postcodes import po_box_postcode_message, postal_for_po_boxes_only
from ..validation import (
    MAX_KM_FROM_POSTCODE,
    check_in_norway,
    clean_booking_url,
    clean_email,
    clean_hpr_number,
    clean_list,
    clean_org_number,
    clean_phone,
    clean_website,
    public_agreement_errors,
    split_list,
)
from ..web.catalogues import service_vocabulary
from ..web.forms import cleaned_by, name_text, stripped

PRECISION_NAMES = {
    LocationSource.GIVEN: _l("Given"),
    LocationSource.GEOCODED: _l("Geocoded"),
    LocationSource.POSTCODE: _l("Postcode"),
}


# Staff may separate a list with semicolons or commas; the import takes semicolons only.
LIST_SEPARATORS = ";,"


# Yes / no / not known, for what a clinic or a clinician has told us (or not).
YES_NO_UNKNOWN = [
    SelectChoice("", _l("Unknown")),
    SelectChoice("yes", _l("Yes")),
    SelectChoice("no", _l("No")),
]
_ANSWERS = {"yes": True, "no": False}


def answer_of(field) -> bool | None:
    """A yes / no / unknown field's value as the model keeps it."""
    return _ANSWERS.get(field.data or "")


def answer_choice(value: bool | None) -> str:
    """A model's True / False / None as a yes / no / unknown field's choice."""
    return {True: "yes", False: "no"}.get(value, "")


def checked_list(form, field) -> None:
    """Refuse a list with more, or longer, items than the directory keeps (validation.py)."""
    try:
        clean_list(field.data or "", LIST_SEPARATORS)
    except ValueError as error:
        raise ValidationError(str(error)) from error


class SignInForm(FlaskForm):
    """Email and password."""

    email = EmailField(
        _l("Email"), filters=[stripped], validators=[DataRequired(), Length(max=254)]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)])


class ClinicForm(FlaskForm):
    """A clinic's details as staff edit them."""

    name = StringField(
        _l("Name"), filters=[name_text], validators=[DataRequired(), Length(max=200)]
    )
    org_number = StringField(
        _l("Organisation number"),
        filters=[stripped],
        validators=[Optional(), cleaned_by(clean_org_number)],
    )
    address = StringField(_l("Street address"), filters=[name_text], validators=[Length(max=200)])
    postcode = StringField(_l("Postcode"), filters=[stripped], validators=[DataRequired()])
    city = StringField(_l("City"), filters=[name_text], validators=[Length(max=100)])
    phone = StringField(
        _l("Phone"), filters=[stripped], validators=[Optional(), cleaned_by(clean_phone)]
    )
    email = StringField(
        _l("Email"),
        filters=[stripped],
        validators=[Optional(), Length(max=254), cleaned_by(clean_email)],
    )
    website = StringField(
        _l("Website"),
        filters=[stripped],
        validators=[Optional(), Length(max=500), cleaned_by(clean_website)],
    )
    booking_url = StringField(
        _l("Online booking"),
        filters=[stripped],
        validators=[Optional(), Length(max=500), cleaned_by(clean_booking_url)],
    )
    step_free_access = SelectField(_l("Step-free entrance"), choices=YES_NO_UNKNOWN, default="")
    accessible_toilet = SelectField(_l("Accessible toilet"), choices=YES_NO_UNKNOWN, default="")
    parking = SelectField(_l("Parking"), choices=YES_NO_UNKNOWN, default="")
    closed_until = DateField(_l("Temporarily closed until (reopens on)"), validators=[Optional()])
    latitude = FloatField(_l("Latitude"), validators=[Optional()])
    longitude = FloatField(_l("Longitude"), validators=[Optional()])

    postal_code: PostalCode | None = None

    def validate_postcode(self, field) -> None:
        """Accept only postcodes in the register."""
        self.postal_code = db.session.get(PostalCode, field.data or "")
        if self.postal_code is None:
            raise ValidationError(
                _(
                    "%(postcode)s is not in the Norwegian postcode register.",
                    postcode=repr(field.data),
                )
            )
        if postal_for_po_boxes_only(self.postal_code):
            raise ValidationError(po_box_postcode_message(self.postal_code.postcode) + ".")

    def validate(self, extra_validators=None) -> bool:
        """Check the fields, then that coordinates come in pairs, in Norway, near the postcode."""
        valid = super().validate(extra_validators)
        latitude, longitude = self.latitude.data, self.longitude.data
        if latitude is None and longitude is None or self.latitude.errors or self.longitude.errors:
            return valid
        try:
            if latitude is None or longitude is None:
                raise ValueError(_("Give both latitude and longitude, or neither."))
            check_in_norway(latitude, longitude)
            if self.postal_code is not None:
                km = great_circle(
                    (latitude, longitude), (self.postal_code.latitude, self.postal_code.longitude)
                ).km
                if km > MAX_KM_FROM_POSTCODE:
                    raise ValueError(
                        _(
                            "These coordinates are %(km)s km from postcode %(postcode)s; "
                            "check them.",
                            km=f"{km:.0f}",
                            postcode=self.postal_code.postcode,
                        )
                    )
        except ValueError as error:
            field = self.latitude if latitude is None else self.longitude
            field.errors = [*field.errors, str(error)]
            return False
        return valid

    def fill_from(self, clinic) -> None:
        """Show a clinic's yes / no / unknown facts (on a GET: a POST keeps what was typed)."""
        for name in ("step_free_access", "accessible_toilet", "parking"):
            self[name].data = answer_choice(getattr(clinic, name))

    def values(self) -> dict:
        """The model values the form describes."""
        return {
            "name": self.name.data,
            "org_number": self.org_number.data or None,
            "address": self.address.data or "",
            "postcode": self.postcode.data,
            "city": self.city.data or (self.postal_code.place if self.postal_code else ""),
            "phone": self.phone.data or None,
            "email": self.email.data or None,
            "website": self.website.data or None,
            "booking_url": self.booking_url.data or None,
            "step_free_access": answer_of(self.step_free_access),
            "accessible_toilet": answer_of(self.accessible_toilet),
            "parking": answer_of(self.parking),
            "closed_until": self.closed_until.data,
            "latitude": self.latitude.data,
            "longitude": self.longitude.data,
        }


def _languages_field() -> StringField:
    return StringField(
        _l("Languages"),
        filters=[stripped],
        validators=[checked_list],
        description=_l("Separated by ; or commas, e.g. nb; en"),
    )


class ClinicianForm(FlaskForm):
    """A clinician as a person (wherever they work): name and languages."""

    name = StringField(
        _l("Name"), filters=[name_text], validators=[DataRequired(), Length(max=200)]
    )
    languages = _languages_field()

    def values(self) -> dict:
        """The model values the form describes."""
        return {
            "name": self.name.data,
            "languages": clean_list(self.languages.data or "", LIST_SEPARATORS),
        }


def known_services(form, field) -> None:
    """Refuse services the vocabulary does not know, naming each (services.py)."""
    if field.errors:  # a list over the caps says so first
        return
    unknown = service_vocabulary().resolve(split_list(field.data or "", LIST_SEPARATORS))[1]
    if unknown:
        raise ValidationError(
            _(
                "Not in the list of services we know: %(services)s. Choose from the list "
                "below (Norwegian or English names both work).",
                services=", ".join(repr(text) for text in unknown),
            )
        )


def service_names_text(keys: list[str]) -> str:
    """A practice's services as the form shows them: names in the staff member's language."""
    return "; ".join(service_vocabulary().names(keys, current_language()))


class PracticeForm(FlaskForm):
    """How a clinician works at one clinic, as staff edit it."""

    profession = SelectField(
        _l("Profession"),
        choices=[SelectChoice(p.value, PROFESSION_CHOICES[p]) for p in Profession],
        validators=[InputRequired()],
    )
    services = StringField(
        _l("Services"),
        filters=[stripped],
        validators=[checked_list, known_services],
        description=_l(
            "Separated by ; or commas, in Norwegian or English, e.g. tørrnåling; exercise therapy"
        ),
    )
    public_agreement = BooleanField(_l("Public agreement (driftsavtale) for work here"))
    agreement_municipality = StringField(
        _l("Municipality of the agreement"),
        filters=[name_text],
        validators=[Length(max=100)],
    )
    accepts_new_patients = SelectField(_l("Takes new patients"), choices=YES_NO_UNKNOWN, default="")
    accepts_new_patients_confirmed = BooleanField(
        _l("I confirmed this with the clinician or the clinic today"), default=False
    )

    def validate(self, extra_validators=None) -> bool:
        """Check the fields, then Norway's rules for a public agreement (validation.py)."""
        valid = super().validate(extra_validators)
        if self.profession.errors:
            return valid
        errors = public_agreement_errors(
            Profession(self.profession.data),
            bool(self.public_agreement.data),
            self.agreement_municipality.data or None,
        )
        for name, message in errors.items():
            self[name].errors = [*self[name].errors, message]
        return valid and not errors

    @staticmethod
    def known_service_names() -> list[str]:
        """Every service the form takes, named in the staff member's language."""
        return service_vocabulary().sorted_names(current_language())

    def fill_from(self, practice) -> None:
        """Show a practice's values (on a GET: a POST keeps what was typed)."""
        self.profession.data = practice.profession.value
        self.services.data = service_names_text(practice.services)
        self.accepts_new_patients.data = answer_choice(practice.accepts_new_patients)

    def values(self) -> dict:
        """The model values the form describes."""
        return {
            "profession": Profession(self.profession.data),
            "services": service_vocabulary().resolve(
                clean_list(self.services.data or "", LIST_SEPARATORS)
            )[0],
            "public_agreement": bool(self.public_agreement.data),
            "agreement_municipality": self.agreement_municipality.data or None,
            "accepts_new_patients": answer_of(self.accepts_new_patients),
            "accepts_new_patients_confirmed": bool(self.accepts_new_patients_confirmed.data),
        }


class EditPracticeForm(PracticeForm):
    """A practice as it is changed: also whether the clinician still works there."""

    active = BooleanField(_l("Works here now"), default=True)

    def values(self) -> dict:
        """The model values the form describes."""
        return {**super().values(), "active": bool(self.active.data)}


class NewPracticeForm(PracticeForm):
    """A clinician starting at a clinic: found by HPR number, or new to the directory."""

    hpr_number = StringField(
        _l("HPR number"),
        filters=[stripped],
        validators=[DataRequired(), cleaned_by(clean_hpr_number)],
    )
    # Only for someone new: a person already in the directory keeps their own.
    name = StringField(_l("Name"), filters=[name_text], validators=[Length(max=200)])
    languages = _languages_field()

    def person(self) -> dict:
        """Who the clinician is: HPR number, and name and languages if they are new."""
        return {
            "hpr_number": self.hpr_number.data,
            "name": self.name.data or "",
            "languages": clean_list(self.languages.data or "", LIST_SEPARATORS),
        }


# A filter value can only be off the list when someone edited the URL.
NOT_A_FILTER_CHOICE = _l("Not one of these choices; the list uses the default instead.")


def filter_select(label, choices: list[SelectChoice], default: str = "") -> SelectField:
    """A staff list's filter: one of ``choices``, any other value refused (FilterForm puts
    it back to ``default`` and says so)."""
    return SelectField(
        label, choices=choices, default=default, invalid_choice_message=NOT_A_FILTER_CHOICE
    )


class FilterForm(FlaskForm):
    """Filters for a staff list (GET, so no CSRF); a value not offered falls back to the default."""

    class Meta:
        csrf = False

    def validate(self, extra_validators=None) -> bool:
        """Check the filters; put each refused one back to its default, keeping its error."""
        valid = super().validate(extra_validators)
        for field in self:
            if field.errors:
                field.data = field.default
        return valid


class ClinicSearchForm(FilterForm):
    """Search and filters for the staff clinic list."""

    q = StringField(_l("Search name, postcode or city"), filters=[stripped])
    profession = filter_select(
        _l("Profession"),
        [SelectChoice("", _l("Any"))]
        + [SelectChoice(p.value, PROFESSION_NAMES[p]) for p in Profession],
    )
    status = filter_select(
        _l("Status"),
        [
            SelectChoice("active", _l("Active")),
            SelectChoice("inactive", _l("Deactivated")),
            SelectChoice("all", _l("All")),
        ],
        default="active",
    )
    precision = filter_select(
        _l("Location precision"),
        [SelectChoice("", _l("Any"))]
        + [SelectChoice(s.value, PRECISION_NAMES[s]) for s in LocationSource],
    )


class StaffUserForm(FlaskForm):
    """A new staff account, created by an admin."""

    email = EmailField(
        _l("Email"),
        filters=[stripped],
        validators=[DataRequired(), Length(max=254), cleaned_by(clean_email)],
    )
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(),
            Length(min=12, max=128, message=_l("Use at least 12 and at most 128 characters.")),
        ],
        description=_l(
            "At least 12 characters. Tell it to them another way than the set-up link shown "
            "next (for example by phone)."
        ),
    )
    is_admin = BooleanField(_l("Admin (manages staff accounts and reads the audit log)"))


class ImportUploadForm(FlaskForm):
    """A clinic list to preview."""

    file = FileField(_l("Clinic list (CSV)"), validators=[FileRequired(_l("Choose a CSV file."))])


class ConfirmForm(FlaskForm):
    """An empty form: a POST button with its CSRF token."""


class RequestFilterForm(FilterForm):
    """Filters and order for the staff inbox; every value is in the URL, none personal."""

    status = filter_select(
        _l("Status"),
        [SelectChoice("open", _l("New and in progress")), SelectChoice("", _l("All"))]
        + [SelectChoice(s.value, STATUS_NAMES[s]) for s in RequestStatus],
        default="open",
    )
    profession = filter_select(
        _l("Profession wanted"),
        [SelectChoice("", _l("Any")), SelectChoice("none", _l("Not sure"))]
        + [SelectChoice(p.value, PROFESSION_NAMES[p]) for p in Profession],
    )
    language = filter_select(
        _l("Language"),
        [
            SelectChoice("", _l("Any")),
            SelectChoice("nb", _l("Norwegian")),
            SelectChoice("en", _l("English")),
            SelectChoice("unknown", _l("Not known")),
        ],
    )
    clinic = filter_select(
        _l("About clinic"),
        [
            SelectChoice("", _l("Any")),
            SelectChoice("yes", _l("About a clinic")),
            SelectChoice("no", _l("No clinic named")),
        ],
    )
    # The staff members are added by with_staff().
    owner = filter_select(
        _l("Owner"),
        [
            SelectChoice("", _l("Anyone or nobody")),
            SelectChoice("me", _l("Me")),
            SelectChoice("none", _l("Nobody (unassigned)")),
        ],
    )
    overdue = BooleanField(_l("Only overdue"))
    sort = filter_select(
        _l("Order"),
        [
            SelectChoice("status", _l("By status: new first, oldest at the top")),
            SelectChoice("oldest", _l("Oldest first")),
            SelectChoice("newest", _l("Newest first")),
        ],
        default="status",
    )

    def with_staff(self, staff: list[StaffUser]) -> RequestFilterForm:
        """Offer each staff member as an owner to filter by."""
        self.owner.choices = list(self.owner.choices) + [
            SelectChoice(
                str(user.id),
                user.email if user.active else _("%(email)s (deactivated)", email=user.email),
            )
            for user in staff
        ]
        return self

    def query_args(self) -> dict[str, str]:
        """The filters that differ from the defaults, for links that keep them."""
        args = {}
        for field in self:
            if field.type == "BooleanField":
                if field.data:
                    args[field.name] = "y"
            elif field.data != field.default:
                args[field.name] = field.data or ""
        return args


class RequestOwnerForm(FlaskForm):
    """Take a request, give it to someone, or let it go (buttons name the action)."""

    action = SelectField(
        choices=[SelectChoice("claim"), SelectChoice("assign"), SelectChoice("release")],
        validators=[InputRequired()],
    )
    # Who the staff member saw as the owner: taking it over from someone who took it in the
    # meantime is refused, and said.
    seen_owner = IntegerField(validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])
    # The staff member to assign to (the action "assign").
    owner = IntegerField(validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])
    # Where to go back to: the inbox (with its filters) or the request's page.
    back = StringField(validators=[Optional(), Length(max=500)])


class RequestStatusForm(FlaskForm):
    """Move a request on, with an optional note."""

    status = SelectField(
        _l("Status"), choices=[SelectChoice(s.value, STATUS_NAMES[s]) for s in RequestStatus]
    )
    note = TextAreaField(_l("Note (optional)"), filters=[stripped], validators=[Length(max=5000)])


class RequestNoteForm(FlaskForm):
    """A note on a request (e.g. "called, no answer")."""

    text = TextAreaField(
        _l("Add a note"), filters=[stripped], validators=[DataRequired(), Length(max=5000)]
    )


class ReferralForm(FlaskForm):
    """Refer a request's patient to one clinic."""

    clinic_id = IntegerField(
        _l("Clinic"), validators=[DataRequired(), NumberRange(min=1, max=2**31 - 1)]
    )
    tell_patient = BooleanField(_l("Also email the patient the clinic's name"), default=True)
    again = BooleanField(_l("Yes, send this clinic the referral again"))


class PersonLookupForm(FlaskForm):
    """Find everything held about one person, by email or phone."""

    email = EmailField(
        _l("Email"), filters=[stripped], validators=[Optional(), cleaned_by(clean_email)]
    )
    phone = StringField(
        _l("Phone"), filters=[stripped], validators=[Optional(), cleaned_by(clean_phone)]
    )

    def validate(self, extra_validators=None) -> bool:
        """Require an email or a phone number."""
        valid = super().validate(extra_validators)
        if valid and not self.email.data and not self.phone.data:
            self.email.errors = [_("Give an email address or a phone number.")]
            return False
        return valid


class SecondFactorForm(FlaskForm):
    """The six-digit code from the authenticator app, or a recovery code."""

    code = StringField(
        _l("Code from your authenticator app"),
        filters=[stripped],
        validators=[DataRequired(_l("Enter the code.")), Length(max=20)],
        description=_l("Six digits. Lost your phone? Enter one of your recovery codes instead."),
    )


class SetPasswordForm(FlaskForm):
    """A new password, twice (with a one-time link from an admin)."""

    new_password = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(max=128)],
        description=_l("At least 12 characters; not a common password."),
    )
    repeat_password = PasswordField(_l("New password again"), validators=[DataRequired()])

    def validate_repeat_password(self, field) -> None:
        """Both new passwords must match."""
        if field.data != self.new_password.data:
            raise ValidationError(_l("The two new passwords differ."))


class ChangePasswordForm(SetPasswordForm):
    """A staff member changes their own password."""

    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
