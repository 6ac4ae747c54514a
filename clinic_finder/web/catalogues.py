"""The app's catalogues in data/: the complaints the finder knows, what each profession
means for a patient, and the warning signs that need a doctor the same day. Read once per
file version (complaints.py and urgent_care.py cache them)."""

from __future__ import annotations

from flask import current_app

from ..complaints import Complaint, ProfessionGuide, load_complaints, load_profession_guide
from ..i18n import current_language
from ..urgent_care import UrgentCare, load_urgent_care


def complaint_catalogue() -> dict[str, Complaint]:
    """The complaints the finder knows (data/complaints.json), by slug."""
    return load_complaints(current_app.config["DATA_DIR"] / "complaints.json")


def profession_guide() -> ProfessionGuide:
    """What each profession means for the patient (data/professions.json)."""
    return load_profession_guide(current_app.config["DATA_DIR"] / "professions.json")


def urgent_care() -> UrgentCare:
    """The back complaints and their same-day warning signs (data/urgent_care.json)."""
    return load_urgent_care(
        current_app.config["DATA_DIR"] / "urgent_care.json", frozenset(complaint_catalogue())
    )


def urgent_warning_signs(complaint: Complaint | str | None) -> dict | None:
    """The heading and signs to show with this complaint in the page's language, or None."""
    care = urgent_care()
    if not care.applies_to(complaint):
        return None
    language = current_language()
    return {"heading": care.heading_text(language), "signs": care.sign_texts(language)}
