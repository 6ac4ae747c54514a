"""The inbox: what each row shows, its filters and order, owners (take, give, let go), and
the counts on the staff home."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_finder.contact_requests import OwnerConflict, claim
from clinic_finder.extensions import db
from clinic_finder.models import (
    AuditEntry,
    ContactRequest,
    Profession,
    RequestEvent,
    RequestStatus,
    StaffUser,
    now_utc,
)
from clinic_finder.working_hours import working_time

from .conftest import csrf_token_from, make_staff
from .factories import make_clinic, make_contact_request

ME = "staff@clinic-finder.example"
COLLEAGUE = "kollega@clinic-finder.example"
# Two weeks hold more than 48 working hours whatever the holidays; an hour never does.
LONG_AGO = timedelta(days=14)


def inbox_references(page: str) -> list[str]:
    """The references the inbox lists, in order (each is its row's link)."""
    return re.findall(r'">(KF-[A-Z0-9]{8})</a></td>', page)


def inbox(client, query: str = "") -> str:
    response = client.get(f"/staff/requests?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def post_owner(client, request_id: int, **data) -> str:
    """Press an owner button on the inbox; return the page it leads back to."""
    data.setdefault("csrf_token", csrf_token_from(client, "/staff/requests"))
    response = client.post(f"/staff/requests/{request_id}/owner", data=data)
    assert response.status_code == 302
    return client.get(response.headers["Location"]).get_data(as_text=True)


def staff_id(session, email: str) -> int:
    return session.scalar(select(StaffUser.id).where(StaffUser.email == email))


# --- what a row shows ---------------------------------------------------------------------


def test_a_row_shows_first_name_message_start_clinic_language_and_owner(app, staff_client, session):
    clinic = make_clinic(session, name="Ryggklinikken")
    message = "Vondt i <b>korsryggen</b> etter flytting, " + "særlig om morgenen " * 10
    request = make_contact_request(
        session,
        name="Ingrid Marie Hansen",
        message=message,
        language="en",
        clinic_id=clinic.id,
        owner_id=staff_id(session, ME),
        age=timedelta(hours=1),
    )
    session.commit()
    row = inbox(staff_client).split(request.reference)[1].split("</tr>")[0]
    assert ">Ingrid</td>" in row and "Hansen" not in row
    assert "Vondt i &lt;b&gt;korsryggen&lt;/b&gt; etter flytting, særlig" in row
    # Cut at a word's end, with an ellipsis; the rest is on the request's page.
    excerpt = html.unescape(re.search(r'class="message-start">([^<]*)</td>', row).group(1))
    assert excerpt.endswith("…") and len(excerpt) <= 90
    assert message.startswith(excerpt.removesuffix("…") + " ")
    assert ">Ryggklinikken</td>" in row
    assert '<strong class="ds-tag language-tag" data-color="warning">English</strong>' in row
    assert ">Physiotherapist</td>" in row
    assert "<strong>You</strong>" in row and "Let it go" in row
    # Working hours only: none at all if the test runs at a weekend.
    waited = working_time(request.created_at, now_utc()) // timedelta(hours=1)
    assert re.search(r'data-label="Waited">(\d+) h</td>', row).group(1) in {
        str(waited),
        str(waited - 1),
    }


def test_every_cell_names_its_column_for_the_list_on_a_phone(app, staff_client, session):
    make_contact_request(session)
    session.commit()
    page = inbox(staff_client)
    assert '<table class="ds-table stack-table' in page
    cells = re.findall(r"<td[^>]*>", page)
    assert len(cells) == 9 and all("data-label=" in cell for cell in cells)


def test_the_inbox_in_norwegian_marks_an_english_speaking_patient(app, staff_client, session):
    make_contact_request(session, language="en")
    make_contact_request(session, language="nb", owner_id=None)
    session.commit()
    page = inbox(staff_client, "lang=nb")
    assert (
        page.count('<strong class="ds-tag language-tag" data-color="warning">Engelsk</strong>') == 1
    )
    assert ">Norsk</td>" in page and "Ingen" in page and "Ta saken" in page


# --- filters and order --------------------------------------------------------------------


@pytest.fixture
def mixed_inbox(app, staff_client, session):
    """Five requests that differ in one thing each; returns their references by name."""
    make_staff(app, COLLEAGUE)
    me, colleague = staff_id(session, ME), staff_id(session, COLLEAGUE)
    clinic = make_clinic(session, name="Ryggklinikken")
    made = {
        "old_overdue": make_contact_request(session, age=LONG_AGO),
        "english": make_contact_request(session, language="en", age=timedelta(hours=5)),
        "mine_chiro": make_contact_request(
            session, owner_id=me, profession=Profession.CHIROPRACTOR, age=timedelta(hours=4)
        ),
        "colleagues_clinic": make_contact_request(
            session, owner_id=colleague, clinic_id=clinic.id, age=timedelta(hours=3)
        ),
        "unknown_language": make_contact_request(
            session, language=None, profession=None, age=timedelta(hours=2)
        ),
    }
    made["in_progress"] = make_contact_request(session, age=timedelta(days=20))
    made["in_progress"].status = RequestStatus.IN_PROGRESS
    made["closed"] = make_contact_request(session, age=timedelta(hours=1))
    made["closed"].status = RequestStatus.CLOSED
    session.commit()
    return {name: request.reference for name, request in made.items()} | {
        "colleague_id": str(colleague)
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("language=en", {"english"}),
        ("language=unknown", {"unknown_language"}),
        ("clinic=yes", {"colleagues_clinic"}),
        ("owner=me", {"mine_chiro"}),
        ("owner=colleague", {"colleagues_clinic"}),
        ("profession=chiropractor", {"mine_chiro"}),
        ("profession=none", {"unknown_language"}),
        ("overdue=y", {"old_overdue"}),
        ("status=in_progress", {"in_progress"}),
        ("status=closed", {"closed"}),
        ("status=&owner=none&clinic=no&language=nb", {"old_overdue", "in_progress", "closed"}),
    ],
)
def test_each_filter_shows_only_what_it_names(staff_client, mixed_inbox, query, expected):
    query = query.replace("owner=colleague", f"owner={mixed_inbox['colleague_id']}")
    shown = set(inbox_references(inbox(staff_client, query)))
    assert shown == {mixed_inbox[name] for name in expected}


def test_the_open_requests_come_new_first_then_oldest(staff_client, mixed_inbox):
    shown = inbox_references(inbox(staff_client))
    order = ["old_overdue", "english", "mine_chiro", "colleagues_clinic", "unknown_language"]
    assert shown == [mixed_inbox[name] for name in order + ["in_progress"]]


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("oldest", ["in_progress", "old_overdue", "english", "mine_chiro", "colleagues_clinic"]),
        ("newest", ["closed", "unknown_language", "colleagues_clinic", "mine_chiro", "english"]),
        ("status", ["old_overdue", "english", "mine_chiro", "colleagues_clinic"]),
    ],
)
def test_the_inbox_sorts_by_age_or_status(staff_client, mixed_inbox, sort, order):
    shown = inbox_references(inbox(staff_client, f"status=&sort={sort}"))
    assert shown[: len(order)] == [mixed_inbox[name] for name in order]
    if sort == "status":
        assert shown[-2:] == [mixed_inbox["in_progress"], mixed_inbox["closed"]]


def test_the_views_are_one_tap_links_and_show_which_is_open(staff_client, mixed_inbox):
    page = inbox(staff_client, "owner=me")
    assert '<a href="/staff/requests?owner=me" aria-current="page">Mine</a>' in page
    assert '<a href="/staff/requests?owner=none">Unassigned</a>' in page
    assert inbox_references(inbox(staff_client, "owner=none")) == [
        mixed_inbox[name] for name in ("old_overdue", "english", "unknown_language", "in_progress")
    ]


def test_pages_keep_the_filters(app, staff_client, session):
    for _ in range(51):
        make_contact_request(session, language="en")
    session.commit()
    page = inbox(staff_client, "language=en&sort=newest")
    assert 'href="/staff/requests?page=2&amp;language=en&amp;sort=newest"' in page


# --- owners -------------------------------------------------------------------------------


def test_taking_a_request_makes_it_mine_audited_and_in_its_history(app, staff_client, session):
    request = make_contact_request(session)
    session.commit()
    page = post_owner(staff_client, request.id, action="claim", seen_owner="", back="owner=me")
    assert f"You have taken {request.reference}." in page
    assert inbox_references(page) == [request.reference]  # back on "Mine"
    session.expire_all()
    assert request.owner.email == ME
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "request.claim")).one()
    assert entry.actor.email == ME and entry.object_id == request.id
    assert entry.changes == {"owner": [None, ME]} and entry.summary == request.reference
    event = session.scalars(select(RequestEvent).where(RequestEvent.kind == "owner")).one()
    assert event.actor.email == ME and event.text == "Took the request"


def test_giving_a_request_to_a_colleague_is_audited(app, staff_client, session):
    make_staff(app, COLLEAGUE)
    request = make_contact_request(session, owner_id=staff_id(session, ME))
    session.commit()
    colleague = staff_id(session, COLLEAGUE)
    page = post_owner(
        staff_client, request.id, action="assign", owner=str(colleague), seen_owner=""
    )
    assert f"{request.reference} is now with {COLLEAGUE}." in page
    session.expire_all()
    assert request.owner_id == colleague
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "request.assign")).one()
    assert entry.changes == {"owner": [ME, COLLEAGUE]}
    assert [event.text for event in request.events] == [f"Assigned the request to {COLLEAGUE}"]


def test_letting_a_request_go_leaves_it_unassigned_and_audited(app, staff_client, session):
    me = staff_id(session, ME)
    request = make_contact_request(session, owner_id=me)
    session.commit()
    page = post_owner(staff_client, request.id, action="release", seen_owner=str(me))
    assert f"You let {request.reference} go; nobody has it now." in page
    session.expire_all()
    assert request.owner_id is None
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "request.release")).one()
    assert entry.changes == {"owner": [ME, None]}
    assert [event.text for event in request.events] == ["Let the request go"]


def test_taking_a_request_someone_took_meanwhile_says_so_and_leaves_it_theirs(
    app, staff_client, session
):
    make_staff(app, COLLEAGUE)
    request = make_contact_request(session)
    session.commit()
    token = csrf_token_from(staff_client, "/staff/requests")  # the inbox shows "Take it"
    colleague = session.get(StaffUser, staff_id(session, COLLEAGUE))
    claim(session, colleague, request, seen_owner_id=None)  # … the colleague is quicker
    session.commit()
    page = post_owner(staff_client, request.id, action="claim", seen_owner="", csrf_token=token)
    assert f"{COLLEAGUE} took {request.reference} in the meantime, so it stays with them." in page
    session.expire_all()
    assert request.owner_id == colleague.id
    claims = session.scalars(select(AuditEntry).where(AuditEntry.action == "request.claim"))
    assert [entry.actor.email for entry in claims] == [COLLEAGUE]


def test_a_claim_conflict_is_refused_by_the_database_not_only_the_page(app, session):
    make_staff(app, ME)
    make_staff(app, COLLEAGUE)
    request = make_contact_request(session)
    session.commit()
    me, colleague = (session.get(StaffUser, staff_id(session, e)) for e in (ME, COLLEAGUE))
    # Both saw it unowned; the colleague's claim is committed first, from another session.
    with db.engine.begin() as other:
        other.execute(
            ContactRequest.__table__.update()
            .where(ContactRequest.id == request.id)
            .values(owner_id=colleague.id)
        )
    with pytest.raises(OwnerConflict, match="took .* in the meantime"):
        claim(session, me, request, seen_owner_id=None)
    session.rollback()


def test_letting_go_of_a_request_someone_reassigned_meanwhile_says_so(app, staff_client, session):
    make_staff(app, COLLEAGUE)
    # The page showed it as mine; a colleague has given it to themselves since.
    request = make_contact_request(session, owner_id=staff_id(session, COLLEAGUE))
    session.commit()
    page = post_owner(
        staff_client, request.id, action="release", seen_owner=str(staff_id(session, ME))
    )
    assert f"{COLLEAGUE} took {request.reference} in the meantime" in page
    session.expire_all()
    assert request.owner.email == COLLEAGUE


def test_nobody_lets_go_of_a_colleagues_request(app, staff_client, session):
    make_staff(app, COLLEAGUE)
    colleague = staff_id(session, COLLEAGUE)
    request = make_contact_request(session, owner_id=colleague)
    session.commit()
    page = post_owner(staff_client, request.id, action="release", seen_owner=str(colleague))
    assert f"Only the staff member who has {request.reference} can let it go" in page
    session.expire_all()
    assert request.owner_id == colleague
    released = select(AuditEntry.id).where(AuditEntry.action == "request.release")
    assert session.scalar(released) is None


def test_a_deactivated_staff_member_cannot_be_given_a_request(app, staff_client, session):
    make_staff(app, COLLEAGUE)
    session.get(StaffUser, staff_id(session, COLLEAGUE)).active = False
    request = make_contact_request(session)
    session.commit()
    page = post_owner(
        staff_client,
        request.id,
        action="assign",
        owner=str(staff_id(session, COLLEAGUE)),
        seen_owner="",
    )
    assert f"{COLLEAGUE} is deactivated; choose someone else." in page
    # Offered to filter by (the requests they had), never to give one to.
    assert f'<option value="{staff_id(session, COLLEAGUE)}">{COLLEAGUE}</option>' not in page
    session.expire_all()
    assert request.owner_id is None


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"action": "steal"},
        {"action": "assign"},
        {"action": "assign", "owner": "x"},
        {"action": "assign", "owner": "99999999999999999999"},
        {"action": "claim", "seen_owner": "99999999999999999999"},
    ],
)
def test_a_bad_owner_form_says_so_and_changes_nothing(app, staff_client, session, data):
    request = make_contact_request(session)
    session.commit()
    page = post_owner(staff_client, request.id, **data)
    assert 'class="flash flash-error"' in page or "error" in page
    session.expire_all()
    assert request.owner_id is None
    assert session.scalar(select(AuditEntry.id).where(AuditEntry.action.like("request.%"))) is None


def test_the_owner_form_goes_back_only_to_the_inbox_or_the_request(app, staff_client, session):
    request = make_contact_request(session)
    session.commit()
    token = csrf_token_from(staff_client, "/staff/requests")
    response = staff_client.post(
        f"/staff/requests/{request.id}/owner",
        data={
            "action": "claim",
            "back": "next=https://evil.example/&owner=me",
            "csrf_token": token,
        },
    )
    assert response.headers["Location"] == "/staff/requests?owner=me"


def test_the_request_page_shows_its_owner_with_the_buttons(app, staff_client, session):
    request = make_contact_request(session)
    session.commit()
    page = staff_client.get(f"/staff/requests/{request.id}").get_data(as_text=True)
    assert "Owner: Nobody" in page and 'value="request"' in page and "Take it" in page
    token = csrf_token_from(staff_client, f"/staff/requests/{request.id}")
    response = staff_client.post(
        f"/staff/requests/{request.id}/owner",
        data={"action": "claim", "seen_owner": "", "back": "request", "csrf_token": token},
    )
    assert response.headers["Location"] == f"/staff/requests/{request.id}"


# --- the staff home -----------------------------------------------------------------------


def test_home_counts_new_overdue_and_mine_each_linking_to_the_inbox(app, staff_client, session):
    me = staff_id(session, ME)
    make_contact_request(session, age=LONG_AGO)
    make_contact_request(session, age=LONG_AGO, owner_id=me)
    make_contact_request(session, owner_id=me)
    answered = make_contact_request(session, age=LONG_AGO, owner_id=me)
    answered.status = RequestStatus.IN_PROGRESS
    closed = make_contact_request(session, owner_id=me)
    closed.status = RequestStatus.CLOSED
    session.commit()
    page = staff_client.get("/staff/").get_data(as_text=True)
    assert '<a href="/staff/requests?status=new">3 new</a>' in page
    assert '<a href="/staff/requests?overdue=y">2 overdue</a>' in page
    assert '<a href="/staff/requests?owner=me">3 open requests of yours</a>' in page
    # Each count is what its link lists.
    for query, count in (("status=new", 3), ("overdue=y", 2), ("owner=me", 3)):
        assert len(inbox_references(inbox(staff_client, query))) == count


def test_home_in_norwegian_names_the_counts(app, staff_client, session):
    make_contact_request(session, age=LONG_AGO)
    session.commit()
    page = staff_client.get("/staff/?lang=nb").get_data(as_text=True)
    assert "1 ny</a>" in page and "1 forsinket</a>" in page
