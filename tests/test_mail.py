"""Outgoing mail: the outbox, a real SMTP server on loopback that goes down and comes back."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update

from clinic_finder import mail
from clinic_finder.commands import outbox_cli
from clinic_finder.extensions import db
from clinic_finder.mail import (
    ConsoleMailer,
    SendReport,
    SmtpMailer,
    UnconfiguredMailer,
    build_mailer,
    build_message,
    current_mailer,
    queue_email,
    retry_delay,
    send_after_commit,
    send_due,
)
from clinic_finder.models import AuditEntry, OutboxMessage, now_utc

from .conftest import PROJECT_ROOT
from .smtp_server import SmtpServer, connection_refused, running_smtp

SENDER = "Finn klinikk <no-reply@clinic-finder.example>"
STAFF = "staff@clinic-finder.example"
INJECTED = "\r\nBcc: victim@example.org"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on a free loopback port that keeps what it receives."""
    with running_smtp() as server:
        yield server


@pytest.fixture
def smtp_mailer(smtp_server: SmtpServer) -> SmtpMailer:
    mailer = build_mailer(smtp_server.config())
    assert isinstance(mailer, SmtpMailer)
    return mailer


@pytest.fixture
def mail_app(app: Flask, smtp_server: SmtpServer) -> Flask:
    """The app, its mailer pointed at the loopback SMTP server."""
    app.config.update(smtp_server.config())
    mail.init_app(app)
    return app


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def queue(session, count: int = 1, **fields) -> list[OutboxMessage]:
    """Queue ``count`` messages to staff and commit; return them."""
    messages = [
        queue_email(
            session,
            to=fields.get("to", STAFF),
            subject=fields.get("subject", f"New request {number}"),
            body=fields.get("body", f"Request {number} is waiting.\n"),
            kind=fields.get("kind", "request.staff"),
        )
        for number in range(1, count + 1)
    ]
    session.commit()
    return messages


def outbox(session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def make_everything_due(session) -> None:
    """Move every waiting message's next attempt into the past, as if the back-off had passed."""
    session.execute(update(OutboxMessage).values(next_attempt_at=now_utc() - timedelta(seconds=1)))
    session.commit()


# The test server itself


def test_smtp_server_stops_refusing_connections_and_comes_back_on_the_same_port(smtp_server):
    port = smtp_server.port
    smtp_server.stop()
    assert connection_refused(port)
    smtp_server.start()
    assert smtp_server.port == port
    assert not connection_refused(port)


# Queueing and building messages


def test_send_due_delivers_a_queued_message_and_marks_it_sent(session, smtp_server, smtp_mailer):
    [queued] = queue(session, subject="Ny forespørsel KF-7K3M9QXA", body="Hei!\nSe /staff.\n")

    report = send_due(session, smtp_mailer, SENDER)

    assert report == SendReport(sent=1, failed=0, remaining=0)
    [received] = smtp_server.received
    assert received.rcpt_tos == [STAFF]
    message = received.message
    assert message["From"] == SENDER
    assert message["To"] == STAFF
    assert message["Subject"] == "Ny forespørsel KF-7K3M9QXA"
    assert message["Message-ID"].endswith("@clinic-finder.example>")
    assert message["Date"]
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content() == "Hei!\nSe /staff.\n"
    [row] = outbox(session)
    assert row.id == queued.id
    assert row.sent_at is not None
    assert row.attempts == 0


@pytest.mark.parametrize("line_break", ["\r\n", "\n", "\r", "\u2028", "\x85"])
def test_send_due_line_breaks_in_subject_and_body_add_no_header(
    session, smtp_server, smtp_mailer, line_break
):
    injected = INJECTED.replace("\r\n", line_break)
    queue(session, subject=f"Request from Anna{injected}", body=f"Name: Anna{injected}\n")

    send_due(session, smtp_mailer, SENDER)

    [received] = smtp_server.received
    assert received.rcpt_tos == [STAFF]
    message = received.message
    assert "Bcc" not in message
    assert message.get_all("To") == [STAFF]
    assert message["Subject"] == "Request from Anna Bcc: victim@example.org"


def test_build_message_refuses_line_breaks_stored_in_the_outbox():
    # Rows normally come from queue_email; the headers are safe even when they do not.
    row = OutboxMessage(
        id=1,
        kind="request.staff",
        to_address=STAFF + INJECTED,
        subject="Hello",
        body="",
        created_at=now_utc(),
    )
    with pytest.raises(ValueError):
        build_message(row, SENDER)
    row.to_address, row.subject = STAFF, "Hello" + INJECTED
    assert build_message(row, SENDER)["Subject"] == "Hello Bcc: victim@example.org"


@pytest.mark.parametrize(
    "address",
    [
        STAFF + INJECTED,
        STAFF + "\n",
        "staff@clinic-finder.example\rX-Evil: 1",
        "staff@clinic-finder.example\x00",
        "staff@clinic-finder.example, victim@example.org",
        "Staff <staff@clinic-finder.example>",
        "not an address",
        "",
        "øystein@eksempel.example",
        "staff@localhost",
    ],
)
def test_queue_email_refuses_an_address_that_is_not_one_plain_address(session, address):
    with pytest.raises(ValueError):
        queue_email(session, to=address, subject="Hello", body="", kind="request.staff")
    assert not session.new


def test_queue_email_sends_to_an_internationalised_domain_in_its_ascii_form(
    session, smtp_server, smtp_mailer
):
    message = queue_email(session, to="post@blåbær.no", subject="Hei", body="", kind="test")
    session.commit()
    assert message.to_address == "post@xn--blbr-roah.no"
    assert send_due(session, smtp_mailer, SENDER).sent == 1
    assert [mail.rcpt_tos for mail in smtp_server.received] == [["post@xn--blbr-roah.no"]]


def test_build_message_sends_an_internationalised_domain_stored_before_in_ascii(
    session, smtp_server, smtp_mailer
):
    # Rows queued before the rule (or written by hand) may hold the domain in Unicode.
    [message] = queue(session)
    message.to_address = "post@blåbær.no"
    session.commit()
    assert send_due(session, smtp_mailer, SENDER).sent == 1
    assert [mail.rcpt_tos for mail in smtp_server.received] == [["post@xn--blbr-roah.no"]]


def test_queue_email_folds_and_shortens_a_long_subject(session):
    message = queue_email(
        session, to=STAFF, subject="A\tname\n" + "x" * 300, body="", kind="request.staff"
    )
    assert message.subject.startswith("A name x")
    assert len(message.subject) == 200
    assert message.subject.endswith("…")


# Failures, back-off and retries


def test_send_due_with_the_server_down_keeps_the_message_and_stops(
    session, smtp_server, smtp_mailer
):
    smtp_server.stop()
    first, second = queue(session, 2)
    now = now_utc()

    report = send_due(session, smtp_mailer, SENDER, now=now)

    assert report == SendReport(sent=0, failed=1, remaining=2, server_unreachable=True)
    first, second = outbox(session)
    assert first.sent_at is None
    assert first.attempts == 1
    assert aware(first.next_attempt_at) == now + timedelta(minutes=1)
    assert first.last_error == "ConnectionRefusedError"
    # The server is down: the run did not try the rest.
    assert second.attempts == 0
    assert second.last_error is None
    assert aware(second.next_attempt_at) <= now


def test_send_due_after_a_refused_recipient_goes_on_with_the_next_message(
    session, smtp_server, smtp_mailer
):
    smtp_server.refused_recipients.add("gone@clinic.example")
    queue(session, to="gone@clinic.example")
    queue(session)

    report = send_due(session, smtp_mailer, SENDER)

    assert report == SendReport(sent=1, failed=1, remaining=1)
    refused, sent = outbox(session)
    assert (refused.attempts, refused.last_error, refused.sent_at) == (
        1,
        "SMTPRecipientsRefused",
        None,
    )
    assert sent.sent_at is not None
    assert [mail.rcpt_tos for mail in smtp_server.received] == [[STAFF]]


def test_send_due_leaves_a_message_that_is_not_due_yet(session, smtp_server, smtp_mailer):
    [message] = queue(session)
    message.next_attempt_at = now_utc() + timedelta(minutes=5)
    session.commit()

    assert send_due(session, smtp_mailer, SENDER) == SendReport(sent=0, failed=0, remaining=1)
    assert smtp_server.received == []


@pytest.mark.parametrize(
    ("attempts", "minutes"), [(1, 1), (2, 2), (3, 4), (4, 8), (6, 32), (7, 60), (50, 60)]
)
def test_retry_delay_doubles_up_to_an_hour(attempts, minutes):
    assert retry_delay(attempts) == timedelta(minutes=minutes)


def test_send_due_waits_longer_after_each_failure(session, smtp_server, smtp_mailer):
    smtp_server.stop()
    queue(session)
    now = now_utc()
    waits = []
    for _ in range(4):
        send_due(session, smtp_mailer, SENDER, now=now)
        [message] = outbox(session)
        waits.append(aware(message.next_attempt_at) - now)
        now = aware(message.next_attempt_at)
    assert waits == [timedelta(minutes=minutes) for minutes in (1, 2, 4, 8)]
    assert message.attempts == 4


def test_send_due_logs_ids_and_error_types_but_no_content(
    session, smtp_server, smtp_mailer, caplog
):
    caplog.set_level(logging.DEBUG, logger="clinic_finder.mail")
    queue(session, to="anna.patient@example.org", subject="Anna Hansen", body="Vondt i ryggen")
    smtp_server.stop()
    send_due(session, smtp_mailer, SENDER)
    smtp_server.start()
    make_everything_due(session)
    send_due(session, smtp_mailer, SENDER)

    assert "ConnectionRefusedError" in caplog.text
    assert "sent" in caplog.text
    for secret in ("anna.patient", "Anna Hansen", "Vondt"):
        assert secret not in caplog.text


# The done-when: down, 50 queued, back, each delivered exactly once


def test_outbox_send_delivers_50_messages_exactly_once_after_the_server_comes_back(
    mail_app, session, runner, smtp_server
):
    smtp_server.stop()
    queue(session, 50)

    for _ in range(3):
        result = runner.invoke(outbox_cli, ["send"])
        assert result.exit_code == 0, result.output
        assert "Sent 0, failed 1, 50 still waiting." in result.output
        assert "could not be reached" in result.output

    messages = outbox(session)
    assert len(messages) == 50
    assert all(message.sent_at is None for message in messages)
    tried = [message for message in messages if message.attempts]
    assert len(tried) == 3  # one per run: each run stopped at its first refused connection
    assert all(aware(message.next_attempt_at) > now_utc() for message in tried)
    assert {message.last_error for message in tried} == {"ConnectionRefusedError"}

    smtp_server.start()
    make_everything_due(session)
    result = runner.invoke(outbox_cli, ["send"])
    assert result.exit_code == 0, result.output
    assert "Sent 50, failed 0, 0 still waiting." in result.output

    subjects = [message["Subject"] for message in smtp_server.messages]
    assert sorted(subjects) == sorted(f"New request {number}" for number in range(1, 51))
    assert len({message["Message-ID"] for message in smtp_server.messages}) == 50
    assert all(message.sent_at is not None for message in outbox(session))

    make_everything_due(session)
    result = runner.invoke(outbox_cli, ["send"])
    assert "Sent 0, failed 0, 0 still waiting." in result.output
    assert len(smtp_server.received) == 50


# Two senders at once


def run_senders(
    app: Flask, mailer, count: int, ignore_backoff: tuple[bool, ...] = ()
) -> list[SendReport]:
    """Run ``count`` send_due calls at once, each in its own thread, app context and session;
    sender ``n`` ignores the back-off (as --retry-now does) if ``ignore_backoff[n]``."""
    start = threading.Barrier(count)
    reports: list[SendReport | None] = [None] * count
    errors: list[BaseException] = []
    ignoring = ignore_backoff or (False,) * count

    def sender(number: int) -> None:
        try:
            with app.app_context():
                start.wait(timeout=5)
                reports[number] = send_due(
                    db.session, mailer, SENDER, limit=None, ignore_backoff=ignoring[number]
                )
        except BaseException as error:  # re-raised in the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=sender, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return [report for report in reports if report is not None]


def test_two_concurrent_senders_send_each_message_exactly_once(
    app, session, smtp_server, smtp_mailer
):
    queue(session, 40)
    session.close()
    smtp_server.delay = 0.005  # each send takes a moment, so the senders overlap

    reports = run_senders(app, smtp_mailer, 2)

    assert len(reports) == 2
    assert sum(report.sent for report in reports) == 40
    assert all(report.sent > 0 for report in reports)  # both really took part
    subjects = [message["Subject"] for message in smtp_server.messages]
    assert sorted(subjects) == sorted(f"New request {number}" for number in range(1, 41))
    assert all(message.sent_at is not None for message in outbox(session))


def test_a_message_being_sent_is_not_due_for_another_sender(app, session, smtp_server):
    queue(session, 2)
    session.close()
    second_sender_sent: list[str] = []
    mailer = MailerInterrupted(app, smtp_server, second_sender_sent, ignore_backoff=False)

    report = send_due(session, mailer, SENDER)

    assert second_sender_sent == ["New request 2"]
    assert report.sent == 1
    assert [message["Subject"] for message in smtp_server.messages] == ["New request 1"]


def test_retry_now_beside_a_normal_sender_sends_each_message_exactly_once(
    app, session, smtp_server, smtp_mailer
):
    """The done-when of --retry-now: a `--loop` worker and an admin's «Send all now» at once."""
    messages = queue(session, 40)
    # Half of them wait out a back-off from an outage; only the retry-now sender sees them.
    for message in messages[::2]:
        message.attempts, message.last_error = 3, "ConnectionRefusedError"
        message.next_attempt_at = now_utc() + timedelta(minutes=30)
    session.commit()
    session.close()
    smtp_server.delay = 0.005

    reports = run_senders(app, smtp_mailer, 2, ignore_backoff=(False, True))

    assert sum(report.sent for report in reports) == 40
    assert reports[1].sent >= 20  # the retry-now sender took every backed-off message at least
    subjects = [message["Subject"] for message in smtp_server.messages]
    assert sorted(subjects) == sorted(f"New request {number}" for number in range(1, 41))
    assert all(message.sent_at is not None for message in outbox(session))


def test_retry_now_does_not_take_a_message_another_sender_is_sending(app, session, smtp_server):
    queue(session, 2)
    session.close()
    retried: list[str] = []
    mailer = MailerInterrupted(app, smtp_server, retried, ignore_backoff=True)

    report = send_due(session, mailer, SENDER)

    assert retried == ["New request 2"]  # never "New request 1", which the first one held
    assert report.sent == 1
    assert [message["Subject"] for message in smtp_server.messages] == ["New request 1"]


def test_retry_now_leaves_a_message_held_back_that_was_never_tried(session, smtp_server):
    # A referral's emails wait out its undo time: that hold is not a back-off to skip.
    held = queue_email(
        session,
        to=STAFF,
        subject="Held referral",
        body="Not yet.\n",
        kind="referral.clinic",
        send_at=now_utc() + timedelta(minutes=5),
    )
    (failed,) = queue(session, 1)
    failed.attempts, failed.next_attempt_at = 2, now_utc() + timedelta(minutes=20)
    session.commit()

    report = send_due(session, build_mailer(smtp_server.config()), SENDER, ignore_backoff=True)

    assert (report.sent, report.remaining) == (1, 1)
    assert [message["Subject"] for message in smtp_server.messages] == ["New request 1"]
    session.refresh(held)
    assert held.sent_at is None and held.attempts == 0


class MailerInterrupted:
    """Send through the loopback server, but first (once) let a second sender run, as if it
    started while this one was in the middle of sending; the second one only records the
    subjects it would send."""

    def __init__(self, app, smtp_server, second_sent: list[str], *, ignore_backoff: bool):
        self.app, self.second_sent, self.ignore_backoff = app, second_sent, ignore_backoff
        self.inner = build_mailer(smtp_server.config())
        self.other_ran = False

    def send(self, message) -> None:
        if not self.other_ran:
            self.other_ran = True
            with self.app.app_context():
                recorder = RecordingMailer(self.second_sent)
                send_due(db.session, recorder, SENDER, ignore_backoff=self.ignore_backoff)
        self.inner.send(message)


class RecordingMailer:
    """Keep the subjects of what it is given to send."""

    def __init__(self, subjects: list[str]) -> None:
        self.subjects = subjects

    def send(self, message) -> None:
        self.subjects.append(message["Subject"])


# Mailers and the app's seam


def test_build_mailer_without_mail_server_prints_to_the_console(session):
    mailer = build_mailer({"MAIL_SERVER": ""})
    assert isinstance(mailer, ConsoleMailer)
    stream = io.StringIO()
    queue(session, subject="Ny forespørsel", body="Se innboksen.\n")

    report = send_due(session, ConsoleMailer(stream), SENDER)

    assert report.sent == 1
    printed = stream.getvalue()
    assert f"To: {STAFF}" in printed
    assert "Subject: Ny forespørsel" in printed
    assert "Se innboksen." in printed


def test_build_mailer_in_production_without_mail_server_keeps_mail_queued(session):
    mailer = build_mailer({"MAIL_SERVER": "", "APP_ENV": "production"})
    assert isinstance(mailer, UnconfiguredMailer)
    queue(session)

    assert send_due(session, mailer, SENDER).server_unreachable
    [message] = outbox(session)
    assert message.sent_at is None
    assert message.last_error == "MailNotConfiguredError"


def test_build_mailer_with_mail_server_uses_smtp_and_hides_the_password():
    mailer = build_mailer(
        {
            "MAIL_SERVER": "smtp.example.org",
            "MAIL_PORT": 2525,
            "MAIL_USERNAME": "finder",
            "MAIL_PASSWORD": "hunter2-secret",
            "MAIL_USE_TLS": True,
            "MAIL_TIMEOUT": 3,
        }
    )
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port, mailer.username, mailer.use_tls, mailer.timeout) == (
        "smtp.example.org",
        2525,
        "finder",
        True,
        3.0,
    )
    assert "hunter2" not in repr(mailer)


def test_current_mailer_is_built_from_the_app_config(mail_app, smtp_server):
    with mail_app.app_context():
        mailer = current_mailer()
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port, mailer.use_tls) == ("127.0.0.1", smtp_server.port, False)


# Sending right after the response


def add_queueing_view(app: Flask, received_during_request: list[int], smtp_server) -> None:
    app.config["WTF_CSRF_ENABLED"] = False  # a stand-in for the contact form's view

    @app.post("/test-queue")
    def queue_and_answer():
        [message] = queue(db.session)
        send_after_commit([message.id])
        received_during_request.append(len(smtp_server.received))
        return "stored"


def test_send_after_commit_delivers_once_the_response_has_gone(mail_app, smtp_server, session):
    during: list[int] = []
    add_queueing_view(mail_app, during, smtp_server)

    with mail_app.test_client().post("/test-queue") as response:
        assert response.status_code == 200
        assert during == [0]  # nothing was sent while the patient waited
    # Closing the response is when the server has finished sending it.
    assert len(smtp_server.received) == 1
    assert outbox(session)[0].sent_at is not None


def test_send_after_commit_with_the_server_down_answers_and_keeps_the_message(
    mail_app, smtp_server, session
):
    add_queueing_view(mail_app, [], smtp_server)
    smtp_server.stop()

    with mail_app.test_client().post("/test-queue") as response:
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "stored"
    [message] = outbox(session)
    assert (message.sent_at, message.attempts) == (None, 1)


def test_send_after_commit_outside_a_request_sends_right_away(mail_app, smtp_server, session):
    [message] = queue(session)
    send_after_commit([message.id])
    assert len(smtp_server.received) == 1


# The CLI


def test_outbox_send_loop_stops_after_max_runs(mail_app, session, runner, smtp_server):
    queue(session, 2)
    result = runner.invoke(outbox_cli, ["send", "--loop", "--interval", "0", "--max-runs", "3"])
    assert result.exit_code == 0, result.output
    # Idle runs print nothing; the first one reports (the log lines go to stderr).
    assert result.stdout == "Sent 2, failed 0, 0 still waiting.\n"
    assert len(smtp_server.received) == 2


def test_outbox_status_counts_waiting_failing_and_sent(session, runner):
    sent, failing, waiting = queue(session, 3)
    sent.sent_at = now_utc()
    failing.attempts, failing.last_error = 2, "ConnectionRefusedError"
    failing.created_at = now_utc() - timedelta(hours=2, minutes=5, seconds=30)
    session.commit()

    result = runner.invoke(outbox_cli, ["status"])

    assert result.exit_code == 0, result.output
    assert result.output == ("Waiting: 2\nFailing: 1\nSent: 1\nOldest waiting: 2 h 5 min\n")


def test_outbox_status_of_an_empty_outbox(session, runner):
    result = runner.invoke(outbox_cli, ["status"])
    assert result.output == "Waiting: 0\nFailing: 0\nSent: 0\n"


# Emails are templates


EMAIL_TEMPLATES = PROJECT_ROOT / "templates" / "email"


def test_every_email_template_has_a_subject_and_a_body(app):
    names = sorted(path.name for path in EMAIL_TEMPLATES.iterdir())
    assert names == [
        "referral_clinic.txt",
        "referral_patient.txt",
        "request_confirmation.txt",
        "request_staff.txt",
    ]
    with app.app_context():
        environment = app.extensions[mail.TEMPLATES_KEY]
        for name in names:
            assert set(environment.get_template(f"email/{name}").blocks) == {"subject", "body"}


def test_email_templates_escape_html_parts_and_never_text_parts(app):
    with app.app_context():
        environment = app.extensions[mail.TEMPLATES_KEY]
        assert environment.autoescape("email/a_future_part.html") is True
        assert environment.autoescape("email/request_staff.txt") is False


def test_outbox_send_retry_now_sends_what_waits_out_its_back_off_once(
    mail_app, session, runner, smtp_server
):
    smtp_server.stop()
    queue(session, 5)
    result = runner.invoke(outbox_cli, ["send"])
    assert "Sent 0, failed 1, 5 still waiting." in result.output
    # The outage lasted: every message has failed and waits for its next attempt.
    session.execute(
        update(OutboxMessage).values(
            attempts=4, next_attempt_at=now_utc() + timedelta(minutes=8), last_error="TimeoutError"
        )
    )
    session.commit()
    smtp_server.start()

    waiting = runner.invoke(outbox_cli, ["send"])
    assert "Sent 0, failed 0, 5 still waiting." in waiting.output
    assert smtp_server.received == []

    result = runner.invoke(outbox_cli, ["send", "--retry-now"])

    assert result.exit_code == 0, result.output
    assert "Sent 5, failed 0, 0 still waiting." in result.output
    assert sorted(m["Subject"] for m in smtp_server.messages) == [
        f"New request {number}" for number in range(1, 6)
    ]
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "outbox.send_now"))
    assert entry.actor_label == "command line"
    assert entry.changes["sent"] == 5
    again = runner.invoke(outbox_cli, ["send", "--retry-now"])
    assert "Sent 0, failed 0, 0 still waiting." in again.output
    assert len(smtp_server.received) == 5


def test_outbox_send_retry_now_stops_when_the_server_is_still_down(
    mail_app, session, runner, smtp_server
):
    queue(session, 3)
    session.execute(
        update(OutboxMessage).values(attempts=1, next_attempt_at=now_utc() + timedelta(hours=1))
    )
    session.commit()
    smtp_server.stop()

    result = runner.invoke(outbox_cli, ["send", "--retry-now"])

    assert result.exit_code == 0, result.output
    assert "Sent 0, failed 1, 3 still waiting." in result.output
    assert "could not be reached" in result.output


def test_outbox_send_retry_now_refuses_loop(mail_app, runner):
    result = runner.invoke(outbox_cli, ["send", "--retry-now", "--loop"])
    assert result.exit_code == 2
    assert "one-off" in result.output
