"""Staff forms: sign-in, clinics, clinicians, staff accounts, imports. CSRF on all of them."""

from __future__ import annotations

from collections.abc import Callable

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
from ..models import LocationSource, PostalCode, Profession, RequestStatus
from ..validation import (
    MAX_KM_FROM_POSTCODE,
    check_in_norway,
    clean_email,
    clean_hpr_number,
    clean_org_number,
    clean_phone,
    clean_website,
    split_list,
)


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def cleaned_by(clean: Callable[[str], str]):
    """Make a WTForms validator from a ``clean_*`` rule, storing the normalised value."""

    def validator(form, field) -> None:
        if not field.data:
            return
        try:
            field.data = clean(field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from error

    return validator


class SignInForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", filters=[_strip], validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])


class ClinicForm(FlaskForm):
    """A clinic's details as staff edit them."""

    name = StringField("Name", filters=[_strip], validators=[DataRequired(), Length(max=200)])
    org_number = StringField(
        "Organisation number",
        filters=[_strip],
        validators=[Optional(), cleaned_by(clean_org_number)],
    )
    address = StringField("Street address", filters=[_strip], validators=[Length(max=200)])
    postcode = StringField("Postcode", filters=[_strip], validators=[DataRequired()])
    city = StringField("City", filters=[_strip], validators=[Length(max=100)])
    phone = StringField("Phone", filters=[_strip], validators=[Optional(), cleaned_by(clean_phone)])
    email = StringField(
        "Email", filters=[_strip], validators=[Optional(), Length(max=254), cleaned_by(clean_email)]
    )
    website = StringField(
        "Website",
        filters=[_strip],
        validators=[Optional(), Length(max=500), cleaned_by(clean_website)],
    )
    helfo_agreement = BooleanField("Public agreement (driftsavtale, HELFO)")
    accepts_new_patients = SelectField(
        "Takes new patients",
        choices=[
            SelectChoice("", "Unknown"),
            SelectChoice("yes", "Yes"),
            SelectChoice("no", "No"),
        ],
        default="",
    )
    accepts_new_patients_confirmed = BooleanField(
        "I confirmed this with the clinic today", default=False
    )
    closed_until = DateField("Temporarily closed until (reopens on)", validators=[Optional()])
    latitude = FloatField("Latitude", validators=[Optional()])
    longitude = FloatField("Longitude", validators=[Optional()])

    postal_code: PostalCode | None = None

    def validate_postcode(self, field) -> None:
        """Accept only postcodes in the register."""
        self.postal_code = db.session.get(PostalCode, field.data or "")
        if self.postal_code is None:
            raise ValidationError(f"{field.data!r} is not in the Norwegian postcode register.")

    def validate(self, extra_validators=None) -> bool:
        """Check the fields, then that coordinates come in pairs, in Norway, near the postcode."""
        valid = super().validate(extra_validators)
        latitude, longitude = self.latitude.data, self.longitude.data
        if latitude is None and longitude is None or self.latitude.errors or self.longitude.errors:
            return valid
        try:
            if latitude is None or longitude is None:
                raise ValueError("Give both latitude and longitude, or neither.")
            check_in_norway(latitude, longitude)
            if self.postal_code is not None:
                km = great_circle(
                    (latitude, longitude), (self.postal_code.latitude, self.postal_code.longitude)
                ).km
                if km > MAX_KM_FROM_POSTCODE:
                    raise ValueError(
                        f"These coordinates are {km:.0f} km from postcode "
                        f"{self.postal_code.postcode}; check them."
                    )
        except ValueError as error:
            field = self.latitude if latitude is None else self.longitude
            field.errors = [*field.errors, str(error)]
            return False
        return valid

    def values(self) -> dict:
        """The model values the form describes."""
        accepts = {"yes": True, "no": False}.get(self.accepts_new_patients.data or "")
        return {
            "name": self.name.data,
            "org_number": self.org_number.data or None,
            "address": self.address.data or "",
            "postcode": self.postcode.data,
            "city": self.city.data or (self.postal_code.place if self.postal_code else ""),
            "phone": self.phone.data or None,
            "email": self.email.data or None,
            "website": self.website.data or None,
            "helfo_agreement": bool(self.helfo_agreement.data),
            "accepts_new_patients": accepts,
            "accepts_new_patients_confirmed": bool(self.accepts_new_patients_confirmed.data),
            "closed_until": self.closed_until.data,
            "latitude": self.latitude.data,
            "longitude": self.longitude.data,
        }


class ClinicianForm(FlaskForm):
    """A clinician's details as staff edit them."""

    name = StringField("Name", filters=[_strip], validators=[DataRequired(), Length(max=200)])
    profession = SelectField(
        "Profession",
        choices=[SelectChoice(p.value, f"{p.label} ({p.norwegian})") for p in Profession],
        validators=[InputRequired()],
    )
    hpr_number = StringField(
        "HPR number", filters=[_strip], validators=[DataRequired(), cleaned_by(clean_hpr_number)]
    )
    languages = StringField(
        "Languages", filters=[_strip], description="Separated by ; or commas, e.g. nb; en"
    )
    services = StringField(
        "Services",
        filters=[_strip],
        description="Separated by ; or commas, e.g. dry needling; exercise therapy",
    )

    def values(self) -> dict:
        """The model values the form describes."""
        return {
            "name": self.name.data,
            "profession": Profession(self.profession.data),
            "hpr_number": self.hpr_number.data,
            "languages": split_list(self.languages.data or "", ";,"),
            "services": split_list(self.services.data or "", ";,"),
        }


class ClinicSearchForm(FlaskForm):
    """Search and filters for the staff clinic list (GET, so no CSRF)."""

    class Meta:
        csrf = False

    q = StringField("Search name, postcode or city", filters=[_strip])
    profession = SelectField(
        "Profession",
        choices=[SelectChoice("", "Any")] + [SelectChoice(p.value, p.label) for p in Profession],
        default="",
    )
    status = SelectField(
        "Status",
        choices=[
            SelectChoice("active", "Active"),
            SelectChoice("inactive", "Deactivated"),
            SelectChoice("all", "All"),
        ],
        default="active",
    )
    precision = SelectField(
        "Location precision",
        choices=[SelectChoice("", "Any")]
        + [SelectChoice(s.value, s.value.capitalize()) for s in LocationSource],
        default="",
    )


class StaffUserForm(FlaskForm):
    """A new staff account, created by an admin."""

    email = EmailField(
        "Email",
        filters=[_strip],
        validators=[DataRequired(), Length(max=254), cleaned_by(clean_email)],
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(),
            Length(min=12, max=128, message="Use at least 12 and at most 128 characters."),
        ],
        description="At least 12 characters. Give it to them by a safe channel.",
    )
    is_admin = BooleanField("Admin (manages staff accounts and reads the audit log)")


class ImportUploadForm(FlaskForm):
    """A clinic list to preview."""

    file = FileField("Clinic list (CSV)", validators=[FileRequired("Choose a CSV file.")])


class ConfirmForm(FlaskForm):
    """An empty form: a POST button with its CSRF token."""


class RequestFilterForm(FlaskForm):
    """Filters for the staff inbox (GET, so no CSRF)."""

    class Meta:
        csrf = False

    status = SelectField(
        "Status",
        choices=[SelectChoice("open", "New and in progress"), SelectChoice("", "All")]
        + [SelectChoice(s.value, s.label) for s in RequestStatus],
        default="open",
    )
    profession = SelectField(
        "Profession wanted",
        choices=[SelectChoice("", "Any"), SelectChoice("none", "Not sure")]
        + [SelectChoice(p.value, p.label) for p in Profession],
        default="",
    )


class RequestStatusForm(FlaskForm):
    """Move a request on, with an optional note."""

    status = SelectField("Status", choices=[SelectChoice(s.value, s.label) for s in RequestStatus])
    note = TextAreaField("Note (optional)", filters=[_strip], validators=[Length(max=5000)])


class RequestNoteForm(FlaskForm):
    """A note on a request (e.g. "called, no answer")."""

    text = TextAreaField(
        "Add a note", filters=[_strip], validators=[DataRequired(), Length(max=5000)]
    )


class ReferralForm(FlaskForm):
    """Refer a request's patient to one clinic."""

    clinic_id = IntegerField(
        "Clinic", validators=[DataRequired(), NumberRange(min=1, max=2**31 - 1)]
    )
    tell_patient = BooleanField("Also email the patient the clinic's name", default=True)


class PersonLookupForm(FlaskForm):
    """Find everything held about one person, by email or phone."""

    email = EmailField("Email", filters=[_strip], validators=[Optional(), cleaned_by(clean_email)])
    phone = StringField("Phone", filters=[_strip], validators=[Optional(), cleaned_by(clean_phone)])

    def validate(self, extra_validators=None) -> bool:
        """Require an email or a phone number."""
        valid = super().validate(extra_validators)
        if valid and not self.email.data and not self.phone.data:
            self.email.errors = ["Give an email address or a phone number."]
            return False
        return valid


class SecondFactorForm(FlaskForm):
    """The six-digit code from the authenticator app, or a recovery code."""

    code = StringField(
        "Code from your authenticator app",
        filters=[_strip],
        validators=[DataRequired("Enter the code."), Length(max=20)],
        description="Six digits. Lost your phone? Enter one of your recovery codes instead.",
    )


class ChangePasswordForm(FlaskForm):
    """A staff member changes their own password."""

    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(max=128)],
        description="At least 12 characters; not a common password.",
    )
    repeat_password = PasswordField("New password again", validators=[DataRequired()])

    def validate_repeat_password(self, field) -> None:
        """Both new passwords must match."""
        if field.data != self.new_password.data:
            raise ValidationError("The two new passwords differ.")
