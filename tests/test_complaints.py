"""The complaint catalogue, the profession guide, and the complaint ranking rule."""

from __future__ import annotations

import json

import pytest

from clinic_finder import PROJECT_ROOT
from clinic_finder.complaints import (
    CatalogueError,
    load_complaints,
    load_profession_guide,
    parse_complaints,
    parse_profession_guide,
)
from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import Clinic, Clinician, Practice, Profession
from clinic_finder.services import load_services

from .helpers import rank_for_complaint

COMPLAINTS = PROJECT_ROOT / "data" / "complaints.json"
PROFESSIONS = PROJECT_ROOT / "data" / "professions.json"
SERVICES = PROJECT_ROOT / "data" / "services.json"

ARTICLE_TOPICS = {
    "low-back-pain",
    "sciatica",
    "neck-pain",
    "rib-lock",
    "pelvic-pain-pregnancy",
    "myalgia",
    "pain-after-exercise",
    "stress-tension",
}


def test_catalogue_covers_every_complaint_the_article_writes_about():
    complaints = load_complaints(COMPLAINTS)
    assert set(complaints) == ARTICLE_TOPICS
    sciatica = complaints["sciatica"]
    assert sciatica.name("nb") == "Isjias"
    assert sciatica.name("en") == "Sciatica"


@pytest.mark.parametrize("slug", sorted(ARTICLE_TOPICS))
def test_each_complaint_says_what_each_of_its_professions_does(slug):
    complaint = load_complaints(COMPLAINTS)[slug]
    for profession in complaint.professions:
        for language in ("nb", "en"):
            assert complaint.help_line(profession, language)


def test_profession_guide_has_the_helsenorge_facts_in_both_languages():
    guide = load_profession_guide(PROFESSIONS)
    assert "henvisning" in guide.common_line("nb")
    assert "referral" in guide.common_line("en")
    physio = " ".join(guide.professions[Profession.PHYSIOTHERAPIST].lines("en"))
    assert "frikort" in physio and "under 16" in physio
    chiro = " ".join(guide.professions[Profession.CHIROPRACTOR].lines("nb"))
    assert "12 uker" in chiro and "ikke mot frikort" in chiro


def _document(**changes) -> dict:
    document = json.loads(COMPLAINTS.read_text(encoding="utf-8"))
    document["complaints"][0].update(changes)
    return document


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"professions": ["osteopath"]}, "unknown profession 'osteopath'"),
        ({"professions": []}, "names no profession"),
        ({"name": {"nb": "Vondt i ryggen"}}, "needs a text for each of nb, en"),
        ({"slug": "Sciatica"}, "slug must be lower-case"),
        ({"slug": "sciatica"}, "appears twice"),
        ({"services": ["", "massage"]}, "services must be non-empty"),
        # Services are the vocabulary's keys: a name, or a service it lacks, is refused.
        (
            {"services": ["massage", "Exercise therapy"]},
            r"complaints\[0\]: services not in the service vocabulary: Exercise therapy",
        ),
        ({"services": ["cupping"]}, "not in the service vocabulary: cupping"),
    ],
)
def test_a_bad_catalogue_edit_is_refused_with_the_place_named(changes, message):
    with pytest.raises(CatalogueError, match=message):
        parse_complaints(_document(**changes), load_services(SERVICES))


def test_every_complaint_service_is_in_the_vocabulary():
    vocabulary = load_services(SERVICES)
    for complaint in load_complaints(COMPLAINTS).values():
        assert complaint.services and all(key in vocabulary for key in complaint.services)


def test_a_profession_guide_missing_a_profession_is_refused():
    document = json.loads(PROFESSIONS.read_text(encoding="utf-8"))
    del document["professions"]["manual_therapist"]
    with pytest.raises(CatalogueError, match="no facts for manual_therapist"):
        parse_profession_guide(document)


def _clinic(clinic_id: int, *services: str, active: bool = True) -> Clinic:
    clinic = Clinic(id=clinic_id, name=f"Klinikk {clinic_id}")
    clinic.practices = [
        Practice(
            clinician=Clinician(name="Behandler", licence_status=LicenceStatus.UNCHECKED),
            profession=Profession.PHYSIOTHERAPIST,
            services=list(services),
            active=active,
        )
    ]
    return clinic


def test_matching_clinics_come_first_within_their_ring_and_never_jump_a_ring():
    sciatica = load_complaints(COMPLAINTS)["sciatica"]
    hits = [
        (_clinic(1, "massage"), 0.4),
        (_clinic(2, "exercise-therapy"), 1.9),  # same 0–2 km ring: moves ahead of 1
        (_clinic(3, "massage"), 2.1),
        (_clinic(4, "manual-therapy"), 3.0),
        (_clinic(5, "manual-therapy"), 5.5),  # suits, but in a farther ring: stays behind
        (_clinic(6, "exercise-therapy", active=False), 5.0),  # only an inactive clinician
    ]
    ranked = [clinic.id for clinic, _ in rank_for_complaint(hits, sciatica)]
    assert ranked == [2, 1, 4, 3, 5, 6]


def test_matching_services_names_what_the_clinic_offers_for_the_complaint():
    neck = load_complaints(COMPLAINTS)["neck-pain"]
    clinic = _clinic(1, "dry-needling", "jaw-treatment", "headache-treatment")
    assert neck.matching_services(clinic) == ["dry-needling", "headache-treatment"]


def test_complaints_match_services_by_key_not_by_name():
    """The directory stores keys; a name (as stored before the vocabulary) matches nothing."""
    neck = load_complaints(COMPLAINTS)["neck-pain"]
    assert neck.suits_service("dry-needling")
    assert not neck.suits_service("Dry needling")
    assert not neck.suits_service("tørrnåling")
