"""The app's catalogues in data/: the complaints the finder knows, and what each profession
means for a patient. Read once per file version (complaints.py caches them)."""

from __future__ import annotations

from flask import current_app

from ..complaints import Complaint, ProfessionGuide, load_complaints, load_profession_guide


def complaint_catalogue() -> dict[str, Complaint]:
    """The complaints the finder knows (data/complaints.json), by slug."""
    return load_complaints(current_app.config["DATA_DIR"] / "complaints.json")


def profession_guide() -> ProfessionGuide:
    """What each profession means for the patient (data/professions.json)."""
    return load_profession_guide(current_app.config["DATA_DIR"] / "professions.json")
