"""Field rules shared by the importer and the staff forms, so a value means the same everywhere.

Each ``clean_*`` function returns the normalised value or raises ``ValueError`` with a
message a person can act on.
"""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.no import orgnr

# [0-9], not \d: "١٢٣" is a \d too, and would let one HPR number be written two ways.
HPR_PATTERN = re.compile(r"^[0-9]{1,9}$")
WEBSITE_PATTERN = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)

# Mainland Norway and Svalbard / Jan Mayen, generously.
NORWAY_LATITUDE = (57.0, 81.5)
NORWAY_LONGITUDE = (-9.5, 35.0)
MAX_KM_FROM_POSTCODE = 30.0


def clean_org_number(value: str) -> str:
    """Return a valid Norwegian organisation number as nine digits."""
    compact = orgnr.compact(value)
    if not orgnr.is_valid(compact):
        raise ValueError(f"{value!r} is not a valid Norwegian organisation number")
    return compact


def clean_phone(value: str) -> str:
    """Return the number in international format, reading it as Norwegian unless it says."""
    try:
        number = phonenumbers.parse(value, "NO")
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"{value!r} is not a phone number") from error
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def clean_email(value: str) -> str:
    """Return the normalised address; checks syntax only, never DNS."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(f"{value!r} is not a valid email address: {error}") from error


def clean_website(value: str) -> str:
    """Return an http(s) address; anything else (javascript:, ftp:, …) is refused."""
    if not WEBSITE_PATTERN.match(value):
        raise ValueError(f"{value!r} must be an http:// or https:// address")
    return value


def clean_hpr_number(value: str) -> str:
    """Return an HPR number as digits only (spaces removed)."""
    compact = value.replace(" ", "")
    if not HPR_PATTERN.match(compact):
        raise ValueError(f"HPR number {value!r} must be 1 to 9 digits")
    return compact


def check_in_norway(latitude: float, longitude: float) -> None:
    """Refuse coordinates outside Norway (Svalbard and Jan Mayen included)."""
    if not (
        NORWAY_LATITUDE[0] <= latitude <= NORWAY_LATITUDE[1]
        and NORWAY_LONGITUDE[0] <= longitude <= NORWAY_LONGITUDE[1]
    ):
        raise ValueError(f"coordinates {latitude}, {longitude} are outside Norway")


def split_list(value: str, separators: str = ";") -> list[str]:
    """Split a list on any of the separators, dropping blanks and duplicates, keeping order."""
    items: list[str] = []
    for item in re.split("[" + re.escape(separators) + "]", value):
        item = " ".join(item.split())
        if item and item not in items:
            items.append(item)
    return items
