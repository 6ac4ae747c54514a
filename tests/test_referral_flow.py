"""The whole referral path on real parts: the app, a loopback SMTP server, the CLI.

The first test drives the app through Flask's test client; the burst goes over real HTTP
to a live server (werkzeug, threaded, on loopback), so the sends it tries after each
response run as they do in production.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections import Counter

from sqlalchemy import func, select

from clinic_finder.extensions import db
from clinic_finder.models import ContactRequest, OutboxMessage, RequestStatus

from .conftest import (
    csrf_token_from,
    deliver_due,
    post_form,
    sends_after_responses_tried,
    wait_for,
)
from .factories import make_clinic


def test_patient_request_reaches_staff_and_is_referred_to_a_clinic(
    app, client, staff_client, runner, session, smtp
):
    clinic = make_clinic(session, name="Ryggsenteret", email="post@ryggsenteret.example")
    session.commit()

    token = csrf_token_from(client, "/contact?postcode=0150&profession=physiotherapist")
    sent = client.post(
        "/contact",
        data={
            "csrf_token": token,
            "name": "Pia Pasient",
            "email": "pia@example.org",
            "postcode": "0150",
            "profession": "physiotherapist",
            "message": "Vondt i nakken i tre uker",
            "contact_time": "any",
            "consent": "y",
        },
    )
    assert sent.status_code == 302
    confirmation = client.get(sent.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        request = db.session.scalars(select(ContactRequest)).one()
        reference, request_id = request.reference, request.id
    assert reference in confirmation

    deliver_due(app, runner)
    by_recipient = {message["To"]: message for message in smtp.messages}
    staff_mail = by_recipient["inbox@clinic-finder.example"]
    assert reference in staff_mail["Subject"]
    assert f"/staff/requests/{request_id}" in staff_mail.get_content()
    assert "nakken" not in staff_mail.get_content()
    assert "nakken" not in by_recipient["pia@example.org"].get_content()

    inbox = staff_client.get("/staff/requests").get_data(as_text=True)
    assert reference in inbox
    detail_url = f"/staff/requests/{request_id}"
    assert "Ryggsenteret" in staff_client.get(detail_url).get_data(as_text=True)
    post_form(
        staff_client,
        detail_url,
        f"{detail_url}/referral",
        clinic_id=str(clinic.id),
        tell_patient="y",
    )
    deliver_due(app, runner)

    referral = [m for m in smtp.messages if m["To"] == "post@ryggsenteret.example"]
    assert len(referral) == 1
    assert reference in referral[0]["Subject"] and "Pia Pasient" in referral[0].get_content()
    told = [m for m in smtp.messages if m["To"] == "pia@example.org"]
    assert len(told) == 2 and "Ryggsenteret" in told[1].get_content()
    with app.app_context():
        assert db.session.get(ContactRequest, request_id).status is RequestStatus.REFERRED


def _post_json(url: str, body: dict) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        # Read it all: closing with the body unread resets the connection, and werkzeug's
        # server then skips closing the response, so its send-after-the-response never runs.
        response.read()
        return response.status


def test_fifty_concurrent_requests_survive_smtp_outage_and_are_delivered_once(
    app, live_server, runner, smtp
):
    app.config["CONTACT_RATE_LIMIT"] = "1000 per hour"
    smtp.stop()
    statuses: list[int] = []
    lock = threading.Lock()

    def submit(number: int) -> None:
        # Every fifth patient gives only a phone number, and so gets no confirmation.
        reach = (
            {"phone": f"+47 4{number:07d}"}
            if number % 5 == 0
            else {"email": f"p{number}@example.org"}
        )
        status = _post_json(
            f"{live_server}/api/v1/contact-requests",
            {
                "name": f"Pasient {number}",
                **reach,
                "postcode": "0150",
                "profession": None,
                "message": "Vondt i ryggen",
                "consent": True,
            },
        )
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [201] * 50

    with app.app_context():
        references = {
            request.reference: request.email
            for request in db.session.scalars(select(ContactRequest))
        }
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None))
            )
            == 90
        )
    assert len(references) == 50
    assert sum(email is None for email in references.values()) == 10
    assert smtp.messages == []
    # The server tries each request's emails once after answering; let those tries end, or
    # one could push its message back after deliver_due has made everything due.
    wait_for(lambda: sends_after_responses_tried(app, 50), 60, "the tries after each answer")

    smtp.start()
    assert "Sent 90, failed 0, 0 still waiting." in deliver_due(app, runner)

    # Each request's staff notice and patient confirmation arrived, exactly once each.
    arrived = Counter()
    for message in smtp.messages:
        (reference,) = re.findall(r"KF-[A-Z0-9]{8}", message["Subject"])
        arrived[(message["To"], reference)] += 1
    expected = Counter()
    for reference, email in references.items():
        expected[("inbox@clinic-finder.example", reference)] += 1
        if email is not None:
            expected[(email, reference)] += 1
    assert arrived == expected
    assert "Sent 0" in deliver_due(app, runner)
    assert len(smtp.messages) == 90
