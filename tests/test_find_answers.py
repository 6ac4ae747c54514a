"""The results page shows the same answers as before it was made cheaper (issue 16).

``tests/data/find_answers.json`` holds what /find showed, before the filter counts moved
into the search index and the map's fixed part was built once, for a seeded random
directory (languages, agreements, new-patient answers, opening hours, closures, step-free
entrances, hostile names) and a set of searches over it: every card's text in order,
the headings and totals, each profession's, filter's and language's count, the pagination,
and the map's pins, popups, searched place and bounds. The page must show exactly that.

Since the results page fetches its search form when "Change search" is opened (issue 16),
the form's choices, counts and disabled choices are read from that form
(``/find/search-form`` with the search's arguments), and the results page must hold no
form at all; the stored answers did not change.

Everything time-dependent in the directory is relative to the moment of the test (hours
on today's weekday, answers confirmed days ago), so the answers hold on any day.
Regenerate after a deliberate change of the page with ``WRITE_FIND_ANSWERS=1``.
"""

from __future__ import annotations

import json
import os
import random
import re
import time as clock
from datetime import date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from lxml import html as lxml_html
from sqlalchemy import text

from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import NORWAY, Clinic, OpeningHours, Profession, now_utc
from clinic_finder.web.search_forms import LANGUAGE_CODES

from .factories import make_practice, new_clinician

ANSWERS = Path(__file__).parent / "data" / "find_answers.json"
# Postcodes the directory's clinics gather around, and how many at each.
PLACES = {"0150": 700, "0368": 150, "1338": 20, "5003": 15, "7010": 5}
# Common languages first: most clinicians speak Norwegian, few Tigrinya; nobody Vietnamese.
LANGUAGE_WEIGHTS = {"en": 0.5, "sv": 0.1, "de": 0.05, "pl": 0.08, "ar": 0.05, "ti": 0.02}
HOSTILE_NAMES = (
    "<script>alert(1)</script> Fysio",
    'O\'Brien "Kiropraktikk" & Co',
    "{{ 7*7 }} ${alert(1)} `tick` Klinikk",
)
SEARCHES = (
    "/find?postcode=0150&radius=25",
    "/find?postcode=0150&radius=25&page=2",
    "/find?postcode=0150&radius=5",
    "/find?postcode=0150&radius=10&helfo=true",
    "/find?postcode=0150&radius=25&new_patients=true",
    "/find?postcode=0150&radius=25&open_now=true",
    "/find?postcode=0150&radius=25&step_free=true",
    "/find?postcode=0150&radius=25&language=pl",
    "/find?postcode=0150&radius=25&language=ti&new_patients=true",
    "/find?postcode=0150&radius=25&profession=chiropractor",
    "/find?postcode=0150&radius=25&profession=physiotherapist&profession=manual_therapist"
    "&helfo=true&open_now=true",
    "/find?postcode=0150&radius=50&complaint=sciatica",
    "/find?postcode=0150&radius=25&complaint=neck-pain&helfo=true&step_free=true",
    "/find?postcode=5003&radius=10&language=en&lang=nb",
    "/find?postcode=1338&radius=5&new_patients=true&open_now=true&step_free=true",
    "/find?postcode=9990&radius=5",
    "/find?postcode=9990&radius=5&language=ti",
    "/find?postcode=0150&radius=25&language=vi",
    "/find?postcode=0150&radius=100&lang=nb",
)


def clinic_directory(session, seed: int = 16) -> None:
    """A random directory around PLACES, varied in everything the results page shows."""
    rng = random.Random(seed)
    now = now_utc()
    today = now.astimezone(NORWAY)
    number = 0
    for postcode, count in PLACES.items():
        for _ in range(count):
            number += 1
            clinic = _clinic(session, rng, postcode, number)
            _hours(session, rng, clinic, today.weekday())
            for index in range(rng.choice((1, 1, 2, 3))):
                _practice(session, rng, clinic, index, now)
    session.commit()


def _clinic(session, rng: random.Random, postcode: str, number: int) -> Clinic:
    from clinic_finder.models import PostalCode

    postal = session.get(PostalCode, postcode)
    name = (
        HOSTILE_NAMES[number % len(HOSTILE_NAMES)]
        if number % 17 == 0
        else f"{rng.choice(('Fysio', 'Kiro', 'Helsehus', 'Klinikk'))} {postal.place} {number}"
    )
    clinic = Clinic(
        name=name,
        address=f"{rng.choice(('Storgata', 'Kirkeveien', 'Parkveien'))} {rng.randint(1, 99)}",
        postcode=postcode,
        city=postal.place,
        latitude=postal.latitude + rng.uniform(-0.03, 0.03),
        longitude=postal.longitude + rng.uniform(-0.05, 0.05),
        location_source="given",
        step_free_access=rng.choice((True, False, None)),
        # Closed for good past the test, or a closure that ended long ago.
        closed_until=rng.choice((None, None, None, date(2020, 1, 1), date(2099, 1, 1))),
        active=rng.random() > 0.05,
        phone="+4722334455" if rng.random() < 0.5 else None,
        website="https://klinikk.example/" if rng.random() < 0.3 else None,
    )
    session.add(clinic)
    session.flush()
    return clinic


def _hours(session, rng: random.Random, clinic: Clinic, weekday: int) -> None:
    """Open all day today, open only on other days, or no hours given."""
    kind = rng.choice(("today", "today", "other days", "none"))
    if kind == "none":
        return
    for day in range(7):
        if kind == "today" and day == weekday:
            session.add(
                OpeningHours(clinic=clinic, weekday=day, opens=time(0, 0), closes=time(23, 59))
            )
        elif day != weekday and rng.random() < 0.7:
            session.add(OpeningHours(clinic=clinic, weekday=day, opens=time(8), closes=time(16)))


def _practice(session, rng: random.Random, clinic: Clinic, index: int, now: datetime) -> None:
    profession = rng.choice(tuple(Profession))
    languages = ["nb"] + [code for code, share in LANGUAGE_WEIGHTS.items() if rng.random() < share]
    answer = rng.choice((True, False, None))
    confirmed_days_ago = rng.choice((3, 30, 200))
    clinician = new_clinician(
        f"{rng.choice(('Anne', 'Per', 'Kari', 'Ole'))} {rng.choice(('Berg', 'Dahl', 'Lie'))} "
        f"{clinic.id}-{index}",
        languages=languages,
        hpr_number=str(7_000_000 + clinic.id * 10 + index),
        licence_status=rng.choice((LicenceStatus.UNCHECKED,) * 9 + (LicenceStatus.SUSPENDED,)),
    )
    make_practice(
        session,
        clinic,
        clinician,
        profession,
        services=rng.sample(("manual-therapy", "exercise-therapy", "dry-needling", "massage"), 2),
        public_agreement=profession is not Profession.CHIROPRACTOR and rng.random() < 0.5,
        accepts_new_patients=answer,
        accepts_new_patients_confirmed_at=now - timedelta(days=confirmed_days_ago)
        if answer is not None
        else None,
        active=rng.random() > 0.05,
    )


def _text(element) -> str:
    return " ".join(element.text_content().split())


def map_facts(page: str) -> dict:
    """The map's pins (number, clinic, title, popup, place), searched place and bounds."""
    found = re.search(
        r'<script type="application/json" id="results-map-data"[^>]*>(.*?)</script>',
        page,
        re.DOTALL,
    )
    if found is None:
        return {}
    data = json.loads(found.group(1))
    return {
        "origin": data["origin"],
        "origin_tooltip": data["origin_tooltip"],
        "bounds": data["bounds"],
        "pins": [
            {
                "number": feature["properties"]["number"],
                "clinic_id": feature["properties"]["clinic_id"],
                "title": unquote(feature["properties"]["title"]),
                "popup_html": feature["properties"]["popup_html"],
                "coordinates": feature["geometry"]["coordinates"],
            }
            for feature in data["features"]
        ],
    }


def page_answers(page: str) -> dict:
    """What a results page tells a patient, as text (see the module docstring)."""
    tree = lxml_html.fromstring(page)
    main = tree.find(".//main")
    assert not main.xpath(".//form"), "the results page fetches its form when it is opened"
    return {
        "heading": [_text(h) for h in main.xpath(".//h1")],
        "summary": [_text(p) for p in main.xpath(".//p[@class='summary-line']")],
        "notes": [_text(p) for p in main.xpath(".//p[contains(@class, 'fallback-note')]")],
        "empty": [_text(e) for e in main.xpath(".//*[contains(@class, 'empty-result')]")],
        "cards": [
            [li.get("id"), _text(li)] for li in main.xpath(".//li[contains(@class, 'clinic ')]")
        ],
        "pagination": [_text(nav) for nav in main.xpath(".//nav[contains(@class, 'pagination')]")],
        "map": map_facts(page),
    }


def form_answers(fragment: str) -> dict:
    """What the search form a results page fetches offers: each choice with its count."""
    (form,) = lxml_html.fragment_fromstring(fragment, create_parent="div").xpath(
        ".//form[contains(@class, 'search-form')]"
    )
    return {
        "choices": [_text(label) for label in form.xpath(".//label")],
        "disabled": [
            element.get("id") or element.get("value") for element in form.xpath(".//*[@disabled]")
        ],
        "languages": [_text(option) for option in form.xpath(".//select[@name='language']/option")],
    }


def search_form_url(url: str) -> str:
    """The search form "Change search" fetches for this results page."""
    return url.replace("/find?", "/find/search-form?", 1)


def answers(client) -> dict:
    got = {}
    for url in SEARCHES:
        page = page_answers(client.get(url).get_data(as_text=True))
        form = form_answers(client.get(search_form_url(url)).get_data(as_text=True))
        # In the stored answers' order (the form's parts sat between cards and pagination).
        got[url] = {
            **{key: page[key] for key in ("heading", "summary", "notes", "empty", "cards")},
            **form,
            "pagination": page["pagination"],
            "map": page["map"],
        }
    return got


@pytest.fixture
def varied_directory(session):
    # The directory's hours are relative to today: not across midnight in Norway.
    local = datetime.now(NORWAY)
    if local.time() >= time(23, 57):
        clock.sleep(
            (
                datetime.combine(local.date() + timedelta(days=1), time(0, 0, 5), NORWAY) - local
            ).total_seconds()
        )
    # The page shows ids (and the directory's HPR numbers come from them): PostgreSQL's
    # sequences go on counting across the tests a worker ran before, so start them again.
    if session.get_bind().dialect.name == "postgresql":
        for table in ("clinic", "clinician", "practice", "opening_hours"):
            session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1, false)")
            )
    clinic_directory(session)


def test_results_pages_show_the_same_answers_as_before(client, varied_directory):
    got = answers(client)
    if os.environ.get("WRITE_FIND_ANSWERS"):
        ANSWERS.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(ANSWERS.read_text(encoding="utf-8"))
    for url in SEARCHES:
        assert got[url] == expected[url], url


def test_the_answers_cover_what_the_page_shows():
    """The stored answers exercise counts, pins, pages, fallbacks and hostile names."""
    expected = json.loads(ANSWERS.read_text(encoding="utf-8"))
    assert len(expected) == len(SEARCHES)
    plain = expected["/find?postcode=0150&radius=25"]
    assert len(plain["cards"]) == 20 and len(plain["map"]["pins"]) == 20
    assert plain["pagination"] and any("(" in choice for choice in plain["choices"])
    assert any("(0)" in language for language in plain["languages"])
    assert any("+)" in choice for choice in plain["choices"] + plain["languages"])  # "(200+)"
    pins = [pin for page in expected.values() if page["map"] for pin in page["map"]["pins"]]
    assert any(pin["title"] == HOSTILE_NAMES[0] for pin in pins)
    assert all("<script>" not in pin["popup_html"] for pin in pins)
    assert expected["/find?postcode=9990&radius=5"]["notes"]  # the nearest instead
    assert not expected["/find?postcode=0150&radius=25&language=vi"]["cards"]  # a dead end
    assert set(LANGUAGE_CODES) >= set(LANGUAGE_WEIGHTS)
