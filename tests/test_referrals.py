"""Referring a patient: which clinics are offered, what staff read about each, the preview,
sending, and cancelling before the outbox sends it (and not after a sender has it)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import select

from clinic_finder.extensions import db
from clinic_finder.hpr import LicenceStatus
from clinic_finder.mail import _claim_next, current_mailer, send_due
from clinic_finder.models import (
    AuditEntry,
    ContactRequest,
    OutboxMessage,
    PostalCode,
    Practice,
    Profession,
    Referral,
    RequestStatus,
    as_utc,
    now_utc,
)
from clinic_finder.referrals import referral_candidates
from clinic_finder.web.catalogues import complaint_catalogue

from .conftest import deliver_due, post_form
from .factories import make_clinic, make_contact_request, new_clinician


def _near(session, postcode: str = "0150", km_north: float = 1.0) -> dict:
    """Coordinates about ``km_north`` km north of a postcode's centre."""
    origin = session.get(PostalCode, postcode)
    return {"latitude": origin.latitude + km_north / 111.2, "longitude": origin.longitude}


def _candidate_names(app, request_id: int, complaint: str | None = None) -> list[str]:
    with app.test_request_context():
        request = db.session.get(ContactRequest, request_id)
        found = referral_candidates(
            db.session, request, complaint_catalogue().get(complaint or ""), now_utc()
        )
        return [candidate.clinic.name for candidate in found.items]


def test_candidates_have_a_listed_clinician_of_the_wanted_profession(app, session):
    make_clinic(session, name="Bare Kiropraktor", professions=(Profession.CHIROPRACTOR,))
    make_clinic(session, name="Fysio Nær", **_near(session, km_north=1))
    make_clinic(
        session,
        name="Blandet",
        professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST),
        **_near(session, km_north=2),
    )
    make_clinic(
        session,
        name="Suspendert Fysio",
        licence_status=LicenceStatus.SUSPENDED,
        **_near(session, km_north=0.5),
    )
    request = make_contact_request(session, profession=Profession.PHYSIOTHERAPIST)
    not_sure = make_contact_request(session, profession=None)
    session.commit()

    assert _candidate_names(app, request.id) == ["Fysio Nær", "Blandet"]
    assert _candidate_names(app, not_sure.id) == ["Bare Kiropraktor", "Fysio Nær", "Blandet"]


def test_the_clinic_the_patient_asked_about_comes_first_even_far_away_and_unmatching(
    app, staff_client, session
):
    make_clinic(session, name="Fysio Nær")
    asked = make_clinic(
        session,
        name="Kiropraktor i Bergen",
        postcode="5003",
        professions=(Profession.CHIROPRACTOR,),
    )
    request = make_contact_request(session, clinic=asked, profession=Profession.PHYSIOTHERAPIST)
    session.commit()

    assert _candidate_names(app, request.id) == ["Kiropraktor i Bergen", "Fysio Nær"]
    page = staff_client.get(f"/staff/requests/{request.id}?lang=nb").get_data(as_text=True)
    first_card = page.split('class="ds-card referral-candidate')[1]
    assert "Kiropraktor i Bergen" in first_card and "Pasienten spurte om denne" in first_card
    assert "Ingen fysioterapeut oppført her" in first_card


def test_a_nearer_clinic_the_patient_asked_about_is_not_listed_twice(app, session):
    asked = make_clinic(session, name="Fysio Lenger Unna", **_near(session, km_north=3))
    make_clinic(session, name="Fysio Nær", **_near(session, km_north=1))
    request = make_contact_request(session, clinic=asked)
    session.commit()

    assert _candidate_names(app, request.id) == ["Fysio Lenger Unna", "Fysio Nær"]


def test_candidates_follow_the_patients_search_for_the_complaint(app, session):
    # In one distance ring, a clinic whose services suit the complaint comes first, as on /find.
    make_clinic(session, name="Nærmest", **_near(session, km_north=0.2))
    make_clinic(
        session, name="Behandler isjias", services=["manual-therapy"], **_near(session, km_north=1)
    )
    request = make_contact_request(session, complaint="sciatica")
    session.commit()

    assert _candidate_names(app, request.id, "sciatica") == ["Behandler isjias", "Nærmest"]


def test_each_candidate_shows_the_facts_of_the_wanted_profession_truthfully(
    app, staff_client, session
):
    clinic = make_clinic(
        session,
        name="Fysio og Kiro",
        phone="+47 22 33 44 55",
        professions=(Profession.CHIROPRACTOR,),
        accepts_new_patients=True,  # the chiropractor's yes is no answer for a physio request
        languages=["nb", "en"],
        services=["manual-therapy"],
    )
    for name, agreement in (("Agnes Avtale", True), ("Uno Utenavtale", False)):
        clinic.practices.append(
            Practice(
                clinician=new_clinician(name, languages=["nb", "pl"]),
                profession=Profession.PHYSIOTHERAPIST,
                services=["massage"],
                public_agreement=agreement,
                agreement_municipality="Oslo" if agreement else None,
                accepts_new_patients=False,
                accepts_new_patients_confirmed_at=now_utc(),
            )
        )
    request = make_contact_request(session, language="en", complaint="sciatica")
    session.commit()

    page = staff_client.get(f"/staff/requests/{request.id}?lang=en").get_data(as_text=True)
    card = html.unescape(page.split('class="ds-card referral-candidate')[1].split("</li>")[0])
    facts = dict(re.findall(r"<dt>([^<]+)</dt>\s*<dd[^>]*>(.*?)</dd>", card, re.S))
    text = {name: " ".join(re.sub(r"<[^>]+>", " ", value).split()) for name, value in facts.items()}
    assert text["Professions"] == "Chiropractor, Physiotherapist"
    assert text["New patients"] == "No"
    assert text["Public agreement"] == "1 of 2 clinicians: Agnes Avtale (Oslo)"
    assert text["Languages"] == (
        "Norwegian Bokmål, Polish Nobody listed speaks the patient's language (English)"
    )
    assert text["Phone"] == "+47 22 33 44 55" and 'href="tel:+4722334455"' in card
    assert text["Suits sciatica"] == "No service for it listed"


def test_a_language_match_and_a_suiting_service_are_marked(app, staff_client, session):
    make_clinic(session, name="Fysio", languages=["nb", "en"], services=["manual-therapy"])
    request = make_contact_request(session, language="en", complaint="sciatica")
    session.commit()

    page = staff_client.get(f"/staff/requests/{request.id}?lang=nb").get_data(as_text=True)

    assert '<strong class="language-match">engelsk (pasientens)</strong>' in page
    assert "Ja: Manuell terapi" in page
    assert "Passer for isjias" in page


def test_without_an_email_the_page_says_to_phone_and_offers_no_patient_email(
    app, staff_client, session
):
    clinic = make_clinic(session, name="Fysio", email="post@fysio.example")
    request = make_contact_request(session, email=None, phone="+47 412 34 567")
    session.commit()
    url = f"/staff/requests/{request.id}"

    page = staff_client.get(f"{url}?lang=nb").get_data(as_text=True)
    preview = staff_client.get(f"{url}/referral/{clinic.id}?lang=nb").get_data(as_text=True)

    assert "Ring pasienten:" in page and 'href="tel:+4741234567"' in page
    assert 'href="tel:+4741234567"' in preview and "Ring pasienten" in preview
    assert 'name="tell_patient"' not in preview and "Til pasienten" in preview


def _pre_texts(page: str) -> list[str]:
    return [
        html.unescape(body)
        for body in re.findall(r'<pre class="email-body">(.*?)</pre>', page, re.S)
    ]


def test_the_preview_shows_exactly_what_is_queued_each_in_its_language(app, staff_client, session):
    app.config["DEFAULT_LOCALE"] = "nb"  # the clinics' language, as in production
    clinic = make_clinic(session, name="Fysio & Trening", email="post@fysio.example")
    request = make_contact_request(session, language="en", share=True)
    session.commit()
    url = f"/staff/requests/{request.id}"

    preview = staff_client.get(f"{url}/referral/{clinic.id}?lang=nb").get_data(as_text=True)
    assert "Pasienten har sagt ja til at beskrivelsen kan deles" in preview
    assert re.search(r'<input checked[^>]*name="tell_patient"', preview)
    bodies = _pre_texts(preview)
    with app.app_context():
        assert db.session.scalars(select(Referral)).all() == []  # a preview sends nothing

    response = post_form(
        staff_client,
        f"{url}/referral/{clinic.id}",
        f"{url}/referral",
        clinic_id=str(clinic.id),
        tell_patient="y",
    )
    assert response.status_code == 302

    with app.app_context():
        queued = {
            message.kind: message
            for message in db.session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind.like("referral.%"))
            )
        }
        assert [queued["referral.clinic"].body, queued["referral.patient"].body] == bodies
        assert queued["referral.clinic"].subject in html.unescape(preview)
        assert queued["referral.clinic"].subject.startswith("Henvisning")  # the clinic's: nb
        assert queued["referral.patient"].subject.startswith("About your request")  # hers: en
        assert "Vondt i ryggen" in queued["referral.clinic"].body  # she allowed it
        held_until = as_utc(queued["referral.clinic"].next_attempt_at)
        assert held_until > now_utc() + timedelta(minutes=4)


def test_opening_a_referral_preview_is_audited_as_a_view_of_the_request(staff_client, session):
    clinic = make_clinic(session, name="Fysio", email="post@fysio.example")
    request = make_contact_request(session)
    session.commit()

    preview = staff_client.get(f"/staff/requests/{request.id}/referral/{clinic.id}")

    assert preview.status_code == 200
    views = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "request.view", AuditEntry.object_id == request.id
        )
    ).all()
    assert [entry.actor_label for entry in views] == ["staff@clinic-finder.example"]


def _refer(client, request_id: int, clinic_id: int, **extra):
    url = f"/staff/requests/{request_id}"
    return post_form(
        client,
        f"{url}/referral/{clinic_id}",
        f"{url}/referral",
        clinic_id=str(clinic_id),
        tell_patient="y",
        **extra,
    )


def _cancel(client, request_id: int, referral_id: int):
    url = f"/staff/requests/{request_id}"
    response = post_form(client, url, f"{url}/referrals/{referral_id}/cancel")
    assert response.status_code == 302
    return client.get(f"{url}?lang=en").get_data(as_text=True)


def _referral_ids(app) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(Referral.id).order_by(Referral.id)))


def test_a_second_referral_to_the_same_clinic_needs_confirming(app, staff_client, session):
    clinic = make_clinic(session, name="Fysio", email="post@fysio.example")
    request = make_contact_request(session)
    session.commit()

    _refer(staff_client, request.id, clinic.id)
    preview = staff_client.get(
        f"/staff/requests/{request.id}/referral/{clinic.id}?lang=en"
    ).get_data(as_text=True)
    refused = _refer(staff_client, request.id, clinic.id)
    page = staff_client.get(refused.headers["Location"] + "?lang=en").get_data(as_text=True)

    assert "Send it again only if the clinic asked for it" in preview and 'name="again"' in preview
    assert "Confirm that you want to send it again" in page
    assert len(_referral_ids(app)) == 1
    _refer(staff_client, request.id, clinic.id, again="y")
    assert len(_referral_ids(app)) == 2


def test_cancelling_before_the_outbox_sends_stops_the_emails_and_keeps_the_history(
    app, staff_client, session, runner, smtp
):
    kept = make_clinic(session, name="Fysio Beholdt", email="post@beholdt.example")
    dropped = make_clinic(session, name="Fysio Angret", email="post@angret.example")
    request = make_contact_request(session)
    session.commit()
    _refer(staff_client, request.id, dropped.id)
    _refer(staff_client, request.id, kept.id)
    dropped_id, _kept_id = _referral_ids(app)

    page = _cancel(staff_client, request.id, dropped_id)

    assert "The referral to Fysio Angret is cancelled; no email about it was sent." in page
    assert "referred to Fysio Angret" in page and "cancelled" in page.split("History")[1]
    deliver_due(app, runner)
    deliver_due(app, runner)
    recipients = [message["To"] for message in smtp.messages]
    assert "post@angret.example" not in recipients
    assert recipients.count("post@beholdt.example") == 1
    told = [m for m in smtp.messages if m["To"] == "pia@example.org" and "Fysio" in m.get_content()]
    assert len(told) == 1 and "Fysio Beholdt" in told[0].get_content()
    with app.app_context():
        referral = db.session.get(Referral, dropped_id)
        assert referral.cancelled_at is not None and referral.cancelled_by is not None
        assert db.session.get(ContactRequest, request.id).status is RequestStatus.REFERRED
        assert (
            db.session.scalar(
                select(AuditEntry.summary).where(AuditEntry.action == "request.referral_cancelled")
            )
            == f"{request.reference}: referral to Fysio Angret cancelled"
        )


def test_cancelling_the_only_referral_moves_the_request_back_to_in_progress(
    app, staff_client, session
):
    clinic = make_clinic(session, name="Fysio", email="post@fysio.example")
    request = make_contact_request(session)
    session.commit()
    _refer(staff_client, request.id, clinic.id)

    _cancel(staff_client, request.id, _referral_ids(app)[0])

    with app.app_context():
        assert db.session.get(ContactRequest, request.id).status is RequestStatus.IN_PROGRESS
        assert db.session.scalars(select(Referral)).one().cancelled_at is not None


def _claim_as_the_sender(app) -> int:
    """Do what ``flask outbox send`` does first: claim the oldest due referral email."""
    with app.app_context():
        db.session.execute(
            OutboxMessage.__table__.update()
            .where(OutboxMessage.kind.like("referral.%"))
            .values(next_attempt_at=now_utc())
        )
        db.session.execute(
            OutboxMessage.__table__.update()
            .where(OutboxMessage.kind.not_like("referral.%"))
            .values(next_attempt_at=now_utc() + timedelta(days=1))
        )
        db.session.commit()
        message = _claim_next(db.session, now_utc(), None, 0, ignore_backoff=False)
        assert message is not None and message.kind.startswith("referral.")
        return message.id


def test_a_referral_the_sender_has_claimed_cannot_be_cancelled_and_the_page_says_so(
    app, staff_client, session, smtp
):
    clinic = make_clinic(session, name="Fysio", email="post@fysio.example")
    request = make_contact_request(session)
    session.commit()
    _refer(staff_client, request.id, clinic.id)
    (referral_id,) = _referral_ids(app)
    claimed = _claim_as_the_sender(app)

    page = _cancel(staff_client, request.id, referral_id)

    assert "Too late to cancel: the referral to Fysio is being sent right now." in page
    assert "being sent now" in page and "Cancel referral" not in page
    with app.app_context():
        assert db.session.get(Referral, referral_id).cancelled_at is None
        messages = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.referral_id == referral_id)
        ).all()
        assert all(message.cancelled_at is None for message in messages)  # not even one
        # The sender goes on and sends what it holds, and the rest (a fresh run stands in
        # for the sender that claimed it, so its claim is handed over).
        held = db.session.get(OutboxMessage, claimed)
        held.next_attempt_at, held.claimed_at = now_utc(), None
        db.session.commit()
        send_due(db.session, current_mailer(), "noreply@clinic-finder.example")

    page = _cancel(staff_client, request.id, referral_id)
    assert "Too late to cancel: the referral to Fysio has been sent." in page
    assert sum(m["To"] == "post@fysio.example" for m in smtp.messages) == 1


def test_a_half_sent_referral_says_which_email_went_and_when_the_other_is_tried(
    app, staff_client, session, runner, smtp
):
    clinic = make_clinic(session, name="Fysio", email="post@fysio.example")
    request = make_contact_request(session, email="pia@example.org")
    session.commit()
    _refer(staff_client, request.id, clinic.id)
    smtp.refused_recipients.add("pia@example.org")  # the patient's address is refused
    deliver_due(app, runner)
    patient_and_clinic = ("post@fysio.example", "pia@example.org")
    assert [m["To"] for m in smtp.messages if m["To"] in patient_and_clinic] == [
        "post@fysio.example"
    ]

    page = staff_client.get(f"/staff/requests/{request.id}?lang=en").get_data(as_text=True)
    state = page.split('class="referral-state"')[1].split("</div>")[0]
    went = "the email to the clinic went; the patient's is tried again at"
    assert html.unescape(state).count(went) == 1
    assert "being sent now" not in state and "Cancel referral" not in state
    assert "An email of it has gone, so it can no longer be cancelled." in state

    page = _cancel(staff_client, request.id, _referral_ids(app)[0])
    assert "Too late to cancel: an email of the referral to Fysio has gone." in page
    page = staff_client.get(f"/staff/requests/{request.id}?lang=nb").get_data(as_text=True)
    assert "e-posten til klinikken er sendt; den til pasienten prøves igjen" in page

    smtp.refused_recipients.clear()  # the next try goes
    deliver_due(app, runner)
    page = staff_client.get(f"/staff/requests/{request.id}?lang=en").get_data(as_text=True)
    state = page.split('class="referral-state"')[1].split("</div>")[0]
    assert " — sent" in state and "tried again" not in state


def test_a_cancelled_referral_is_never_claimed_by_the_sender(app, staff_client, session, smtp):
    clinic = make_clinic(session, name="Fysio", email="post@fysio.example")
    request = make_contact_request(session)
    session.commit()
    _refer(staff_client, request.id, clinic.id)
    _cancel(staff_client, request.id, _referral_ids(app)[0])

    with app.app_context():
        db.session.execute(OutboxMessage.__table__.update().values(next_attempt_at=now_utc()))
        db.session.commit()
        report = send_due(db.session, current_mailer(), "noreply@clinic-finder.example")

    assert report.remaining == 0
    assert [m["To"] for m in smtp.messages if m["To"] == "post@fysio.example"] == []


def test_a_referral_whose_send_failed_can_still_be_cancelled(
    app, staff_client, session, runner, smtp
):
    clinic = make_clinic(session, name="Fysio", email="post@fysio.example")
    request = make_contact_request(session)
    session.commit()
    _refer(staff_client, request.id, clinic.id)
    smtp.stop()
    deliver_due(app, runner)  # the server is down: every email waits for another try

    page = _cancel(staff_client, request.id, _referral_ids(app)[0])

    assert "The referral to Fysio is cancelled" in page
