"""Languages: Norwegian Bokmål by default, English by choice, and nothing left untranslated.

The other test modules read English pages (conftest sets DEFAULT_LOCALE="en"); these use an
app with the real default, nb.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask import Flask
from sqlalchemy import select

from clinic_finder import create_app
from clinic_finder.extensions import db
from clinic_finder.models import Clinic, OutboxMessage, StaffUser

from .conftest import (
    PROJECT_ROOT,
    STAFF_PASSWORD,
    config_for_tests,
    make_staff,
    shown_link,
    sign_in,
)
from .factories import make_clinic
from .helpers import ALL_GET, url_for_rule

TRANSLATIONS = PROJECT_ROOT / "clinic_finder" / "translations"
NB_CATALOGUE = TRANSLATIONS / "nb" / "LC_MESSAGES" / "messages.po"
TEMPLATE = TRANSLATIONS / "messages.pot"

CONTACT_FORM = {
    "name": "Kari Nordmann",
    "email": "kari@example.org",
    "phone": "",
    "postcode": "0150",
    "profession": "chiropractor",
    "message": "Vondt i korsryggen",
    "duration": "weeks",
    "contact_time": "any",
    "consent": "y",
}


@pytest.fixture
def nb_app(app: Flask, database_url: str) -> Flask:
    """An app with the real default language, on the test database (cleaned up by ``app``)."""
    nb_app = create_app(config_for_tests(database_url, DEFAULT_LOCALE="nb"))
    yield nb_app
    with nb_app.app_context():
        db.session.rollback()
        db.engine.dispose()


@pytest.fixture
def nb_client(nb_app: Flask):
    return nb_app.test_client()


@pytest.fixture
def nb_admin(nb_app: Flask):
    """A client of the nb app signed in as an admin (who may open every staff page)."""
    make_staff(nb_app, "admin@clinic-finder.example", admin=True)
    client = nb_app.test_client()
    assert sign_in(client, "admin@clinic-finder.example").status_code == 302
    return client


def page_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


# --- choosing the language ---------------------------------------------------------------


def test_pages_are_norwegian_by_default(nb_client):
    page = page_of(nb_client.get("/contact"))
    assert '<html lang="nb">' in page
    assert "Få hjelp til å finne en behandler" in page
    assert "Ask us for help" not in page


@pytest.mark.parametrize("header", ["en", "en-GB,en;q=0.9", "de, en-US;q=0.8"])
def test_a_browser_asking_for_english_gets_english(nb_client, header):
    page = page_of(nb_client.get("/contact", headers={"Accept-Language": header}))
    assert '<html lang="en">' in page
    assert "Ask us for help finding a clinician" in page


@pytest.mark.parametrize("header", ["nb", "no", "nn-NO", "en;q=0.5, no;q=0.9"])
def test_a_browser_asking_for_norwegian_gets_bokmal(app, client, header):
    page = page_of(client.get("/contact", headers={"Accept-Language": header}))
    assert '<html lang="nb">' in page and "Send henvendelsen" in page


def test_the_switch_is_remembered_until_switched_back(nb_client):
    page = page_of(nb_client.get("/contact?lang=en"))
    assert '<html lang="en">' in page and "Send my request" in page
    assert '<html lang="en">' in page_of(nb_client.get("/contact"))  # the cookie remembers
    assert "Staff sign-in" in page_of(nb_client.get("/staff/sign-in"))  # on every page

    page = page_of(nb_client.get("/contact?lang=nb", headers={"Accept-Language": "en"}))
    assert '<html lang="nb">' in page and "Send henvendelsen" in page
    assert '<html lang="nb">' in page_of(nb_client.get("/contact"))


def test_the_switch_link_keeps_the_search(nb_client, session):
    make_clinic(session)
    session.commit()
    page = page_of(nb_client.get("/find?postcode=0150&radius=10"))
    link = re.search(r'<a [^>]*lang="en" hreflang="en" href="([^"]+)"', page).group(1)
    assert "postcode=0150" in link and "radius=10" in link and "lang=en" in link
    assert "lang=nb" not in link
    assert '<span lang="nb" aria-current="true">Norsk</span>' in page


def test_distances_use_the_languages_decimal_sign(nb_client, session):
    # About 2.4 km north-east of 0150's centre.
    clinic = make_clinic(session, latitude=59.928, longitude=10.785)
    session.commit()
    distance = nb_client.get("/api/v1/clinics?postcode=0150").get_json()["results"][0][
        "distance_km"
    ]
    assert clinic.id and 1 < distance < 10
    whole, tenth = f"{distance:.1f}".split(".")
    norwegian = page_of(nb_client.get("/find?postcode=0150"))
    english = page_of(nb_client.get("/find?postcode=0150&lang=en"))
    assert f"{whole},{tenth} km" in norwegian and f"{whole}.{tenth} km" not in norwegian
    assert f"{whole}.{tenth} km" in english and f"{whole},{tenth} km" not in english
    assert "Detaljer i listen" in norwegian and "Details in the list" in english


def test_the_api_answers_in_english_whatever_the_language(nb_client):
    response = nb_client.get("/api/v1/clinics?postcode=12", headers={"Accept-Language": "nb"})
    assert response.status_code == 400
    assert "four digits" in " ".join(response.get_json()["errors"]["postcode"])
    assert "Accept-Language" not in response.headers.get("Vary", "")


# --- what pages say ------------------------------------------------------------------


def test_staff_dates_are_norwegian_and_in_norwegian_time(nb_admin, session):
    clinic = make_clinic(
        session,
        closed_until=date(2030, 3, 5),
        # 23:30 UTC on 31 January is half past midnight on 1 February in Oslo.
        verified_at=datetime(2030, 1, 31, 23, 30, tzinfo=UTC),
    )
    session.commit()
    page = page_of(nb_admin.get(f"/staff/clinics/{clinic.id}"))
    assert "Midlertidig stengt til 5. mars 2030" in page
    assert "1. feb. 2030, 00:30" in page
    english = page_of(nb_admin.get(f"/staff/clinics/{clinic.id}?lang=en"))
    assert "Temporarily closed until Mar 5, 2030" in english
    assert "Feb 1, 2030, 12:30" in english


def test_form_errors_are_norwegian(nb_client, nb_admin):
    page = nb_client.get("/contact").get_data(as_text=True)
    response = nb_client.post(
        "/contact", data={**CONTACT_FORM, "name": "", "csrf_token": csrf_token(page)}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Rett opp følgende" in page and "Skriv navnet ditt." in page
    assert "Tell us your name" not in page

    # WTForms' own messages come in Norwegian too.
    form = nb_admin.get("/staff/clinics/new").get_data(as_text=True)
    response = nb_admin.post(
        "/staff/clinics/new", data={"name": "", "postcode": "0150", "csrf_token": csrf_token(form)}
    )
    assert "Dette feltet er påkrevd." in response.get_data(as_text=True)


def test_the_consent_notice_is_norwegian(nb_client):
    page = visible_text(page_of(nb_client.get("/contact")))
    for words in (
        "Behandlingsansvarlig",
        "Formål",
        "Rettslig grunnlag",
        "artikkel 9 nr. 2 bokstav a",
        "Hvem som ser opplysningene",
        "180 dager",
        "Dine rettigheter",
        "Datatilsynet",
        "trekke tilbake samtykket ditt",
        "Jeg samtykker",
    ):
        assert words in page, words
    for words in ("Who is responsible", "Legal basis", "withdraw", "consent", "agree"):
        assert words not in page, words


def test_the_confirmation_email_is_in_the_patients_language(nb_app, nb_client):
    page = nb_client.get("/contact?lang=en").get_data(as_text=True)
    response = nb_client.post("/contact", data={**CONTACT_FORM, "csrf_token": csrf_token(page)})
    assert response.status_code == 302
    with nb_app.app_context():
        messages = {m.kind: m for m in db.session.scalars(select(OutboxMessage))}
    assert messages["request.confirmation"].subject.startswith("We have received your request")
    # Staff read the site's language, whatever the patient's.
    assert messages["request.staff"].subject.startswith("Ny henvendelse")
    assert "(norsk tid)" in messages["request.staff"].body


# --- the catalogue -------------------------------------------------------------------


def _catalogue(path: Path):
    with path.open("rb") as file:
        return read_po(file)


def _key(message) -> tuple:
    return (message.context, message.id if isinstance(message.id, str) else tuple(message.id))


def _extracted_now() -> set[tuple]:
    """Every message the code and templates use today, extracted as `make messages` does."""
    with (PROJECT_ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    found = set()
    for _filename, _line, message, _comments, context in extract_from_dir(
        PROJECT_ROOT,
        method_map,
        options_map,
        keywords=keywords,
        # Like `pybabel extract --ignore-dirs '.*'`: templates/_macros is read too.
        directory_filter=lambda path: not Path(path).name.startswith("."),
    ):
        found.add((context, message if isinstance(message, str) else tuple(message)))
    return found


def test_every_norwegian_message_is_translated():
    untranslated = [
        message.id
        for message in _catalogue(NB_CATALOGUE)
        if message.id
        and (
            "fuzzy" in message.flags
            or not (all(message.string) if isinstance(message.string, tuple) else message.string)
        )
    ]
    assert untranslated == [], "fill these in (and run make translations)"


def test_every_message_in_the_code_is_in_the_norwegian_catalogue():
    translated = {_key(message) for message in _catalogue(NB_CATALOGUE) if message.id}
    in_template = {_key(message) for message in _catalogue(TEMPLATE) if message.id}
    assert in_template - translated == set(), "run make messages, then translate"
    # A string wrapped since the last `make messages` is caught too.
    assert _extracted_now() - translated == set(), "run make messages, then translate"


# --- every page, in Norwegian ----------------------------------------------------------

# Words an English page would show and a Norwegian one must not (outside data).
ENGLISH_WORDS = re.compile(
    r"\b(Search|Sign in|Sign out|Clinic|Clinics|Postcode|Save|Cancel|Next|Previous|Email"
    r"|Phone|Name|Yes|No|Never|Edit|Address|Please|Your|Find a clinic)\b"
)
# Answers that are not pages for people: JSON, files, feeds, health checks, redirects.
NOT_PAGES = ("/api/", "/staff/api/", "/health", "/static/")


class _VisibleText(HTMLParser):
    """Text a person sees or hears in the page's language: element text and labels, not
    scripts or styles, nor what is marked as another language (``lang="en"``: the English
    staff guide, the language switch's "English"), which browsers and screen readers
    read as that language."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0
        self._foreign: tuple[str, int] | None = None  # (tag, depth) of a lang="en" element

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "code"):
            self._hidden += 1
        if self._foreign is not None:
            if tag == self._foreign[0]:
                self._foreign = (tag, self._foreign[1] + 1)
            return
        if (dict(attrs).get("lang") or "nb").split("-")[0] not in ("nb", "nn", "no"):
            self._foreign = (tag, 1)
            return
        for name, value in attrs:
            if name in ("aria-label", "title", "alt", "placeholder") and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code") and self._hidden:
            self._hidden -= 1
        if self._foreign is not None and tag == self._foreign[0]:
            depth = self._foreign[1] - 1
            self._foreign = (tag, depth) if depth else None

    def handle_data(self, data):
        if not self._hidden and self._foreign is None:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _VisibleText()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


PAGES = [
    rule
    for rule in ALL_GET
    if not rule.startswith(NOT_PAGES) and not rule.endswith((".csv", ".xml", ".txt", ".json"))
]


def test_the_page_walk_covers_public_and_staff_pages():
    rules = set(PAGES)
    assert {"/contact", "/staff/clinics", "/staff/requests", "/staff/audit"} <= rules


def assert_norwegian(page: str) -> None:
    assert '<html lang="nb">' in page
    english = sorted(set(ENGLISH_WORDS.findall(visible_text(page))))
    assert english == [], english


def test_pages_reached_by_redirect_are_norwegian(app, nb_client):
    """The confirmation, the second sign-in step and error pages (the walk cannot reach)."""
    page = nb_client.get("/contact").get_data(as_text=True)
    response = nb_client.post("/contact", data={**CONTACT_FORM, "csrf_token": csrf_token(page)})
    sent = page_of(nb_client.get(response.headers["Location"]))
    assert "Takk – vi har mottatt henvendelsen din" in sent and "innen 24–48 timer" in sent
    assert_norwegian(sent)

    missing = nb_client.get("/no-such-page")
    assert missing.status_code == 404
    assert "Fant ikke siden" in missing.get_data(as_text=True)
    assert_norwegian(missing.get_data(as_text=True))

    make_staff(app)
    page = nb_client.get("/staff/sign-in").get_data(as_text=True)
    nb_client.post(
        "/staff/sign-in",
        data={
            "email": "staff@clinic-finder.example",
            "password": STAFF_PASSWORD,
            "csrf_token": csrf_token(page),
        },
    )
    second_step = page_of(nb_client.get("/staff/sign-in/code"))
    assert "Kode fra autentiseringsappen" in second_step
    assert_norwegian(second_step)


def test_one_time_link_pages_are_norwegian(app, nb_app, nb_admin, nb_client):
    """The admin's page with a link, the pages the links open, and the one for a dead link."""
    make_staff(nb_app, "ny@clinic-finder.example", enrolled=False)
    with nb_app.app_context():
        account_id = db.session.scalar(
            select(StaffUser.id).where(StaffUser.email == "ny@clinic-finder.example")
        )
    pages, links = [], []
    for action in ("reset-password", "reset-second-factor"):
        page = nb_admin.get("/staff/users").get_data(as_text=True)
        issued = nb_admin.post(
            f"/staff/users/{account_id}/{action}", data={"csrf_token": csrf_token(page)}
        )
        pages.append(page_of(issued))
        links.append(shown_link(issued))
    assert "Passordlenke for ny@clinic-finder.example" in pages[0]
    assert "Oppsettlenke for ny@clinic-finder.example" in pages[1]
    password_link, set_up = links
    assert nb_client.get(password_link).status_code == 303
    pages.append(page_of(nb_client.get("/staff/reset-password")))
    assert "Velg et nytt passord" in pages[-1]
    assert nb_client.get(set_up).status_code == 303
    pages.append(page_of(nb_client.get("/staff/sign-in")))
    assert "deretter setter du opp autentiseringsappen" in pages[-1]
    dead = nb_client.get(set_up.replace("/link/", "/link/x"))
    assert dead.status_code == 404
    pages.append(dead.get_data(as_text=True))
    assert "Denne lenken virker ikke" in pages[-1]
    for page in pages:
        assert_norwegian(page)


@pytest.mark.parametrize("rule", PAGES)
def test_every_page_is_norwegian(nb_app, nb_admin, rule):
    url = url_for_rule(nb_app, rule, name="Testklinikken")
    with nb_app.app_context():
        data = {
            word
            for clinic in db.session.scalars(select(Clinic))
            for word in (clinic.name, clinic.address, clinic.city)
        }
    response = nb_admin.get(url)
    if response.status_code in (301, 302, 303):
        pytest.skip(f"{rule} redirects (to {response.headers['Location']})")
    # Without a one-time link in the session, the link's page says the link does not work.
    expected = 404 if rule == "/staff/reset-password" else 200
    assert response.status_code == expected, (rule, response.status_code)
    if response.mimetype != "text/html":
        pytest.skip(f"{rule} is {response.mimetype}, not a page")
    page = response.get_data(as_text=True)
    # The search form "Endre søk" fetches is a piece of the results page, in its language.
    if rule != "/find/search-form":
        assert '<html lang="nb">' in page
    text = visible_text(page)
    for value in data:
        text = text.replace(value, " ")
    english = sorted(set(ENGLISH_WORDS.findall(text)))
    assert english == [], f"{rule} still says {english} in: {text[:2000]}"
