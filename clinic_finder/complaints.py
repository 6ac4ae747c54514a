"""The complaints the article site writes about, and what each profession means for patients.

Both catalogues are data (``data/complaints.json``, ``data/professions.json``), read once
per process and checked when read, so a bad edit fails loudly at start, not on a page. A
complaint's services are keys of the service vocabulary (``services.py``), and every one
must be in it.

Ranking rule for a complaint (docs/features.md explains it to users): clinics are grouped by
distance into rings ``COMPLAINT_RING_KM`` wide around the searched postcode (0–2 km,
2–4 km, …); inside each ring, clinics where a clinician offers a service that suits the
complaint come first, and each group stays nearest first. A matching clinic never jumps
over a clinic in a nearer ring, so "nearest" keeps its meaning.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .models import Clinic, Profession
from .services import ServiceVocabulary, load_services

COMPLAINT_RING_KM = 2.0
LANGUAGES = ("nb", "en")


class CatalogueError(ValueError):
    """A catalogue file is not in the expected shape."""


@dataclass(frozen=True)
class Complaint:
    """One complaint: names, the professions and services that suit it, and help lines."""

    slug: str
    names: dict[str, str]
    professions: tuple[Profession, ...]
    services: frozenset[str]
    help: dict[Profession, dict[str, str]]

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["en"]

    def help_line(self, profession: Profession, language: str) -> str | None:
        lines = self.help.get(profession)
        return (lines.get(language) or lines.get("en")) if lines else None

    def suits_service(self, service: str) -> bool:
        """Whether a service (a vocabulary key, as the directory stores it) suits this
        complaint."""
        return service in self.services

    def suits_services(self, services: Iterable[str]) -> bool:
        return any(self.suits_service(service) for service in services)

    def matching_services(self, clinic: Clinic) -> list[str]:
        """The keys of the services the clinic's listed clinicians offer there that suit
        this complaint (pages name them with the ``service_name`` filter)."""
        return self.matching_service_keys(
            practice.services or [] for practice in clinic.listed_practices
        )

    def matching_service_keys(self, offered: Iterable[Iterable[str]]) -> list[str]:
        """The services of these lists (one per listed clinician, in order) that suit this
        complaint, each once, in the order first offered."""
        found: list[str] = []
        for services in offered:
            for service in services:
                if self.suits_service(service) and service not in found:
                    found.append(service)
        return found

    def suits(self, clinic: Clinic) -> bool:
        return bool(self.matching_services(clinic))


def _texts(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(value.get(language), str) and value[language].strip() for language in LANGUAGES
    ):
        raise CatalogueError(f"{where}: needs a text for each of {', '.join(LANGUAGES)}")
    return {language: value[language] for language in LANGUAGES}


def _profession(value: Any, where: str) -> Profession:
    try:
        return Profession(value)
    except ValueError:
        raise CatalogueError(f"{where}: unknown profession {value!r}") from None


def parse_complaints(document: dict, vocabulary: ServiceVocabulary) -> dict[str, Complaint]:
    """Check a complaints document and return its complaints by slug, in file order.

    Each complaint's services must be keys of ``vocabulary``.
    """
    complaints: dict[str, Complaint] = {}
    for index, entry in enumerate(document.get("complaints") or []):
        where = f"complaints[{index}]"
        slug = entry.get("slug")
        if not isinstance(slug, str) or not slug or slug != slug.strip().lower():
            raise CatalogueError(f"{where}: slug must be lower-case text")
        if slug in complaints:
            raise CatalogueError(f"{where}: slug {slug!r} appears twice")
        professions = tuple(
            _profession(value, f"{where}.professions") for value in entry.get("professions", [])
        )
        if not professions:
            raise CatalogueError(f"{where}: names no profession")
        services = entry.get("services") or []
        if not all(isinstance(service, str) and service.strip() for service in services):
            raise CatalogueError(f"{where}: services must be non-empty texts")
        unknown = [service for service in services if service not in vocabulary]
        if unknown:
            raise CatalogueError(
                f"{where}: services not in the service vocabulary: {', '.join(unknown)}"
            )
        help_lines = {
            _profession(key, f"{where}.help"): _texts(value, f"{where}.help.{key}")
            for key, value in (entry.get("help") or {}).items()
        }
        complaints[slug] = Complaint(
            slug=slug,
            names=_texts(entry.get("name"), f"{where}.name"),
            professions=professions,
            services=frozenset(services),
            help=help_lines,
        )
    if not complaints:
        raise CatalogueError("the complaints catalogue is empty")
    return complaints


@dataclass(frozen=True)
class ProfessionFacts:
    """What a profession means for the patient: its name and plain-language facts."""

    profession: Profession
    names: dict[str, str]
    facts: tuple[dict[str, str], ...]

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["en"]

    def lines(self, language: str) -> list[str]:
        return [fact.get(language) or fact["en"] for fact in self.facts]


@dataclass(frozen=True)
class ProfessionGuide:
    """The facts shared by all three professions, and each one's own."""

    common: dict[str, str]
    professions: dict[Profession, ProfessionFacts]

    def common_line(self, language: str) -> str:
        return self.common.get(language) or self.common["en"]


def parse_profession_guide(document: dict) -> ProfessionGuide:
    """Check a professions document; every profession must be described."""
    entries = document.get("professions") or {}
    professions = {}
    for key, entry in entries.items():
        profession = _profession(key, "professions")
        professions[profession] = ProfessionFacts(
            profession=profession,
            names=_texts(entry.get("name"), f"professions.{key}.name"),
            facts=tuple(
                _texts(fact, f"professions.{key}.facts[{index}]")
                for index, fact in enumerate(entry.get("facts") or [])
            ),
        )
    missing = [profession.value for profession in Profession if profession not in professions]
    if missing:
        raise CatalogueError(f"professions: no facts for {', '.join(missing)}")
    return ProfessionGuide(common=_texts(document.get("common"), "common"), professions=professions)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CatalogueError(f"{path.name}: {error}") from None


@cache
def load_complaints(path: Path, services_path: Path | None = None) -> dict[str, Complaint]:
    """The complaints catalogue at ``path``, read once per process, checked against the
    service vocabulary at ``services_path`` (by default ``services.json`` beside it)."""
    vocabulary = load_services(services_path or path.with_name("services.json"))
    return parse_complaints(_read_json(path), vocabulary)


@cache
def load_profession_guide(path: Path) -> ProfessionGuide:
    """The profession guide at ``path``, read once per process."""
    return parse_profession_guide(_read_json(path))


def ring(distance_km: float, ring_km: float = COMPLAINT_RING_KM) -> int:
    """Which distance ring a clinic is in: 0 for 0–2 km, 1 for 2–4 km, …"""
    return math.floor(distance_km / ring_km)


def complaint_order_key(
    distance_km: float, suits: bool, clinic_id: int, ring_km: float = COMPLAINT_RING_KM
) -> tuple:
    """The ring rule's sort key: ring, then clinics that suit, then nearest, then id."""
    return (ring(distance_km, ring_km), not suits, distance_km, clinic_id)
