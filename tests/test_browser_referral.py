"""A referral in the browser, signed in as staff: preview, send, cancel one before the
outbox sends it; the loopback SMTP server then gets the other one's emails, once."""

from __future__ import annotations

import pytest

from .conftest import deliver_due, make_staff, sign_in_in_browser
from .factories import make_clinic, make_contact_request

pytestmark = pytest.mark.browser


def _sign_in(page, app, live_server: str, path: str) -> None:
    sign_in_in_browser(page, app, f"{live_server}{path}")


def _card(page, clinic: str):
    return page.locator("li.referral-candidate", has=page.get_by_role("heading", name=clinic))


def test_staff_refer_with_the_preview_and_cancel_one_before_it_is_sent(
    sqlite_only, app, session, live_server, browser, runner, smtp
):
    app.config["DEFAULT_LOCALE"] = "nb"
    make_clinic(session, name="Ryggsenteret", email="post@ryggsenteret.example")
    make_clinic(session, name="Nakkesenteret", email="post@nakkesenteret.example")
    request = make_contact_request(session, email="pia@example.org", language="nb")
    session.commit()
    make_staff(app)
    deliver_due(app, runner)  # the request's own notices, out of the way
    before = len(smtp.messages)

    page = browser.new_context(locale="nb-NO").new_page()
    _sign_in(page, app, live_server, f"/staff/requests/{request.id}?lang=nb")

    for clinic in ("Ryggsenteret", "Nakkesenteret"):
        _card(page, clinic).get_by_role("link", name="Se over henvisningen").click()
        bodies = page.locator("pre.email-body").all_inner_texts()
        assert f"Hei {clinic}," in bodies[0] and "Navn: Pia Pasient" in bodies[0]
        assert f"Vi har sendt henvendelsen din videre til {clinic}" in bodies[1]
        assert "Pasienten har ikke sagt ja til at beskrivelsen kan deles" in page.inner_text("main")
        page.get_by_role("button", name="Send henvisning").click()
        assert f"Henvist til {clinic}." in page.inner_text("main")
        assert _card(page, clinic).get_by_role("button", name="Angre henvisning").is_visible()

    _card(page, "Ryggsenteret").get_by_role("button", name="Angre henvisning").click()
    assert "Henvisningen til Ryggsenteret er angret" in page.inner_text("main")
    assert _card(page, "Ryggsenteret").get_by_role("link", name="Se over henvisningen").is_visible()
    assert "angret" in page.locator("ul.history").inner_text()

    deliver_due(app, runner)
    deliver_due(app, runner)  # a second run sends nothing again
    sent = smtp.messages[before:]
    recipients = [message["To"] for message in sent]
    assert "post@ryggsenteret.example" not in recipients
    assert recipients.count("post@nakkesenteret.example") == 1
    [told] = [m for m in sent if m["To"] == "pia@example.org"]
    assert "Nakkesenteret" in told.get_content() and "Ryggsenteret" not in told.get_content()

    page.reload()
    assert "sendt" in _card(page, "Nakkesenteret").inner_text()
    assert _card(page, "Nakkesenteret").get_by_role("button", name="Angre henvisning").count() == 0
