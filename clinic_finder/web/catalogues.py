"""The app's catalogues in data/: the service vocabulary, the complaints the finder knows,
what each profession means for a patient, and the warning signs that need a doctor the same
day. Read once per file version (complaints.py, services.py and urgent_care.py cache them),
and all of them once when the app starts (:func:`check_catalogues`), so a bad edit stops
the app instead of breaking a page."""

from __future__ import annotations

from flask import Flask, current_app

from ..complaints import Complaint, ProfessionGuide, load_complaints, load_profession_guide
from ..i18n import current_language
from ..services import ServiceVocabulary, current_vocabulary
from ..urgent_care import UrgentCare, load_urgent_care


def service_vocabulary() -> ServiceVocabulary:
    """The services clinicians offer (data/services.json), with names in both languages."""
    return current_vocabulary()


def complaint_catalogue() -> dict[str, Complaint]:
    """The complaints the finder knows (data/complaints.json), by slug."""
    data = current_app.config["DATA_DIR"]
    return load_complaints(data / "complaints.json", data / "services.json")


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


def service_name(key: str) -> str:
    """A service's name in the page's language (a Jinja filter: ``key | service_name``)."""
    from ..i18n import current_language

    return service_vocabulary().name(key, current_language())


def check_catalogues(app: Flask) -> None:
    """Read and check every catalogue now; raise naming the bad place in the file."""
    with app.app_context():
        service_vocabulary()
        complaint_catalogue()
        profession_guide()
