"""The staff inbox: list, overdue, audited views, notes, status, referral, privacy, purge."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from clinic_finder.contact_requests import ContactDetails, create_contact_request
from clinic_finder.extensions import db
from clinic_finder.models import (
    AuditEntry,
    ContactRequest,
    OutboxMessage,
    Profession,
    Referral,
    RequestStatus,
    now_utc,
)

from .conftest import post_form
from .factories import make_clinic

SECRET_COMPLAINT = "Isjias ned i venstre bein"


def make_request(
    app,
    *,
    email="pasient@example.org",
    phone=None,
    share=False,
    age_hours=0,
    profession=Profession.PHYSIOTHERAPIST,
    postcode="0150",
    clinic_id=None,
) -> int:
    with app.app_context():
        request, _ = create_contact_request(
            db.session,
            ContactDetails(
                name="Pia Pasient",
                email=email,
                phone=phone,
                postcode=postcode,
                profession=profession,
                message=SECRET_COMPLAINT,
                duration="weeks",
                contact_time="evening",
                share_message_with_clinic=share,
                clinic_id=clinic_id,
            ),
            staff_inbox="staff-inbox@clinic-finder.example",
            base_url="https://finnklinikk.example",
        )
        request.created_at = now_utc() - timedelta(hours=age_hours)
        db.session.commit()
        return request.id


def outbox(app, kind: str) -> list[OutboxMessage]:
    with app.app_context():
        return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)))


def test_inbox_is_for_staff_only(client, app):
    request_id = make_request(app)
    assert client.get("/staff/requests").status_code == 302
    assert client.get(f"/staff/requests/{request_id}").status_code == 302


def test_inbox_lists_new_first_and_marks_overdue(app, staff_client):
    old = make_request(app, age_hours=24 * 14)  # more than 48 working hours, holidays or not
    fresh = make_request(app, age_hours=1)
    page = staff_client.get("/staff/requests").get_data(as_text=True)
    with app.app_context():
        old_ref = db.session.get(ContactRequest, old).reference
        fresh_ref = db.session.get(ContactRequest, fresh).reference
    assert page.index(old_ref) < page.index(fresh_ref)
    assert page.count('<span class="overdue">Overdue</span></td>') == 1
    assert staff_client.get("/staff/requests").headers["Cache-Control"] == "no-store"


def test_inbox_filters_by_status_and_profession(app, staff_client):
    make_request(app, profession=Profession.CHIROPRACTOR)
    make_request(app, profession=None)
    chiro = staff_client.get("/staff/requests?status=&profession=chiropractor").get_data(
        as_text=True
    )
    assert chiro.count("Chiropractor</td>") == 1 and "Not sure</td>" not in chiro
    unsure = staff_client.get("/staff/requests?status=&profession=none").get_data(as_text=True)
    assert "Not sure</td>" in unsure and "Chiropractor</td>" not in unsure
    assert "0 requests" in staff_client.get("/staff/requests?status=closed").get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "profession=bogus",
        "status=bogus&profession=chiropractor",
        "status=closed&profession=bogus",
        "status=CLOSED&profession=" + "x" * 500,
    ],
)
def test_inbox_refuses_a_bad_filter_value_with_an_error_and_shows_the_list(
    app, staff_client, query
):
    make_request(app, profession=Profession.CHIROPRACTOR)
    response = staff_client.get(f"/staff/requests?{query}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Not one of these choices; the list uses the default instead." in page
    assert 'aria-invalid="true"' in page
    # The refused filter is left at its default; a valid one next to it still applies.
    expected = 0 if "status=closed" in query else 1
    assert f"{expected} request" in page
    assert response.headers["Cache-Control"] == "no-store"


def test_request_page_shows_the_clinic_it_is_about(app, staff_client, session):
    clinic = make_clinic(session, name="Ryggklinikken", postcode="5003")
    session.commit()
    request_id = make_request(app, clinic_id=clinic.id)
    page = staff_client.get(f"/staff/requests/{request_id}").get_data(as_text=True)
    about = page.split("About clinic</dt>")[1].split("</dd>")[0]
    assert f'href="/staff/clinics/{clinic.id}">Ryggklinikken</a>, 5003 Bergen' in about


def test_viewing_a_request_is_audited_and_not_cached(app, staff_client):
    request_id = make_request(app)
    response = staff_client.get(f"/staff/requests/{request_id}")
    assert SECRET_COMPLAINT in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    staff_client.get(f"/staff/requests/{request_id}")
    with app.app_context():
        views = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "request.view")
        ).all()
    assert len(views) == 2
    assert {entry.object_id for entry in views} == {request_id}
    assert all(SECRET_COMPLAINT not in json.dumps(entry.changes) for entry in views)


def test_status_change_answers_the_request_and_is_in_history(app, staff_client):
    request_id = make_request(app, age_hours=50)
    url = f"/staff/requests/{request_id}"
    post_form(staff_client, url, f"{url}/status", status="in_progress", note="Ringte, ingen svar")
    page = staff_client.get(url).get_data(as_text=True)
    assert "New → In progress" in page and "Ringte, ingen svar" in page
    assert "Overdue" not in page
    with app.app_context():
        request = db.session.get(ContactRequest, request_id)
        assert request.status is RequestStatus.IN_PROGRESS and request.first_response_at


def test_status_changes_notes_and_referrals_are_audited_without_their_text(
    app, staff_client, session
):
    clinic = make_clinic(session, name="Ryggsenteret", email="post@ryggsenteret.example")
    session.commit()
    request_id = make_request(app, share=True)
    url = f"/staff/requests/{request_id}"
    post_form(staff_client, url, f"{url}/status", status="in_progress", note="Ringte, isjias")
    post_form(staff_client, url, f"{url}/notes", text="Sendt SMS om isjias")
    post_form(staff_client, url, f"{url}/referral", clinic_id=str(clinic.id), tell_patient="y")
    with app.app_context():
        reference = db.session.get(ContactRequest, request_id).reference
        entries = db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.like("request.%"), AuditEntry.action != "request.view")
            .order_by(AuditEntry.id)
        ).all()
        assert [(entry.action, entry.object_id) for entry in entries] == [
            ("request.status", request_id),
            ("request.note", request_id),
            ("request.status", request_id),
            ("request.referral", request_id),
        ]
        assert all(entry.actor.email == "staff@clinic-finder.example" for entry in entries)
        assert entries[0].changes == {"status": ["new", "in_progress"]}
        assert entries[2].changes == {"status": ["in_progress", "referred"]}
        assert entries[3].changes == {
            "clinic_id": clinic.id,
            "clinic": "Ryggsenteret",
            "description_shared": True,
            "patient_told": True,
        }
        assert all(reference in entry.summary for entry in entries)
        for entry in entries:
            text = entry.summary + json.dumps(entry.changes)
            assert "isjias" not in text.lower() and SECRET_COMPLAINT not in text


def test_note_is_added(app, staff_client):
    request_id = make_request(app)
    url = f"/staff/requests/{request_id}"
    post_form(staff_client, url, f"{url}/notes", text="Sendt SMS")
    assert "Sendt SMS" in staff_client.get(url).get_data(as_text=True)


def test_referral_emails_the_clinic_without_description_unless_allowed(app, staff_client, session):
    clinic = make_clinic(session, name="Ryggsenteret", email="post@ryggsenteret.example")
    session.commit()
    request_id = make_request(app, share=False)
    url = f"/staff/requests/{request_id}"
    assert "Ryggsenteret" in staff_client.get(url).get_data(as_text=True)
    post_form(staff_client, url, f"{url}/referral", clinic_id=str(clinic.id), tell_patient="y")
    (to_clinic,) = outbox(app, "referral.clinic")
    assert to_clinic.to_address == "post@ryggsenteret.example"
    for expected in ("Pia Pasient", "pasient@example.org", "physiotherapist"):
        assert expected in to_clinic.body
    assert SECRET_COMPLAINT not in to_clinic.body
    (to_patient,) = outbox(app, "referral.patient")
    assert "Ryggsenteret" in to_patient.body and SECRET_COMPLAINT not in to_patient.body
    with app.app_context():
        request = db.session.get(ContactRequest, request_id)
        assert request.status is RequestStatus.REFERRED
        referral = db.session.scalars(select(Referral)).one()
        assert referral.clinic_id == clinic.id and referral.referred_by.email.startswith("staff@")


def test_referral_email_is_text_written_as_typed_not_html_escaped(app, staff_client, session):
    clinic = make_clinic(session, name="Fysio & Trening <Sentrum>", email="post@fysio.example")
    session.commit()
    request_id = make_request(app, share=True)
    url = f"/staff/requests/{request_id}"
    post_form(staff_client, url, f"{url}/referral", clinic_id=str(clinic.id), tell_patient="y")
    (to_clinic,) = outbox(app, "referral.clinic")
    assert to_clinic.body.startswith("Hello Fysio & Trening <Sentrum>,\n\n")
    assert f"\n\n{SECRET_COMPLAINT}\n(How long: 1–4 weeks)\n" in to_clinic.body
    (to_patient,) = outbox(app, "referral.patient")
    assert "Fysio & Trening <Sentrum> (Testgata 1, 0150 Oslo)" in to_patient.body
    assert "&amp;" not in to_clinic.body + to_patient.body


def test_referral_shares_description_when_patient_allowed(app, staff_client, session):
    clinic = make_clinic(session, email="post@klinikk.example")
    session.commit()
    request_id = make_request(app, share=True)
    url = f"/staff/requests/{request_id}"
    post_form(staff_client, url, f"{url}/referral", clinic_id=str(clinic.id))
    (to_clinic,) = outbox(app, "referral.clinic")
    assert SECRET_COMPLAINT in to_clinic.body
    assert outbox(app, "referral.patient") == []


def test_referral_to_clinic_without_email_is_refused_clearly(app, staff_client, session):
    clinic = make_clinic(session, name="Uten Epost", phone="+47 22 33 44 55")
    session.commit()
    request_id = make_request(app)
    url = f"/staff/requests/{request_id}"
    response = post_form(staff_client, url, f"{url}/referral", clinic_id=str(clinic.id))
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "has no email address" in page
    with app.app_context():
        assert db.session.get(ContactRequest, request_id).status is RequestStatus.NEW


@pytest.mark.parametrize("tell_patient", ["y", ""])
def test_referral_to_a_clinic_whose_stored_address_we_cannot_send_to_is_refused_clearly(
    app, staff_client, session, tell_patient
):
    # Stored before the rule (the factory, like an old import, does not check it).
    clinic = make_clinic(session, name="Øst Fysio", email="øystein@østfysio.example")
    session.commit()
    request_id = make_request(app)
    url = f"/staff/requests/{request_id}"
    response = post_form(
        staff_client, url, f"{url}/referral", clinic_id=str(clinic.id), tell_patient=tell_patient
    )
    assert response.status_code == 302
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "We cannot send email to Øst Fysio" in page
    assert outbox(app, "referral.clinic") == [] and outbox(app, "referral.patient") == []
    with app.app_context():
        assert db.session.get(ContactRequest, request_id).status is RequestStatus.NEW
        assert db.session.scalars(select(Referral)).all() == []


def test_purge_deletes_requests_past_retention_and_everything_about_them(app, runner):
    old = make_request(app, age_hours=181 * 24)
    recent = make_request(app, age_hours=179 * 24)
    result = runner.invoke(args=["requests", "purge"])
    assert result.exit_code == 0, result.output
    assert "1 request" in result.output
    with app.app_context():
        assert db.session.get(ContactRequest, old) is None
        assert db.session.get(ContactRequest, recent) is not None
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.request_id == old)
            )
            == 0
        )
        purge = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "request.purge")
        ).one()
        assert purge.changes["deleted"] == 1


@pytest.mark.parametrize("url", ["/staff/privacy"])
def test_privacy_page_is_admin_only(staff_client, url):
    assert staff_client.get(url).status_code == 403


def test_admin_exports_and_deletes_one_persons_data(app, admin_client):
    mine = make_request(app, email="Same.Person@example.org", phone="+47 91 23 45 67")
    make_request(app, email=None, phone="+47 91 23 45 67")
    other = make_request(app, email="other@example.org")
    exported = post_form(
        admin_client,
        "/staff/privacy",
        "/staff/privacy/export",
        email="same.person@example.org",
        phone="912 34 567",
    )
    assert exported.status_code == 200
    data = exported.get_json(force=True)
    assert len(data["contact_requests"]) == 2
    assert data["contact_requests"][0]["message"] == SECRET_COMPLAINT
    deleted = post_form(
        admin_client,
        "/staff/privacy",
        "/staff/privacy/delete",
        email="same.person@example.org",
        phone="912 34 567",
    )
    assert deleted.status_code == 302
    with app.app_context():
        assert db.session.get(ContactRequest, mine) is None
        assert db.session.get(ContactRequest, other) is not None
        actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"person.export", "person.delete"} <= actions


@pytest.mark.parametrize("asked", ["kari@blåbær.no", "Kari@XN--BLBR-ROAH.NO"])
def test_privacy_lookup_finds_an_address_stored_before_with_its_domain_in_unicode(
    app, admin_client, asked
):
    # Requests stored before addresses were kept in ASCII hold the domain as typed.
    make_request(app, email="kari@blåbær.no")
    make_request(app, email="kari@xn--blbr-roah.no")
    exported = post_form(admin_client, "/staff/privacy", "/staff/privacy/export", email=asked)
    assert len(exported.get_json(force=True)["contact_requests"]) == 2


def test_export_holds_every_email_about_the_persons_requests(app, admin_client, session):
    clinic = make_clinic(session, name="Ryggsenteret", email="post@ryggsenteret.example")
    session.commit()
    request_id = make_request(app, email="pia@example.org", share=True)
    make_request(app, email="other@example.org")  # not theirs: must not be exported
    url = f"/staff/requests/{request_id}"
    post_form(admin_client, url, f"{url}/referral", clinic_id=str(clinic.id), tell_patient="y")
    with app.app_context():
        staff_notice = db.session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.request_id == request_id, OutboxMessage.kind == "request.staff"
            )
        ).one()
        staff_notice.sent_at = now_utc()
        db.session.commit()
        reference = db.session.get(ContactRequest, request_id).reference

    exported = post_form(
        admin_client, "/staff/privacy", "/staff/privacy/export", email="pia@example.org"
    )

    (held,) = exported.get_json(force=True)["contact_requests"]
    emails = {email["kind"]: email for email in held["emails"]}
    assert sorted(emails) == [
        "referral.clinic",
        "referral.patient",
        "request.confirmation",
        "request.staff",
    ]
    assert emails["request.staff"]["to"] == "staff-inbox@clinic-finder.example"
    assert emails["request.staff"]["status"] == "sent" and emails["request.staff"]["sent_at"]
    assert emails["request.confirmation"]["to"] == "pia@example.org"
    assert reference in emails["request.confirmation"]["subject"]
    referral = emails["referral.clinic"]
    assert referral["to"] == "post@ryggsenteret.example"
    assert SECRET_COMPLAINT in referral["body"]  # the patient allowed it to be shared
    assert (referral["status"], referral["sent_at"], referral["attempts"]) == ("waiting", None, 0)
    assert referral["queued_at"]


def test_delete_removes_every_email_about_the_persons_requests(app, admin_client, session):
    clinic = make_clinic(session, email="post@klinikk.example")
    session.commit()
    request_id = make_request(app, email="pia@example.org", share=True)
    other = make_request(app, email="other@example.org")
    url = f"/staff/requests/{request_id}"
    post_form(admin_client, url, f"{url}/referral", clinic_id=str(clinic.id), tell_patient="y")
    assert len(outbox(app, "referral.clinic")) == 1

    post_form(admin_client, "/staff/privacy", "/staff/privacy/delete", email="pia@example.org")

    with app.app_context():
        left = db.session.scalars(select(OutboxMessage)).all()
    assert {message.request_id for message in left} == {other}
    assert all("pia@example.org" not in (m.to_address + m.body) for m in left)
    assert all(SECRET_COMPLAINT not in m.body for m in left)


def _request_with_words(app, marker: str, *, age_hours: int = 0) -> int:
    """A request whose message, name and staff note all carry a unique marker."""
    from clinic_finder.contact_requests import add_note
    from clinic_finder.models import StaffUser

    with app.app_context():
        request, _ = create_contact_request(
            db.session,
            ContactDetails(
                name=f"Navn{marker}",
                email=f"{marker.lower()}@example.org",
                phone=None,
                postcode="0150",
                profession=None,
                message=f"Smerter {marker} i korsryggen",
            ),
            staff_inbox="staff-inbox@clinic-finder.example",
            base_url="https://finnklinikk.example",
        )
        request.created_at = now_utc() - timedelta(hours=age_hours)
        staff = db.session.scalars(select(StaffUser)).first()
        if staff is not None:
            add_note(db.session, staff, request, f"Ringte om {marker}")
        db.session.commit()
        return request.id


def _database_files_hold(app, marker: str) -> list[str]:
    """Which of the SQLite database's files still hold the marker's bytes."""
    from pathlib import Path

    main = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    files = [main, main.with_name(main.name + "-wal")]
    return [path.name for path in files if path.exists() and marker.encode() in path.read_bytes()]


@pytest.fixture
def sqlite_only(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the files of a SQLite database; PostgreSQL is vacuumed (test below)")


def test_gdpr_delete_leaves_no_words_in_the_database_files(app, admin_client, sqlite_only):
    import uuid

    marker = "ZQX" + uuid.uuid4().hex.upper()
    _request_with_words(app, marker)
    assert _database_files_hold(app, marker)  # the test can see words on disk at all
    post_form(
        admin_client,
        "/staff/privacy",
        "/staff/privacy/delete",
        email=f"{marker.lower()}@example.org",
    )
    assert _database_files_hold(app, marker) == []


def test_purge_leaves_no_words_in_the_database_files(app, runner, sqlite_only):
    import uuid

    marker = "ZQX" + uuid.uuid4().hex.upper()
    _request_with_words(app, marker, age_hours=181 * 24)
    assert _database_files_hold(app, marker)
    result = runner.invoke(args=["requests", "purge"])
    assert result.exit_code == 0, result.output
    assert _database_files_hold(app, marker) == []


def _postgresql_only(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("VACUUM is PostgreSQL's")


def _table_fact(app, sql: str):
    from sqlalchemy import text

    with app.app_context():
        db.session.execute(text("SELECT pg_stat_clear_snapshot()"))
        value = db.session.execute(text(sql)).scalar()
        db.session.rollback()
        return value


VACUUMS = "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'contact_request'"


def test_purge_vacuums_the_request_tables_on_postgresql(app, runner):
    _postgresql_only(app)
    _request_with_words(app, "ZQXVACUUM", age_hours=181 * 24)
    before = _table_fact(app, VACUUMS)
    result = runner.invoke(args=["requests", "purge"])
    assert result.exit_code == 0, result.output
    assert _table_fact(app, VACUUMS) == before + 1


def test_purge_with_vacuum_full_rewrites_the_request_tables(app, runner):
    _postgresql_only(app)
    _request_with_words(app, "ZQXVACUUMFULL", age_hours=181 * 24)
    file_before = _table_fact(app, "SELECT pg_relation_filenode('contact_request')")
    result = runner.invoke(args=["requests", "purge", "--vacuum-full"])
    assert result.exit_code == 0, result.output
    assert _table_fact(app, "SELECT pg_relation_filenode('contact_request')") != file_before
