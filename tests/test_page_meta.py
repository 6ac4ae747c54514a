"""What a patient page tells search engines and chat apps: description, Open Graph and
Twitter card, canonical link and hreflang alternates, in the page's language."""

from __future__ import annotations

import struct
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from clinic_finder import create_app
from clinic_finder.clinic_pages import slugify
from clinic_finder.models import ACCEPTS_NEW_PATIENTS_VALID_FOR, Profession, now_utc

from .conftest import config_for_tests
from .factories import make_clinic

BASE = "https://finnklinikk.example"
HOSTILE_NAME = '"><script>alert(1)</script>'


class HeadTags(HTMLParser):
    """The <head>'s meta tags (by name or property) and links (by rel and hreflang)."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, list[str]] = {}
        self.alternates: dict[str, str] = {}
        self.canonical: list[str] = []
        self.robots: list[str] = []
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "head":
            self._in_head = True
        elif not self._in_head:
            return
        if tag == "meta" and ("property" in values or "name" in values):
            key = values.get("property") or values["name"]
            self.meta.setdefault(key, []).append(values.get("content") or "")
        elif tag == "link" and values.get("rel") == "canonical":
            self.canonical.append(values["href"])
        elif tag == "link" and values.get("rel") == "alternate" and "hreflang" in values:
            self.alternates[values["hreflang"]] = values["href"]

    def handle_endtag(self, tag):
        if tag == "head":
            self._in_head = False

    def one(self, key: str) -> str:
        (value,) = self.meta[key]
        return value


def head_of(response) -> HeadTags:
    assert response.status_code == 200
    tags = HeadTags()
    tags.feed(response.get_data(as_text=True))
    return tags


@pytest.fixture
def public_app(app):
    app.config["PUBLIC_BASE_URL"] = BASE
    return app


@pytest.fixture
def public_client(public_app):
    return public_app.test_client()


def _split(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


def assert_page_addresses(
    tags: HeadTags, path: str, language: str, asked_in_language: bool = True, **search: list[str]
):
    """Canonical, og:url and hreflang: absolute on PUBLIC_BASE_URL, the search kept."""
    (canonical,) = tags.canonical
    assert tags.one("og:url") == canonical
    assert set(tags.alternates) == {"nb", "en", "x-default"}
    # Asked in a language, the page is that language's address; asked without, x-default.
    assert tags.alternates[language if asked_in_language else "x-default"] == canonical
    for code in ("nb", "en", "x-default"):
        address, query = _split(tags.alternates[code])
        assert address == BASE + path
        expected = dict(search) | ({"lang": [code]} if code != "x-default" else {})
        assert query == expected


def assert_shareable(tags: HeadTags, language: str, title: str, description: str):
    """Description, Open Graph and Twitter card say the same, in the page's language."""
    assert tags.one("description") == description
    assert tags.one("og:description") == description
    assert tags.one("twitter:description") == description
    assert tags.one("og:title") == title
    assert tags.one("twitter:title") == title
    assert tags.one("og:site_name") == "Finn klinikk"
    assert tags.one("og:type") == "website"
    assert tags.one("og:locale") == {"nb": "nb_NO", "en": "en_GB"}[language]
    assert tags.meta["og:locale:alternate"] == [{"nb": "en_GB", "en": "nb_NO"}[language]]
    assert tags.one("twitter:card") == "summary_large_image"
    image = tags.one("og:image")
    assert image.startswith(BASE + "/static/") and image.endswith(".png")
    assert tags.one("twitter:image") == image
    assert (tags.one("og:image:width"), tags.one("og:image:height")) == ("1200", "630")
    assert tags.one("og:image:alt").startswith("Finn klinikk: ")


FINDER = {
    "nb": (
        "Finn klinikk",
        "Finn en autorisert kiropraktor, fysioterapeut eller manuellterapeut nær deg i Norge: "
        "søk på postnummer eller sted, og se priser, åpningstider og hvem som tar imot nye "
        "pasienter.",
    ),
    "en": (
        "Find a clinic",
        "Find a publicly licensed chiropractor, physiotherapist or manual therapist near you "
        "in Norway: search by postcode or place, and see prices, opening hours and who takes "
        "new patients.",
    ),
}


@pytest.mark.parametrize("language", ["nb", "en"])
def test_finder_without_a_search_describes_the_service(public_client, language):
    tags = head_of(public_client.get(f"/find?lang={language}&utm_source=newsletter"))
    assert_shareable(tags, language, *FINDER[language])
    assert_page_addresses(tags, "/find", language)


@pytest.mark.parametrize(
    ("language", "arguments", "description"),
    [
        ("nb", "profession=physiotherapist", "2 fysioterapeuter innen 10 km fra 0150 Oslo"),
        ("en", "profession=physiotherapist", "2 physiotherapists within 10 km of 0150 Oslo"),
        ("nb", "profession=chiropractor", "1 kiropraktor innen 10 km fra 0150 Oslo"),
        ("en", "profession=chiropractor", "1 chiropractor within 10 km of 0150 Oslo"),
        ("nb", "", "4 klinikker innen 10 km fra 0150 Oslo"),
        ("en", "", "4 clinics within 10 km of 0150 Oslo"),
        (
            "nb",
            "profession=chiropractor&profession=manual_therapist",
            "2 klinikker med kiropraktor eller manuellterapeut innen 10 km fra 0150 Oslo",
        ),
        (
            "en",
            "profession=chiropractor&profession=manual_therapist",
            "2 clinics with a chiropractor or manual therapist within 10 km of 0150 Oslo",
        ),
    ],
)
def test_result_list_says_what_it_lists(public_client, session, language, arguments, description):
    make_clinic(session, name="Fysio A", professions=(Profession.PHYSIOTHERAPIST,))
    make_clinic(session, name="Fysio B", professions=(Profession.PHYSIOTHERAPIST,))
    make_clinic(session, name="Kiro", professions=(Profession.CHIROPRACTOR,))
    make_clinic(session, name="Manuell", professions=(Profession.MANUAL_THERAPIST,))
    session.commit()
    url = f"/find?postcode=0150&radius=10&{arguments}&lang={language}&utm_campaign=x&fbclid=y"
    tags = head_of(public_client.get(url))
    title = {"nb": "Klinikker nær 0150 Oslo", "en": "Clinics near 0150 Oslo"}[language]
    assert_shareable(tags, language, title, description)
    search = {"postcode": ["0150"], "radius": ["10"]}
    if arguments:
        search["profession"] = sorted(value.split("=")[1] for value in arguments.split("&"))
    assert_page_addresses(tags, "/find", language, **search)


@pytest.mark.parametrize(
    ("language", "description"),
    [
        ("nb", "Ingen klinikker innen 5 km fra 9990 Båtsfjord."),
        ("en", "No clinics within 5 km of 9990 Båtsfjord."),
    ],
)
def test_result_list_with_nothing_within_the_radius_says_so(
    public_client, session, language, description
):
    make_clinic(session)
    session.commit()
    tags = head_of(public_client.get(f"/find?postcode=9990&radius=5&lang={language}"))
    assert tags.one("description").startswith(description)


def test_result_list_page_two_has_its_own_canonical(public_client, session, app):
    app.config["SEARCH_PAGE_SIZE"] = 1
    make_clinic(session, name="A")
    make_clinic(session, name="B")
    session.commit()
    tags = head_of(public_client.get("/find?postcode=0150&radius=10&page=2&lang=en"))
    assert_page_addresses(tags, "/find", "en", postcode=["0150"], radius=["10"], page=["2"])


@pytest.mark.parametrize(
    ("language", "title", "description"),
    [
        (
            "nb",
            "Isjias",
            "Isjias: hvilke behandlere som kan hjelpe, og klinikker nær deg som behandler det.",
        ),
        (
            "en",
            "Sciatica",
            "Sciatica: which clinicians can help, and clinics near you that treat it.",
        ),
    ],
)
def test_complaint_landing_names_the_complaint(public_client, language, title, description):
    tags = head_of(public_client.get(f"/find?complaint=sciatica&lang={language}&gclid=z"))
    assert_shareable(tags, language, title, description)
    assert_page_addresses(tags, "/find", language, complaint=["sciatica"])


def _clinic_path(clinic) -> str:
    return f"/clinics/{clinic.id}-{slugify(clinic.name)}"


@pytest.mark.parametrize(
    ("answer", "language", "description"),
    [
        (
            True,
            "nb",
            "Kiropraktor og fysioterapeut i 0150 Oslo. Tar imot nye pasienter. "
            "Se priser, åpningstider og tilgjengelighet.",
        ),
        (
            True,
            "en",
            "Chiropractor and physiotherapist in 0150 Oslo. Taking new patients. "
            "See prices, opening hours and access.",
        ),
        (
            False,
            "nb",
            "Kiropraktor og fysioterapeut i 0150 Oslo. Tar ikke imot nye pasienter for "
            "tiden. Se priser, åpningstider og tilgjengelighet.",
        ),
        (
            False,
            "en",
            "Chiropractor and physiotherapist in 0150 Oslo. Not taking new patients at the "
            "moment. See prices, opening hours and access.",
        ),
        (
            None,
            "nb",
            "Kiropraktor og fysioterapeut i 0150 Oslo. Spør klinikken om den tar imot nye "
            "pasienter. Se priser, åpningstider og tilgjengelighet.",
        ),
        (
            None,
            "en",
            "Chiropractor and physiotherapist in 0150 Oslo. Ask the clinic whether it takes "
            "new patients. See prices, opening hours and access.",
        ),
    ],
)
def test_clinic_page_says_professions_place_and_new_patients(
    public_client, session, answer, language, description
):
    clinic = make_clinic(
        session,
        name="Bryn Helse",
        city="Oslo",
        professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST),
        accepts_new_patients=answer,
    )
    session.commit()
    path = _clinic_path(clinic)
    tags = head_of(public_client.get(f"{path}?lang={language}&from=0150&utm_source=sms"))
    assert_shareable(tags, language, "Bryn Helse", description)
    assert_page_addresses(tags, path, language)


def test_clinic_page_with_an_old_answer_does_not_claim_new_patients(public_client, session):
    clinic = make_clinic(session, accepts_new_patients=True)
    for practice in clinic.practices:
        practice.accepts_new_patients_confirmed_at = (
            now_utc() - ACCEPTS_NEW_PATIENTS_VALID_FOR - timedelta(days=1)
        )
    session.commit()
    tags = head_of(public_client.get(_clinic_path(clinic) + "?lang=en"))
    assert "Ask the clinic whether it takes new patients." in tags.one("description")
    assert "Taking new patients" not in tags.one("description")


def test_hostile_clinic_name_comes_out_escaped_in_the_meta_tags(public_client, session):
    clinic = make_clinic(session, name=HOSTILE_NAME)
    session.commit()
    response = public_client.get(_clinic_path(clinic) + "?lang=en")
    head = response.get_data(as_text=True).split("</head>")[0]
    assert "<script>alert(1)" not in head
    assert '"><' not in head
    assert 'content="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in head
    tags = head_of(response)
    assert tags.one("og:title") == HOSTILE_NAME
    assert tags.one("twitter:title") == HOSTILE_NAME


@pytest.mark.parametrize(
    ("path", "language", "title", "description"),
    [
        (
            "/contact",
            "nb",
            "Be oss om hjelp",
            "Fortell oss hva du trenger, så hjelper Finn klinikk deg å finne en kiropraktor, "
            "fysioterapeut eller manuellterapeut nær deg. Vi svarer innen 24–48 timer på "
            "hverdager.",
        ),
        (
            "/contact",
            "en",
            "Ask us for help",
            "Tell us what you need, and Finn klinikk helps you find a chiropractor, "
            "physiotherapist or manual therapist near you. We answer within 24–48 hours on "
            "weekdays.",
        ),
        (
            "/contact/privacy",
            "nb",
            "Personvern når du ber oss om hjelp",
            "Slik behandler Finn klinikk det du skriver når du ber oss om hjelp til å finne en "
            "behandler: hva vi lagrer, hvor lenge, hvem som leser det, og hvilke rettigheter "
            "du har.",
        ),
        (
            "/contact/privacy",
            "en",
            "Privacy: when you ask us for help",
            "How Finn klinikk handles what you write when you ask us for help finding a "
            "clinician: what we keep, for how long, who reads it, and your rights.",
        ),
    ],
)
def test_contact_pages_describe_themselves(public_client, path, language, title, description):
    # What the form was opened with (a clinic, a complaint) is not part of its address.
    tags = head_of(public_client.get(f"{path}?lang={language}&complaint=sciatica&utm_medium=x"))
    assert_shareable(tags, language, title, description)
    assert_page_addresses(tags, path, language)


def test_share_image_is_our_own_1200_by_630_png(public_client):
    tags = head_of(public_client.get("/find?lang=en"))
    response = public_client.get(urlsplit(tags.one("og:image")).path)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    data = response.get_data()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1200, 630)


def test_embed_stays_out_of_search_engines_and_previews(public_client):
    tags = head_of(public_client.get("/embed"))
    assert tags.one("robots") == "noindex"
    assert "description" not in tags.meta
    assert not any(key.startswith(("og:", "twitter:")) for key in tags.meta)
    assert tags.canonical == [] and tags.alternates == {}


def test_staff_pages_have_no_share_tags(public_client):
    tags = HeadTags()
    tags.feed(public_client.get("/staff/sign-in").get_data(as_text=True))
    assert not any(key.startswith("og:") for key in tags.meta)
    assert tags.alternates == {}


@pytest.mark.parametrize("language", ["nb", "en"])
def test_address_without_a_language_is_its_own_canonical(public_client, session, language):
    # Lighthouse and search engines: a canonical pointing at another hreflang address fails.
    clinic = make_clinic(session, name="Bryn Helse")
    session.commit()
    path = _clinic_path(clinic)
    response = public_client.get(path, headers={"Accept-Language": language})
    tags = head_of(response)
    assert tags.canonical == [BASE + path]
    assert tags.one("og:locale") == {"nb": "nb_NO", "en": "en_GB"}[language]
    assert_page_addresses(tags, path, language, asked_in_language=False)


def test_canonical_follows_port_in_development(database_url, monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("PORT", "8123")
    client = create_app(config_for_tests(database_url)).test_client()
    tags = head_of(client.get("/find?lang=nb"))
    assert tags.canonical == ["http://127.0.0.1:8123/find?lang=nb"]
    assert tags.alternates["en"] == "http://127.0.0.1:8123/find?lang=en"
    assert tags.alternates["x-default"] == "http://127.0.0.1:8123/find"
    assert tags.one("og:image").startswith("http://127.0.0.1:8123/static/")


def test_explicit_public_base_url_wins_over_port(database_url, monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://finn.example")
    client = create_app(config_for_tests(database_url)).test_client()
    tags = head_of(client.get("/find?lang=en"))
    assert tags.canonical == ["https://finn.example/find?lang=en"]
    assert tags.alternates["nb"] == "https://finn.example/find?lang=nb"
