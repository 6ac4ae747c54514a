"""The contact request form and API: consent, validation, spam defences, stored first."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from clinic_finder.contact_requests import NOTICE_VERSION, contains_fodselsnummer
from clinic_finder.extensions import db
from clinic_finder.models import ContactRequest, OutboxMessage, Profession, RequestStatus

from .conftest import csrf_token_from
from .factories import make_clinic

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
    assert request.consent_notice_version == NOTICE_VERSION
    assert request.consent_given_at is not None
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert request.reference in page and "24–48 hours" in page
    assert request.reference not in response.headers["Location"]


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
        ({"consent": None}, "We can only help you if you agree"),
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


def test_form_about_a_clinic_remembers_it(app, client, session):
    clinic = make_clinic(session, name="Ryggklinikken")
    session.commit()
    page = client.get(f"/contact?clinic={clinic.id}&postcode=0150").get_data(as_text=True)
    assert "You are asking about <strong>Ryggklinikken</strong>" in page
    send(client, clinic_id=str(clinic.id))
    assert stored(app)[0].clinic_id == clinic.id


def test_results_page_links_to_the_contact_form(client, session):
    clinic = make_clinic(session)
    session.commit()
    page = client.get("/find?postcode=0150&profession=physiotherapist").get_data(as_text=True)
    assert "/contact?postcode=0150&amp;profession=physiotherapist" in page
    assert f"/contact?clinic={clinic.id}&amp;postcode=0150" in page


def test_contact_pages_are_not_cached(client):
    assert client.get("/contact").headers["Cache-Control"] == "no-store"


def test_stored_request_never_appears_in_logs(app, client, caplog):
    caplog.set_level("DEBUG")
    send(client)
    assert "korsryggen" not in caplog.text and "Kari" not in caplog.text


# --- JSON API ---------------------------------------------------------------------------

API_BODY = {
    "name": "Ola Nordmann",
    "email": "ola@example.org",
    "phone": None,
    "postcode": "5003",
    "profession": None,
    "message": "Nakkesmerter",
    "consent": True,
    "clinic_id": None,
}


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
