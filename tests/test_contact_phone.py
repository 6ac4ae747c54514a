"""The contact form as a patient on a phone meets it: a short privacy summary with the full
notice one tap away, a consent error in a few words, the profession already chosen, and
where to turn when it cannot wait."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from clinic_finder.contact_requests import NOTICE_VERSION
from clinic_finder.models import Profession

from .conftest import csrf_token_from
from .factories import make_clinic

FORM = {
    "name": "Kari Nordmann",
    "email": "kari@example.org",
    "phone": "",
    "postcode": "0150",
    "profession": "",
    "message": "Vondt i korsryggen etter flytting.",
    "duration": "weeks",
    "contact_time": "morning",
    "consent": "y",
}
CONSENT_ERROR = {
    "nb": "Du må samtykke for at vi kan behandle henvendelsen.",
    "en": "You must agree so that we can handle your request.",
}
URGENT_LINE = {
    "nb": "Akutte plager? Ring legevakten på 116 117. Er det livstruende, ring 113.",
    "en": "Urgent? Call the out-of-hours service (legevakt) on 116 117. "
    "If it is life-threatening, call 113.",
}
# One words from each warning sign, as data/urgent_care.json has them.
WARNING_SIGNS = {
    "nb": ("nummen i skrittet", "holde på urin eller avføring", "svakere i ett eller begge beina"),
    "en": ("numb between your legs", "hold in urine or stools", "weakness in one or both legs"),
}


class _Text(HTMLParser):
    """The text inside the first element matching a tag and an attribute (any depth)."""

    def __init__(self, tag: str, attribute: tuple[str, str]) -> None:
        super().__init__()
        self.tag, self.attribute = tag, attribute
        self.depth = 0
        self.found: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if self.depth:
            if tag == self.tag:
                self.depth += 1
        elif tag == self.tag and self._matches(dict(attrs)):
            self.depth = 1
            self.parts = []

    def _matches(self, attrs: dict) -> bool:
        name, value = self.attribute
        return value in (attrs.get(name) or "").split() or attrs.get(name) == value

    def handle_endtag(self, tag) -> None:
        if self.depth and tag == self.tag:
            self.depth -= 1
            if not self.depth:
                self.found.append(" ".join("".join(self.parts).split()))

    def handle_data(self, data) -> None:
        if self.depth:
            self.parts.append(data)


def texts(page: str, tag: str, name: str, value: str) -> list[str]:
    """The text of every ``tag`` whose ``name`` attribute holds ``value``."""
    parser = _Text(tag, (name, value))
    parser.feed(page)
    return parser.found


def page_in(client, url: str, language: str) -> str:
    separator = "&" if "?" in url else "?"
    response = client.get(f"{url}{separator}lang={language}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def send(client, language: str, url: str = "/contact", **changes):
    data = {**FORM, **changes}
    data = {key: value for key, value in data.items() if value is not None}
    data["csrf_token"] = csrf_token_from(
        client, f"{url}{'&' if '?' in url else '?'}lang={language}"
    )
    return client.post("/contact", data=data)


def selected_profession(page: str) -> str:
    """The profession chosen in the form: "" is "Not sure — advise me"."""
    select = re.search(r'<select[^>]*name="profession".*?</select>', page, re.S).group(0)
    chosen = re.findall(r'<option selected value="([^"]*)"', select)
    assert len(chosen) == 1, select
    return chosen[0]


@pytest.mark.parametrize("language", ["nb", "en"])
def test_privacy_comes_as_a_short_summary_with_the_full_notice_folded_beside_it(client, language):
    page = page_in(client, "/contact", language)
    summary = texts(page, "section", "class", "privacy-summary")[0]
    folded = texts(page, "details", "class", "ds-details")[0]
    days = {"nb": "vi sletter det etter 180 dager", "en": "we delete it after 180 days"}
    assert "Finn klinikk" in summary and days[language] in summary
    # The summary is a few lines; the full notice is inside the <details>, one tap away.
    assert len(summary) - len(folded) < 420
    for words in {
        "nb": ("Behandlingsansvarlig", "Rettslig grunnlag", "Datatilsynet", "180 dager etter"),
        "en": ("Who is responsible", "Legal basis", "Datatilsynet", "180 days after"),
    }[language]:
        assert words in folded
    assert 'href="/contact/privacy"' in page
    # Summary and notice come before the consent box, the notice folded away.
    assert page.index("privacy-summary") < page.index('name="consent"')
    assert '<details class="ds-details" open' not in page


@pytest.mark.parametrize("language", ["nb", "en"])
def test_full_privacy_notice_is_a_page_of_its_own_naming_the_service(client, language):
    page = page_in(client, "/contact/privacy", language)
    main = texts(page, "main", "id", "main")[0]
    responsible = {
        "nb": "Behandlingsansvarlig: Finn klinikk,",
        "en": "Who is responsible: Finn klinikk,",
    }
    assert responsible[language] in main
    assert {"nb": "Sist oppdatert", "en": "Last updated"}[language] in main
    assert "clinic_finder" not in main and NOTICE_VERSION not in main


@pytest.mark.parametrize("url", ["/contact", "/contact/privacy"])
def test_contact_pages_show_patients_no_package_name_or_version(client, url):
    for language in ("nb", "en"):
        main = texts(page_in(client, url, language), "main", "id", "main")[0]
        assert "clinic_finder" not in main
        assert not re.search(r"\d{4}-\d{2}-\d{2}/\d+d|[Vv]ersjon|[Vv]ersion", main)


@pytest.mark.parametrize("language", ["nb", "en"])
def test_missing_consent_is_said_in_a_few_words_and_nothing_typed_is_lost(client, language):
    response = send(client, language, consent=None, phone="+47 91 23 45 67")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    summary = texts(page, "div", "class", "ds-error-summary")[0]
    under_the_box = texts(page, "p", "id", "consent-error")
    assert under_the_box == [CONSENT_ERROR[language]]
    assert summary.endswith(CONSENT_ERROR[language])
    assert ".:" not in page
    label = texts(page, "label", "for", "consent")[0]
    assert page.count(label) == 1  # only beside the box, not repeated in the error
    for typed in ("Kari Nordmann", "kari@example.org", "+47 91 23 45 67", "korsryggen"):
        assert typed in page
    assert 'value="0150"' in page


def test_error_summary_follows_a_question_with_its_answer_not_a_colon(client):
    page = send(client, "nb", message="", consent=None).get_data(as_text=True)
    summary = texts(page, "div", "class", "ds-error-summary")[0]
    assert "Hva plager deg? Fortell kort hva som plager deg." in summary
    assert "?:" not in summary and ".:" not in summary


def test_form_posted_without_its_csrf_token_is_refused(client):
    response = client.post("/contact", data=FORM)
    assert response.status_code == 400


def test_consent_checkbox_comes_before_its_label_in_designsystemet_markup(client):
    page = page_in(client, "/contact", "en")
    fields = re.findall(r'<div class="ds-field checkbox-field">(.*?)</div>', page, re.S)
    consent = next(field for field in fields if 'id="consent"' in field)
    box = r'<input class="ds-input" id="consent" name="consent" required type="checkbox" value="y">'
    label = r'<label class="ds-label" data-weight="regular" for="consent">'
    assert re.match(rf"\s*{box}\s*{label}", consent), consent


@pytest.mark.parametrize(
    ("professions", "searched", "chosen"),
    [
        ((Profession.MANUAL_THERAPIST,), "", "manual_therapist"),
        ((Profession.MANUAL_THERAPIST,), "chiropractor", "manual_therapist"),
        (
            (Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST),
            "physiotherapist",
            "physiotherapist",
        ),
        ((Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST), "", ""),
        ((Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST), "manual_therapist", ""),
    ],
)
def test_profession_is_prefilled_from_the_clinic_asked_about(
    client, session, professions, searched, chosen
):
    clinic = make_clinic(session, professions=professions)
    session.commit()
    page = page_in(client, f"/contact?clinic={clinic.id}&profession={searched}", "en")
    assert selected_profession(page) == chosen


def test_profession_searched_for_is_prefilled_without_a_clinic(client):
    assert selected_profession(page_in(client, "/contact?profession=chiropractor", "en")) == (
        "chiropractor"
    )
    assert selected_profession(page_in(client, "/contact?profession=naprapat", "en")) == ""


@pytest.mark.parametrize("language", ["nb", "en"])
def test_urgent_line_with_phone_links_is_on_the_form_and_its_confirmation(client, language):
    form = page_in(client, "/contact", language)
    response = send(client, language)
    assert response.headers["Location"] == "/contact/sent"
    confirmation = client.get("/contact/sent").get_data(as_text=True)
    for page in (form, confirmation):
        alert = texts(page, "div", "class", "urgent-care")
        assert alert == [URGENT_LINE[language]]
        assert '<a class="ds-link" href="tel:116117">116&nbsp;117</a>' in page
        assert '<a class="ds-link" href="tel:113">113</a>' in page


@pytest.mark.parametrize("language", ["nb", "en"])
@pytest.mark.parametrize("complaint", ["sciatica", "low-back-pain"])
def test_back_complaint_adds_the_warning_signs_on_form_error_and_confirmation(
    client, language, complaint
):
    url = f"/contact?complaint={complaint}"
    form = page_in(client, url, language)
    refused = send(client, language, url, consent=None, complaint=complaint)
    assert refused.status_code == 400
    sent = send(client, language, url, complaint=complaint)
    assert sent.status_code == 302
    confirmation = client.get("/contact/sent").get_data(as_text=True)
    for page in (form, refused.get_data(as_text=True), confirmation):
        alert = texts(page, "div", "class", "urgent-care")[0]
        assert all(sign in alert for sign in WARNING_SIGNS[language]), alert
        assert 'class="ds-alert urgent-care" data-color="warning"' in page


@pytest.mark.parametrize(
    "url", ["/contact", "/contact?complaint=neck-pain", "/contact?complaint=x"]
)
def test_no_warning_signs_without_a_back_complaint(client, url):
    for language in ("nb", "en"):
        page = page_in(client, url, language)
        alert = texts(page, "div", "class", "urgent-care")[0]
        assert alert == URGENT_LINE[language]
        assert 'class="ds-alert urgent-care" data-color="info"' in page
    sent = send(client, "en", "/contact?complaint=sciatica", complaint="neck-pain")
    assert sent.status_code == 302
    confirmation = client.get("/contact/sent").get_data(as_text=True)
    assert WARNING_SIGNS["en"][0] not in confirmation


def test_a_later_request_without_a_complaint_drops_the_warning_signs(client):
    assert (
        send(client, "en", "/contact?complaint=sciatica", complaint="sciatica").status_code == 302
    )
    assert WARNING_SIGNS["en"][0] in client.get("/contact/sent").get_data(as_text=True)
    assert send(client, "en", complaint="").status_code == 302
    assert WARNING_SIGNS["en"][0] not in client.get("/contact/sent").get_data(as_text=True)


def test_the_complaint_is_carried_in_the_form_not_the_confirmation_address(client):
    page = page_in(client, "/contact?complaint=sciatica", "en")
    assert '<input id="complaint" name="complaint" type="hidden" value="sciatica">' in page
    response = send(client, "en", complaint="sciatica")
    assert response.headers["Location"] == "/contact/sent"
