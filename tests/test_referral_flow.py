"""The whole referral path on real parts: a live server, a loopback SMTP server, the CLI."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter

from sqlalchemy import func, select

from clinic_finder.extensions import db
from clinic_finder.models import ContactRequest, OutboxMessage, RequestStatus

from .conftest import csrf_token_from, deliver_due, post_form
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
        return response.status


def test_fifty_concurrent_requests_survive_smtp_outage_and_are_delivered_once(
    app, live_server, runner, smtp
):
    app.config["CONTACT_RATE_LIMIT"] = "1000 per hour"
    smtp.stop()
    statuses: list[int] = []
    lock = threading.Lock()

    def submit(number: int) -> None:
        status = _post_json(
            f"{live_server}/api/v1/contact-requests",
            {
                "name": f"Pasient {number}",
                "email": f"p{number}@example.org",
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
        assert db.session.scalar(select(func.count()).select_from(ContactRequest)) == 50
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None))
            )
            == 100
        )
    assert smtp.messages == []

    smtp.start()
    deliver_due(app, runner)
    assert "Sent 100" in deliver_due(app, runner) or len(smtp.messages) == 100
    assert len(smtp.messages) == 100
    assert max(Counter(m["Message-ID"] for m in smtp.messages).values()) == 1
    assert Counter(m["To"] for m in smtp.messages)["inbox@clinic-finder.example"] == 50
    again = runner.invoke(args=["outbox", "send"])
    assert "Sent 0" in again.output
    assert len(smtp.messages) == 100
