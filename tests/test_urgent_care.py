"""The urgent-care data: which complaints are back complaints, and the same-day warning signs."""

from __future__ import annotations

import copy
import json

import pytest
from flask import render_template_string

from clinic_finder import PROJECT_ROOT
from clinic_finder.complaints import CatalogueError, load_complaints
from clinic_finder.urgent_care import load_urgent_care, parse_urgent_care

URGENT_CARE = PROJECT_ROOT / "data" / "urgent_care.json"
COMPLAINTS = frozenset(load_complaints(PROJECT_ROOT / "data" / "complaints.json"))


def _document() -> dict:
    return json.loads(URGENT_CARE.read_text(encoding="utf-8"))


def test_back_pain_and_sciatica_bring_three_warning_signs_in_both_languages():
    care = load_urgent_care(URGENT_CARE, COMPLAINTS)
    assert care.back_complaints == {"low-back-pain", "sciatica"}
    assert not care.applies_to("neck-pain") and not care.applies_to(None)
    for language, words in {
        "nb": ("skrittet", "urin eller avføring", "beina"),
        "en": ("between your legs", "urine or stools", "legs"),
    }.items():
        signs = care.sign_texts(language)
        assert len(signs) == 3
        assert all(word in sign for word, sign in zip(words, signs, strict=True))
        assert {"nb": "samme dag", "en": "the same day"}[language] in care.heading_text(language)


def _edited(edit) -> dict:
    document = copy.deepcopy(_document())
    edit(document)
    return document


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["back_complaints"].append("back-ache"), "unknown complaint 'back-ache'"),
        (lambda d: d.update(back_complaints=[]), "back_complaints"),
        (lambda d: d["warning_signs"]["signs"][1].pop("en"), r"warning_signs.signs\[1\]"),
        (lambda d: d["warning_signs"]["heading"].update(nb=" "), "warning_signs.heading"),
        (lambda d: d["warning_signs"].update(signs=[]), "warning_signs.signs"),
        (lambda d: d.pop("warning_signs"), "warning_signs"),
    ],
)
def test_a_bad_edit_is_refused_with_the_place_named(edit, message):
    with pytest.raises(CatalogueError, match=message):
        parse_urgent_care(_edited(edit), COMPLAINTS)


def test_the_partial_takes_a_complaint_its_slug_or_nothing(app):
    template = (
        '{% from "_partials/urgent_care.html" import urgent_care %}{{ urgent_care(complaint) }}'
    )
    sciatica = load_complaints(PROJECT_ROOT / "data" / "complaints.json")["sciatica"]
    with app.test_request_context("/?lang=en"):
        for complaint in (sciatica, "sciatica"):
            shown = render_template_string(template, complaint=complaint)
            assert "cannot pee" in shown and 'data-color="warning"' in shown
        for complaint in (None, "neck-pain", "<script>"):
            shown = render_template_string(template, complaint=complaint)
            assert "cannot pee" not in shown and 'data-color="info"' in shown
            assert 'href="tel:116117"' in shown and 'href="tel:113"' in shown
