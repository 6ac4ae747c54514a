"""Placeholder until the HPR client lands (branch h12-hpr): the statuses only."""

from enum import StrEnum


class LicenceStatus(StrEnum):
    VALID = "valid"
    NOT_FOUND = "not_found"
    NO_AUTHORISATION_FOR_PROFESSION = "no_authorisation_for_profession"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    UNCHECKED = "unchecked"
