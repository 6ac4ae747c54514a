"""Where to turn when it cannot wait: the warning signs that send a back patient to a doctor
the same day, kept as data (``data/urgent_care.json``) in both languages.

The file is read once per process and checked when read, like the complaint catalogue: it
must name its back complaints by slugs the complaint catalogue knows, so a renamed
complaint fails loudly at start instead of silently dropping the warning.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .complaints import CatalogueError, Complaint, _read_json, _texts


@dataclass(frozen=True)
class UrgentCare:
    """Which complaints are back complaints, and the signs that need a doctor today."""

    back_complaints: frozenset[str]
    heading: dict[str, str]
    signs: tuple[dict[str, str], ...]

    def applies_to(self, complaint: Complaint | str | None) -> bool:
        """Whether the warning signs belong with this complaint (a Complaint or its slug)."""
        slug = complaint.slug if isinstance(complaint, Complaint) else complaint
        return slug in self.back_complaints

    def heading_text(self, language: str) -> str:
        return self.heading.get(language) or self.heading["en"]

    def sign_texts(self, language: str) -> list[str]:
        return [sign.get(language) or sign["en"] for sign in self.signs]


def parse_urgent_care(document: dict, known_complaints: Collection[str]) -> UrgentCare:
    """Check an urgent-care document against the complaint slugs the finder knows."""
    slugs = document.get("back_complaints")
    if not isinstance(slugs, list) or not slugs:
        raise CatalogueError("back_complaints: list at least one complaint slug")
    unknown = [slug for slug in slugs if slug not in known_complaints]
    if unknown:
        raise CatalogueError(f"back_complaints: unknown complaint {', '.join(map(repr, unknown))}")
    warning = document.get("warning_signs")
    if not isinstance(warning, dict):
        raise CatalogueError("warning_signs: missing")
    signs = warning.get("signs")
    if not isinstance(signs, list) or not signs:
        raise CatalogueError("warning_signs.signs: list at least one sign")
    return UrgentCare(
        back_complaints=frozenset(slugs),
        heading=_texts(warning.get("heading"), "warning_signs.heading"),
        signs=tuple(
            _texts(sign, f"warning_signs.signs[{index}]") for index, sign in enumerate(signs)
        ),
    )


@cache
def load_urgent_care(path: Path, known_complaints: frozenset[str]) -> UrgentCare:
    """The urgent-care data at ``path``, read and checked once per process."""
    return parse_urgent_care(_read_json(path), known_complaints)
