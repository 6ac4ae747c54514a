"""The service vocabulary: loading and checking it, and what each spelling means."""

from __future__ import annotations

import json

import pytest

from clinic_finder import PROJECT_ROOT, create_app
from clinic_finder.services import VocabularyError, load_services, parse_services

from .conftest import config_for_tests

SERVICES = PROJECT_ROOT / "data" / "services.json"


def _document() -> dict:
    return json.loads(SERVICES.read_text(encoding="utf-8"))


def test_every_service_has_a_norwegian_and_an_english_name():
    vocabulary = load_services(SERVICES)
    assert len(vocabulary.services) >= 15
    assert vocabulary.name("exercise-therapy", "nb") == "Treningsterapi"
    assert vocabulary.name("exercise-therapy", "en") == "Exercise therapy"
    assert vocabulary.name("dry-needling", "nb") == "Tørrnåling"


@pytest.mark.parametrize(
    "written, key",
    [
        ("exercise therapy", "exercise-therapy"),
        ("Treningsterapi", "exercise-therapy"),
        ("  MEDISINSK   treningsterapi ", "exercise-therapy"),  # an alias, spacing and case
        ("exercise-therapy", "exercise-therapy"),  # the key itself
        ("manuell terapi", "manual-therapy"),
        ("Kinesiotape", "taping"),
        ("trykkbølge", "shockwave-therapy"),
        ("ESWT", "shockwave-therapy"),
        ("bekkenløsning", "pelvic-girdle-pain"),
        ("krystallsyke", "dizziness-treatment"),
    ],
)
def test_a_service_is_known_by_its_key_either_name_or_an_alias(written, key):
    assert load_services(SERVICES).key_for(written) == key


def test_resolving_a_list_keeps_order_drops_repeats_and_names_the_unknown():
    keys, unknown = load_services(SERVICES).resolve(
        ["Tørrnåling", "massage", "dry needling", "Graston", "Graston"]
    )
    assert keys == ["dry-needling", "massage"]
    assert unknown == ["Graston"]


def _with_first(**changes) -> dict:
    document = _document()
    document["services"][0].update(changes)
    return document


@pytest.mark.parametrize(
    "document, message",
    [
        (_with_first(key="Exercise therapy"), r"services\[0\]: key must be lower-case"),
        (_with_first(key="massage"), "key 'massage' appears twice"),
        (_with_first(name={"nb": "Trening"}), r"services\[0\].name: needs a name for each"),
        (
            _with_first(aliases=["massasje"]),
            r"services\[4\]: 'Massasje' already means 'exercise-therapy'",
        ),
        (_with_first(aliases=["trening; styrke"]), "holds ; or ,"),
        (_with_first(aliases=[""]), "aliases must be non-empty"),
        ({"services": []}, "the service vocabulary is empty"),
    ],
)
def test_a_bad_vocabulary_edit_is_refused_with_the_place_named(document, message):
    with pytest.raises(VocabularyError, match=message):
        parse_services(document)


def test_the_app_refuses_to_start_with_a_broken_vocabulary(tmp_path):
    """A bad edit fails when the app starts, naming the place, not later on a page."""
    for name in ("complaints.json", "professions.json"):
        (tmp_path / name).write_text(
            (PROJECT_ROOT / "data" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    document = _document()
    document["services"] = [s for s in document["services"] if s["key"] != "dry-needling"]
    (tmp_path / "services.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match="not in the service vocabulary: dry-needling"):
        create_app({**config_for_tests("sqlite://"), "DATA_DIR": tmp_path})


def test_the_staff_guide_lists_every_service_in_both_languages():
    guide = (PROJECT_ROOT / "docs" / "staff-guide.md").read_text(encoding="utf-8")
    section = guide.split("### Services", 1)[1].split("\n### ", 1)[0]
    for service in load_services(SERVICES).services.values():
        assert f"| {service.names['nb']} | {service.names['en']} |" in section
