"""The contact request form and API: consent, validation, spam defences, stored first."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from clinic_finder.contact_requests import NOTICE_VERSION, contains_fodselsnummer
from clinic_finder.extensions import db
from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import ContactRequest, OutboxMessage, Profession, RequestStatus

from .conftest import csrf_token_from, deliver_due, post_form
from .factories import make_clinic
from .helpers import API_BODY

VALID_FODSELSNUMMER = "15076500565"

FORM = {
    "name": "Kari Nordmann",
    "email": "kari@example.org",
    "phone": "",
    "postcode": "0150",
    "profession": "chiropractor",
    "message": "Vondt i korsryggen etter flytting.",
    "duration": "weeks",
    "contact_time": "morning",
    "consent": "y",
}


def send(client, **changes):
    data = {**FORM, **changes}
    data = {key: value for key, value in data.items() if value is not None}
    data["csrf_token"] = csrf_token_from(client, "/contact")
    return client.post("/contact", data=data)


def stored(app) -> list[ContactRequest]:
    with app.app_context():
        return list(db.session.scalars(select(ContactRequest)))


class _HiddenInputs(HTMLParser):
    """The hidden inputs of the contact form, as a browser would send them back."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._in_contact_form = False

    def handle_starttag(self, tag, attrs) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self._in_contact_form = attributes.get("action") == "/contact"
        elif tag == "input" and self._in_contact_form and attributes.get("type") == "hidden":
            self.values[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag) -> None:
        if tag == "form":
            self._in_contact_form = False


def hidden_inputs(page: str) -> dict[str, str]:
    parser = _HiddenInputs()
    parser.feed(page)
    assert "csrf_token" in parser.values, "no contact form on the page"
    return parser.values


def send_back(client, page: str):
    """Fill in the form on ``page`` and send it with its own hidden inputs, as a browser does."""
    return client.post("/contact", data={**FORM, **hidden_inputs(page)})


def test_form_has_unticked_consent_and_the_privacy_notice(client):
    page = client.get("/contact?postcode=0150&profession=chiropractor").get_data(as_text=True)
    assert 'name="consent"' in page and "checked" not in page.split('name="consent"')[1][:40]
    for words in (
        "Who is responsible",
        "Legal basis",
        "article 9(2)(a)",
        "Who sees it",
        "180 days",
        "withdraw your consent",
        "Datatilsynet",
    ):
        assert words in page
    assert 'value="0150"' in page
    assert "national identity number" in page


def test_request_is_stored_with_consent_record_and_confirmed_with_reference(app, client):
    response = send(client)
    assert response.status_code == 302
    (request,) = stored(app)
    assert request.status is RequestStatus.NEW
    assert request.profession is Profession.CHIROPRACTOR
    assert request.consent_notice_version == f"{NOTICE_VERSION}/180d"
    assert request.consent_given_at is not None
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert request.reference in page and "24–48 hours" in page
    assert request.reference not in response.headers["Location"]


@pytest.mark.parametrize(
    ("accept_language", "expected"), [("nb-NO,nb;q=0.9", "nb"), ("en-GB,en;q=0.8", "en")]
)
def test_request_keeps_the_language_the_patient_wrote_in(app, client, accept_language, expected):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept_language
    assert send(client).status_code == 302
    (request,) = stored(app)
    assert request.language == expected


def test_api_request_keeps_the_visitors_language(app, client):
    response = client.post(
        "/api/v1/contact-requests", json=API_BODY, headers={"Accept-Language": "nb-NO"}
    )
    assert response.status_code == 201
    (request,) = stored(app)
    assert request.language == "nb"


def test_notifications_carry_no_health_details(app, client):
    send(client)
    with app.app_context():
        messages = list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        request = db.session.scalars(select(ContactRequest)).one()
    assert [m.kind for m in messages] == ["request.staff", "request.confirmation"]
    staff, patient = messages
    assert staff.to_address == app.config["STAFF_INBOX_EMAIL"]
    assert f"/staff/requests/{request.id}" in staff.body and request.reference in staff.body
    assert patient.to_address == "kari@example.org"
    for message in messages:
        assert "korsryggen" not in message.body and "korsryggen" not in message.subject
        assert "Kari" not in message.subject


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"consent": None}, "You must agree so that we can handle your request."),
        ({"email": "", "phone": ""}, "Give a phone number or an email address"),
        ({"email": "kari@"}, "not a valid email address"),
        ({"phone": "123", "email": ""}, "not a valid phone number"),
        ({"postcode": "9999"}, "We do not know that postcode"),
        ({"message": ""}, "Tell us briefly what is bothering you"),
        ({"message": "x" * 2001}, "under 2000 characters"),
        ({"profession": "naprapat"}, "Choose chiropractor"),
        ({"message": f"Mitt fødselsnummer er {VALID_FODSELSNUMMER}"}, "national identity number"),
        ({"message": "Nummer 150765 00565 her"}, "national identity number"),
        ({"name": ""}, "Tell us your name"),
    ],
)
def test_bad_request_shows_the_form_with_a_clear_error(app, client, changes, message):
    response = send(client, **changes)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert stored(app) == []


def test_ordinary_numbers_are_not_mistaken_for_identity_numbers():
    assert not contains_fodselsnummer("Ring 22334455 eller 12345678901")
    assert contains_fodselsnummer(f"fnr {VALID_FODSELSNUMMER}")


def test_honeypot_filled_is_refused_with_a_message(app, client):
    response = send(client, website="http://spam.example")
    assert response.status_code == 400
    assert "Leave this field empty" in response.get_data(as_text=True)
    assert stored(app) == []


def test_too_many_requests_from_one_address_are_refused_clearly(app, client):
    statuses = [send(client).status_code for _ in range(6)]
    assert statuses == [302] * 5 + [429]
    page = send(client).get_data(as_text=True)
    assert "several requests in a short time" in page
    assert len(stored(app)) == 5


def test_form_about_a_clinic_sends_it_with_the_form_and_stores_it(app, client, session):
    clinic = make_clinic(session, name="Ryggklinikken")
    session.commit()
    page = client.get(f"/contact?clinic={clinic.id}&postcode=0150").get_data(as_text=True)
    assert "You are asking about <strong>Ryggklinikken</strong>" in page
    assert hidden_inputs(page)["clinic_id"] == str(clinic.id)

    response = send_back(client, page)

    assert response.status_code == 302
    (request,) = stored(app)
    assert request.clinic_id == clinic.id


def test_form_shown_again_keeps_the_clinic(app, client, session):
    clinic = make_clinic(session, name="Ryggklinikken")
    session.commit()
    page = client.get(f"/contact?clinic={clinic.id}").get_data(as_text=True)
    again = client.post("/contact", data={**FORM, **hidden_inputs(page), "postcode": "9999"})
    assert again.status_code == 400
    page = again.get_data(as_text=True)
    assert "You are asking about <strong>Ryggklinikken</strong>" in page

    assert send_back(client, page).status_code == 302
    assert stored(app)[0].clinic_id == clinic.id


def _clinic_id(session, kind: str) -> str:
    """A clinic id the form must not accept, of the given kind."""
    if kind == "deactivated":
        return str(make_clinic(session, name="Lukket", active=False).id)
    if kind == "without clinicians":
        return str(make_clinic(session, name="Tom", professions=()).id)
    if kind == "whose clinicians left":
        clinic = make_clinic(session, name="Forlatt", professions=tuple(Profession))
        for practice in clinic.practices:
            practice.active = False
        return str(clinic.id)
    if kind == "whose clinician's licence is suspended":
        return str(
            make_clinic(session, name="Suspendert", licence_status=LicenceStatus.SUSPENDED).id
        )
    if kind == "unknown":
        return str(make_clinic(session).id + 1000)
    return kind


BAD_CLINIC_IDS = [
    "deactivated",
    "without clinicians",
    "whose clinicians left",
    "whose clinician's licence is suspended",
    "unknown",
    "abc",
    "12.5",
    "0",
    "-3",
    "²",
    str(2**31),
    "9" * 40,
]


@pytest.mark.parametrize("kind", BAD_CLINIC_IDS)
def test_form_drops_a_clinic_it_cannot_accept_and_says_so(app, client, session, kind):
    clinic_id = _clinic_id(session, kind)
    session.commit()
    page = client.get("/contact").get_data(as_text=True)

    response = client.post("/contact", data={**FORM, **hidden_inputs(page), "clinic_id": clinic_id})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "We cannot find the clinic you asked about any more" in page
    assert stored(app) == []
    # The form shown again no longer carries it, so sending it again goes through.
    assert hidden_inputs(page)["clinic_id"] == ""
    assert send_back(client, page).status_code == 302
    assert stored(app)[0].clinic_id is None


@pytest.mark.parametrize("kind", BAD_CLINIC_IDS)
def test_link_about_a_clinic_patients_cannot_find_shows_the_plain_form(client, session, kind):
    clinic_id = _clinic_id(session, kind)
    session.commit()
    response = client.get(f"/contact?clinic={clinic_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You are asking about" not in page
    assert hidden_inputs(page)["clinic_id"] == ""


def test_stored_notice_version_names_the_retention_period_shown_but_patients_see_no_version(app):
    versions = []
    for days in (180, 30):
        app.config["REQUEST_RETENTION_DAYS"] = days
        client = app.test_client()
        page = client.get("/contact").get_data(as_text=True)
        assert f"we delete it after {days} days" in page  # the summary
        assert f"{days} days after we receive it" in page  # the full notice
        assert NOTICE_VERSION not in page and "Notice version" not in page
        assert send_back(client, page).status_code == 302
        versions.append(stored(app)[-1].consent_notice_version)
    assert versions == [f"{NOTICE_VERSION}/180d", f"{NOTICE_VERSION}/30d"]


def test_results_page_links_to_the_contact_form(client, session):
    clinic = make_clinic(session)
    session.commit()
    page = client.get("/find?postcode=0150&profession=physiotherapist").get_data(as_text=True)
    assert "/contact?postcode=0150&amp;profession=physiotherapist" in page
    assert f"/contact?clinic={clinic.id}&amp;postcode=0150" in page


def test_contact_pages_are_not_cached(client):
    assert client.get("/contact").headers["Cache-Control"] == "no-store"


def test_confirmation_page_is_not_cached(client):
    sent = send(client)
    assert sent.headers["Location"] == "/contact/sent"
    confirmation = client.get("/contact/sent")
    assert confirmation.status_code == 200
    assert confirmation.headers["Cache-Control"] == "no-store"


def test_stored_request_never_appears_in_logs(app, client, caplog):
    caplog.set_level("DEBUG")
    send(client)
    assert "korsryggen" not in caplog.text and "Kari" not in caplog.text


# --- JSON API ---------------------------------------------------------------------------


def test_api_stores_request_and_answers_201_with_reference(app, client):
    response = client.post("/api/v1/contact-requests", json=API_BODY)
    assert response.status_code == 201
    reference = response.get_json()["reference"]
    (request,) = stored(app)
    assert request.reference == reference and request.source == "api"
    assert request.profession is None


def test_api_names_every_bad_field(app, client):
    body = {**API_BODY, "postcode": "abcd", "consent": False, "email": "x", "profession": "x"}
    response = client.post("/api/v1/contact-requests", json=body)
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"postcode", "consent", "email", "profession"}
    assert stored(app) == []


def test_api_refuses_non_json(client):
    response = client.post("/api/v1/contact-requests", data={"name": "x"})
    assert response.status_code == 400
    assert "body" in response.get_json()["errors"]


def test_api_refuses_origins_not_allowed(app, client):
    response = client.post(
        "/api/v1/contact-requests", json=API_BODY, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert stored(app) == []


def test_api_allows_configured_article_site_with_cors(app, client):
    app.config["CONTACT_ALLOWED_ORIGINS"] = ["https://artikler.example"]
    headers = {"Origin": "https://artikler.example"}
    preflight = client.options("/api/v1/contact-requests", headers=headers)
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://artikler.example"
    response = client.post("/api/v1/contact-requests", json=API_BODY, headers=headers)
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == "https://artikler.example"


def test_api_rate_limit_answers_429_json(client):
    statuses = [
        client.post("/api/v1/contact-requests", json=API_BODY).status_code for _ in range(6)
    ]
    assert statuses[-1] == 429
    assert client.post("/api/v1/contact-requests", json=API_BODY).is_json


def test_request_count_matches_submissions(app, client):
    for _ in range(3):
        send(client)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ContactRequest)) == 3


# --- hardening round two: patient emails echo nothing the sender typed --------------------

TYPED_NAME = "Kari <b>Nordmann</b> {{7*7}}"


def test_patient_emails_echo_nothing_the_sender_typed(app, client, staff_client, runner, smtp):
    with app.app_context():
        clinic = make_clinic(
            db.session, name="Ryggsenteret", email="post@ryggsenteret.example", postcode="5003"
        )
        db.session.commit()
        clinic_id = clinic.id
    sent = send(client, name=TYPED_NAME, email="pia@example.org", phone="+47 912 34 567")
    assert sent.status_code == 302
    (request,) = stored(app)
    url = f"/staff/requests/{request.id}"
    referred = post_form(
        staff_client, url, f"{url}/referral", clinic_id=str(clinic_id), tell_patient="y"
    )
    assert referred.status_code == 302
    deliver_due(app, runner)

    to_patient = [mail.message for mail in smtp.received if mail.rcpt_tos == ["pia@example.org"]]
    assert len(to_patient) == 2  # the confirmation and the referral notice
    for message in to_patient:
        text = message["Subject"] + message.get_content()
        for typed in ("Kari", "Nordmann", "<b>", "7*7", "korsryggen", "912", "pia@"):
            assert typed not in text
        assert request.reference in text
    # Staff and the clinic still see who the patient is.
    (to_clinic,) = [m.message for m in smtp.received if m.rcpt_tos == ["post@ryggsenteret.example"]]
    assert TYPED_NAME in to_clinic.get_content()


def test_patient_confirmation_greets_in_the_patients_language_without_a_name(app, client):
    client.get("/contact?lang=nb")
    assert send(client).status_code == 302
    with app.app_context():
        confirmation = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "request.confirmation")
        ).one()
    assert confirmation.subject.startswith("Vi har mottatt henvendelsen din (KF-")
    assert confirmation.body.startswith("Hei,\n\nTakk for at du tok kontakt. Referansen din er KF-")
    assert "Kari" not in confirmation.body


# --- hardening round two: addresses we can send to ----------------------------------------

API = "/api/v1/contact-requests"
NON_ASCII_LOCAL_PART = "øystein@eksempel.example"


def test_form_refuses_an_address_we_cannot_send_to_and_keeps_what_was_typed(app, client):
    response = send(client, email=NON_ASCII_LOCAL_PART, message="Vondt i skulderen om natta.")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "We cannot send email to" in page
    assert 'aria-invalid="true"' in re.search(r'<input[^>]*name="email"[^>]*>', page).group(0)
    assert "Vondt i skulderen om natta." in page and 'value="Kari Nordmann"' in page
    assert stored(app) == []


def test_api_refuses_an_address_we_cannot_send_to(app, client):
    response = client.post(API, json={**API_BODY, "email": NON_ASCII_LOCAL_PART})
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"email"}
    assert stored(app) == []


def test_internationalised_domain_is_stored_in_ascii_and_the_confirmation_arrives(
    app, client, runner, smtp
):
    assert send(client, email="kari@blåbær.no").status_code == 302
    (request,) = stored(app)
    assert request.email == "kari@xn--blbr-roah.no"
    deliver_due(app, runner)
    assert ["kari@xn--blbr-roah.no"] in [mail.rcpt_tos for mail in smtp.received]


def test_form_shown_again_with_everything_typed_when_storing_fails(
    app, client, refusing_contact_requests
):
    response = send(client, name="Refused Writer", message="Vondt i hofta, verst om morgenen.")
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "could not store your request" in page
    assert 'value="Refused Writer"' in page and 'value="kari@example.org"' in page
    assert "Vondt i hofta, verst om morgenen." in page
    assert stored(app) == []
    # The form shown again sends as it is, once the database takes it.
    assert send_back(client, page).status_code == 302


def test_api_answers_json_when_storing_fails(app, client, refusing_contact_requests):
    response = client.post(API, json={**API_BODY, "name": "Refused Writer"})
    assert response.status_code == 503
    assert response.is_json and set(response.get_json()) == {"error", "message"}
    assert int(response.headers["Retry-After"]) > 0
    assert stored(app) == []


# --- hardening round two: one contact limit that only stored requests use up ---------------

FOREIGN_ORIGIN = {"Origin": "https://evil.example"}


def test_refused_posts_do_not_count_toward_the_contact_limit(app, client):
    for _ in range(5):
        assert send(client, consent=None).status_code == 400
        assert client.post(API, json=API_BODY, headers=FOREIGN_ORIGIN).status_code == 403
    statuses = [send(client).status_code for _ in range(6)]
    assert statuses == [302] * 5 + [429]
    assert len(stored(app)) == 5


def test_form_and_api_share_one_contact_limit(app, client):
    assert [send(client).status_code for _ in range(3)] == [302] * 3
    assert [client.post(API, json=API_BODY).status_code for _ in range(2)] == [201] * 2
    assert send(client).status_code == 429
    refused = client.post(API, json=API_BODY)
    assert refused.status_code == 429 and refused.is_json
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert len(stored(app)) == 5


def _clock_texts(first, last, locale: str) -> set[str]:
    """How a page may show a time between ``first`` and ``last`` in Norway, to the minute."""
    from babel.dates import format_time, get_timezone

    oslo = get_timezone("Europe/Oslo")
    minute = first.replace(second=0, microsecond=0)
    texts = set()
    while minute <= last + timedelta(minutes=1):
        if locale == "nb":
            texts.add(minute.astimezone(oslo).strftime("kl. %H.%M"))
        else:
            texts.add(format_time(minute, "short", tzinfo=oslo, locale=locale))
        minute += timedelta(minutes=1)
    return texts


def _limited_to_one_an_hour(app, client, page: str) -> tuple:
    """Use up a one-an-hour limit with the form on ``page``; return when it frees again."""
    app.config["CONTACT_RATE_LIMIT"] = "1 per hour"
    before = datetime.now(UTC)
    assert send_back(client, page).status_code == 302
    after = datetime.now(UTC)
    return before + timedelta(hours=1), after + timedelta(hours=1, seconds=1)


def test_rate_limited_form_keeps_what_was_typed_says_when_and_offers_the_clinics_phone(
    app, client, session
):
    clinic = make_clinic(session, name="Ryggklinikken", phone="+47 22 33 44 55")
    session.commit()
    page = client.get(f"/contact?clinic={clinic.id}").get_data(as_text=True)
    frees = _limited_to_one_an_hour(app, client, page)

    refused = client.post(
        "/contact", data={**FORM, **hidden_inputs(page), "message": "Stikk i korsryggen."}
    )

    assert refused.status_code == 429
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.headers["Cache-Control"] == "no-store"
    text = refused.get_data(as_text=True)
    assert "several requests in a short time" in text
    assert "Stikk i korsryggen." in text and 'value="Kari Nordmann"' in text
    assert any(clock in text for clock in _clock_texts(*frees, "en")), text
    assert "You are asking about <strong>Ryggklinikken</strong>" in text
    assert 'href="tel:+4722334455"' in text and "+47 22 33 44 55" in text
    assert hidden_inputs(text)["clinic_id"] == str(clinic.id)
    assert len(stored(app)) == 1


def test_rate_limited_form_in_norwegian_says_the_time_as_norwegians_write_it(app, client):
    page = client.get("/contact?lang=nb").get_data(as_text=True)
    frees = _limited_to_one_an_hour(app, client, page)

    refused = client.post("/contact", data={**FORM, **hidden_inputs(page)})

    assert refused.status_code == 429
    text = refused.get_data(as_text=True)
    assert any(clock in text for clock in _clock_texts(*frees, "nb")), text
    # Not about a clinic: the search, with its phone numbers, for their postcode.
    assert "/find?postcode=0150" in text
    assert "Vondt i korsryggen etter flytting." in text


# --- hardening round two: contact-form edges ---------------------------------------------


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "n", "Y", "true", "on"])
def test_consent_is_only_the_checkboxs_own_value(app, client, value):
    response = send(client, consent=value)
    assert response.status_code == 400
    assert "You must agree so that we can handle your request." in response.get_data(as_text=True)
    assert stored(app) == []


@pytest.mark.parametrize(("value", "shared"), [("y", True), ("0", False), ("no", False)])
def test_sharing_the_description_is_only_the_checkboxs_own_value(app, client, value, shared):
    assert send(client, share_message_with_clinic=value).status_code == 302
    (request,) = stored(app)
    assert request.share_message_with_clinic is shared


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", f"{VALID_FODSELSNUMMER}@example.org"),
        ("email", "kari.150765-00565@example.org"),
        ("message", "Fnr ١٥٠٧٦٥٠٠٥٦٥"),  # Arabic-Indic digits
        ("message", "Fnr ۱۵۰۷۶۵۰۰۵۶۵"),  # Extended Arabic-Indic (Persian) digits
        ("message", "Fnr １５０７６５ ００５６５"),  # fullwidth digits
        ("message", "Fnr 150765\u00a000565"),  # no-break space
        ("message", "Fnr 150765\u202f00565"),  # narrow no-break space
        ("message", "Fnr 15\u200907\u200965 005\u200965"),  # thin spaces
        ("message", "Fnr 15 07 65 00565"),
        ("name", "Kari ١٥٠٧٦٥ ٠٠٥٦٥"),
        ("phone", "150765 00565"),
    ],
)
def test_identity_number_is_refused_however_it_is_written(app, client, field, value):
    response = send(client, **{field: value})
    assert response.status_code == 400
    assert "national identity number (fødselsnummer). We do not need it" in response.get_data(
        as_text=True
    )
    assert stored(app) == []


@pytest.mark.parametrize(
    "text",
    [
        "Ring 22 33 44 55 eller 98 76 54 32",
        "Ring 22334455 eller 12345678901",
        "Vondt siden 15.07.2024, 3 uker",
        "Nummer 150765 00566",  # wrong check digits
    ],
)
def test_numbers_that_are_no_identity_number_are_not_mistaken_for_one(text):
    assert not contains_fodselsnummer(text)


@pytest.mark.parametrize("field", ["message", "name"])
def test_contact_form_refuses_a_file_naming_the_field(app, client, field):
    data = {**FORM, field: (io.BytesIO(b"Vondt i ryggen"), "vondt.txt")}
    data["csrf_token"] = csrf_token_from(client, "/contact")
    response = client.post("/contact", data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert f"&#39;{field}&#39;" in response.get_data(as_text=True)
    assert stored(app) == []


def test_contact_api_refuses_a_file_naming_the_field(app, client):
    data = {"message": (io.BytesIO(b"Vondt"), "vondt.txt"), "name": "Kari"}
    response = client.post(API, data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"message"}


@pytest.mark.parametrize(("slug", "kept"), [("sciatica", "sciatica"), ("no-such-thing", None)])
def test_form_from_an_article_stores_the_complaint_it_came_about(app, client, slug, kept):
    page = client.get(f"/contact?postcode=0150&complaint={slug}").get_data(as_text=True)

    assert send_back(client, page).status_code == 302

    (request,) = stored(app)
    assert request.complaint == kept


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/contact?complaint=sciatica", "which complaint that article was about"),
        ("/contact/privacy", "which complaint that article was about"),
        ("/contact?complaint=sciatica&lang=nb", "hvilken plage artikkelen handlet om"),
        ("/contact/privacy?lang=nb", "hvilken plage artikkelen handlet om"),
    ],
)
def test_privacy_notice_says_the_article_a_request_came_from_is_kept(client, path, words):
    # The request keeps the article's complaint (above) even when the patient deletes its
    # name from their message: the notice they consent to must say so.
    assert words in client.get(path).get_data(as_text=True)
