"""Field rules shared by the importer and the staff forms, so a value means the same everywhere.

Each ``clean_*`` function returns the normalised value or raises ``ValueError`` with a
message a person can act on, in the current page's language (the site's outside a request).
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from flask_babel import gettext as _
from stdnum.no import orgnr

from .models import Profession

# [0-9], not \d: "١٢٣" is a \d too, and would let one HPR number be written two ways.
HPR_PATTERN = re.compile(r"^[0-9]{1,9}$")
WEBSITE_PATTERN = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
BOOKING_URL_PATTERN = re.compile(r"^https://[^\s/$.?#][^\s]*$", re.IGNORECASE)

# Mainland Norway and Svalbard / Jan Mayen, generously.
NORWAY_LATITUDE = (57.0, 81.5)
NORWAY_LONGITUDE = (-9.5, 35.0)
MAX_KM_FROM_POSTCODE = 30.0
# A clinician's languages and services: enough for any real practice (the demo directory
# has at most 3 of each, none over 30 characters), and small enough that no clinic can
# swell every search answer that lists it.
MAX_LIST_ITEMS = 30
MAX_LIST_ITEM_LENGTH = 80


def clean_org_number(value: str) -> str:
    """Return a valid Norwegian organisation number as nine digits."""
    compact = orgnr.compact(value)
    if not orgnr.is_valid(compact):
        raise ValueError(
            _("%(value)s is not a valid Norwegian organisation number", value=repr(value))
        )
    return compact


@functools.lru_cache(maxsize=4096)
def _international_phone(value: str) -> str | None:
    # Remembered: phonenumbers takes ~0.2 ms a number, and an import repeats a clinic's
    # number on every clinician's row. None when it is no phone number, "" when invalid.
    try:
        number = phonenumbers.parse(value, "NO")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def clean_phone(value: str) -> str:
    """Return the number in international format, reading it as Norwegian unless it says."""
    international = _international_phone(value)
    if international is None:
        raise ValueError(_("%(value)s is not a phone number", value=repr(value)))
    if not international:
        raise ValueError(_("%(value)s is not a valid phone number", value=repr(value)))
    return international


@functools.lru_cache(maxsize=4096)
def _validated_email(value: str) -> ValidatedEmail:
    # Remembered for the same reason as phone numbers; a refusal is not (it raises).
    return validate_email(value, check_deliverability=False)


def clean_email(value: str) -> str:
    """Return the address as we store and send it, or refuse one we could not send to.

    The one rule for every address: the contact form and API, the staff clinic form, the
    importer and the outbox (``mail.checked_address``). Syntax only, never DNS. A domain
    in Unicode (``blåbær.no``) is kept in its ASCII form (``xn--blbr-roah.no``), which every
    mail server takes; letters such as ø before the @ would need SMTPUTF8 from every
    server on the way, so such an address is refused with a message saying why.
    """
    try:
        checked = _validated_email(value)
    except EmailNotValidError as error:
        # The library explains in English; a translation may leave %(reason)s out.
        raise ValueError(
            _(
                "%(value)s is not a valid email address: %(reason)s",
                value=repr(value),
                reason=str(error),
            )
        ) from error
    if checked.ascii_email is None:  # only sendable with SMTPUTF8
        raise ValueError(
            _(
                "We cannot send email to %(value)s: the part before the @ may not contain "
                "letters such as æ, ø, å or é. Please give another address.",
                value=repr(value),
            )
        )
    return checked.ascii_email


def email_spellings(value: str) -> set[str]:
    """The ways one address may be stored, lower-cased: its domain in ASCII or in Unicode.

    Addresses were kept with a Unicode domain as typed before :func:`clean_email` turned
    them into ASCII, so a search for a person must find both.
    """
    spellings = {value.strip().lower()}
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return spellings
    spellings.add(checked.normalized.lower())
    if checked.ascii_email:
        spellings.add(checked.ascii_email.lower())
    return spellings


def clean_website(value: str) -> str:
    """Return an http(s) address; anything else (javascript:, ftp:, …) is refused."""
    if not WEBSITE_PATTERN.match(value):
        raise ValueError(_("%(value)s must be an http:// or https:// address", value=repr(value)))
    return value


def clean_booking_url(value: str) -> str:
    """Return an https address for booking; plain http (or anything else) is refused.

    Patients type their name and health details into a booking page, so only an
    encrypted one is linked to.
    """
    if not BOOKING_URL_PATTERN.match(value):
        raise ValueError(
            _(
                "%(value)s must be an https:// address: a booking page asks for personal "
                "details, so only a secure one is linked to",
                value=repr(value),
            )
        )
    return value


def clean_hpr_number(value: str) -> str:
    """Return an HPR number as digits only (spaces removed)."""
    compact = value.replace(" ", "")
    if not HPR_PATTERN.match(compact):
        raise ValueError(_("HPR number %(value)s must be 1 to 9 digits", value=repr(value)))
    return compact


def public_agreement_errors(
    profession: Profession, public_agreement: bool, municipality: str | None
) -> dict[str, str]:
    """What breaks Norway's rules for one practice's public agreement, by field name.

    Chiropractors never hold a public agreement (driftsavtale): their patients pay in
    full. The municipality is the agreement's, so it is given with one only. Forms and
    the importer say so in words before the database's CHECK constraints refuse the row.
    """
    errors: dict[str, str] = {}
    if public_agreement and profession is Profession.CHIROPRACTOR:
        errors["public_agreement"] = _("Chiropractors do not hold a public agreement.")
    if municipality and not public_agreement:
        errors["agreement_municipality"] = _("Give a municipality only with a public agreement.")
    return errors


def check_in_norway(latitude: float, longitude: float) -> None:
    """Refuse coordinates outside Norway (Svalbard and Jan Mayen included)."""
    if not (
        NORWAY_LATITUDE[0] <= latitude <= NORWAY_LATITUDE[1]
        and NORWAY_LONGITUDE[0] <= longitude <= NORWAY_LONGITUDE[1]
    ):
        raise ValueError(
            _(
                "coordinates %(latitude)s, %(longitude)s are outside Norway",
                latitude=latitude,
                longitude=longitude,
            )
        )


def split_list(value: str, separators: str = ";") -> list[str]:
    """Split a list on any of the separators, dropping blanks and duplicates, keeping order."""
    items: list[str] = []
    for item in re.split("[" + re.escape(separators) + "]", value):
        item = " ".join(item.split())
        if item and item not in items:
            items.append(item)
    return items


def clean_list(value: str, separators: str = ";") -> list[str]:
    """Split a list (see :func:`split_list`) and refuse one with too many or too long items."""
    items = split_list(value, separators)
    if len(items) > MAX_LIST_ITEMS:
        raise ValueError(
            _(
                "at most %(limit)s items, not %(count)s",
                limit=MAX_LIST_ITEMS,
                count=len(items),
            )
        )
    too_long = next((item for item in items if len(item) > MAX_LIST_ITEM_LENGTH), None)
    if too_long is not None:
        raise ValueError(
            _(
                "each item at most %(limit)s characters; %(item)s has %(length)s",
                limit=MAX_LIST_ITEM_LENGTH,
                item=repr(too_long[:20] + "…"),
                length=len(too_long),
            )
        )
    return items


def capped_list(items: list[str] | None) -> list[str]:
    """At most MAX_LIST_ITEMS items of at most MAX_LIST_ITEM_LENGTH characters, for output.

    Lists stored before the caps existed may be longer; answers never carry more.
    """
    return [item[:MAX_LIST_ITEM_LENGTH] for item in (items or [])[:MAX_LIST_ITEMS]]
