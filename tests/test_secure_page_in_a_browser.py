"""Story: in a real browser (Chromium), a coordinator opens the secure page, picks "Continue as
casey" on Slack's sign-in page and lands on the home page; a stakeholder is turned away with the
reason; an expired session goes back to sign-in; a tampered ID token (signature, audience, nonce
or issuer) shows the refusal page and leaves no session. A coordinator adds a candidate (one
mistake shown next to its field, then fixed) and sees the contact card, and the view is audited.
A link to another study's candidate shows the refusal with no identifier and no audited view; a
note sent with a forged CSRF token is refused and not stored; a sign-in link that tries to send
the browser elsewhere lands on the page's own home."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from pages.framework import FORM_EXPIRED
from storage.models import AuditEvent, Candidate, CandidateNote
from tests.browser import chromium_tab
from tests.conftest import Bot
from tests.test_sandbox_console import RunningSandbox

CASEY, SAM, PAT = "U0COORD01", "U0COORD02", "U0SPONS01"  # ALZ; ALZ and MDD; ALZ stakeholder
NAME = "Wilhelmina Starling-Voss"  # fictional
PHONE = "(617) 555-0199"
NOW = dt.datetime(2026, 11, 24, 15, 42, tzinfo=dt.UTC)


@pytest.fixture
def page(bot: Bot) -> Iterator[Any]:
    with chromium_tab(390, 844, csp_errors=True) as tab:  # a phone
        yield tab


def sign_in_as(bot: Bot, page: Any, name: str) -> None:
    page.goto(bot.url + "/secure/")
    page.get_by_role("button", name=f"Continue as {name}").click()


def test_a_coordinator_signs_in_with_slack_and_lands_on_the_home_page(bot: Bot, page: Any) -> None:
    from playwright.sync_api import expect

    sign_in_as(bot, page, "casey")
    expect(page).to_have_url(bot.url + "/secure/")
    expect(page.locator("main h1")).to_have_text("Secure page")
    expect(page.locator(".studies")).to_contain_text("ALZ")
    expect(page.get_by_role("link", name="Add a candidate")).to_be_visible()
    expect(page.locator("header")).to_contain_text(CASEY)
    # the style sheet loaded under the page's own CSP
    assert page.evaluate("getComputedStyle(document.querySelector('.bar')).display") == "flex"
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("main")).to_contain_text("You are signed out")


def test_a_stakeholder_is_refused_with_the_reason(bot: Bot, page: Any) -> None:
    from playwright.sync_api import expect

    sign_in_as(bot, page, "pat")
    expect(page.locator("main")).to_contain_text(
        "You are a stakeholder of ALZ: contact cards are for coordinators, approvers and admins.")


def test_an_expired_session_goes_back_to_sign_in(bot: Bot, page: Any) -> None:
    from playwright.sync_api import expect

    sign_in_as(bot, page, "casey")
    expect(page).to_have_url(bot.url + "/secure/")
    bot.clock.advance(dt.timedelta(minutes=31))
    page.goto(bot.url + "/secure/")
    expect(page.get_by_role("button", name="Continue as casey")).to_be_visible()


@pytest.mark.parametrize("tampering", ["signature", "audience", "nonce", "issuer"])
def test_a_tampered_id_token_shows_the_refusal_page(bot: Bot, page: Any, tampering: str) -> None:
    from playwright.sync_api import expect

    bot.standin.tamper_next_id_token(tampering)
    sign_in_as(bot, page, "casey")
    expect(page.locator("main h1")).to_have_text("Not signed in")
    expect(page.locator("main")).to_contain_text(
        "Slack's answer could not be verified, so you are not signed in.")
    expect(page.get_by_role("link", name="Sign in with Slack")).to_be_visible()
    # no session: the page asks to sign in again
    page.goto(bot.url + "/secure/")
    expect(page.get_by_role("button", name="Continue as casey")).to_be_visible()


def test_a_link_to_another_studys_candidate_shows_no_identifier(bot: Bot, page: Any) -> None:
    """Sam adds an MDD candidate; Casey (ALZ only) opens a link to that card, signs in on the
    way, and is refused: nothing of the candidate on the page, and no view in the audit trail."""
    from playwright.sync_api import expect

    ref = bot.add_candidate(SAM, "MDD", name=NAME, phone=PHONE)
    page.goto(f"{bot.url}/secure/c/{ref}")
    page.get_by_role("button", name="Continue as casey").click()
    expect(page.locator("main")).to_contain_text(
        "You are not a member of MDD. Ask your admin to add you.")
    for identifier in (NAME, "Starling", "555-0199", "6175550199"):
        assert identifier not in page.content()
    with bot.db.session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "phi.viewed")).all() == []


def test_a_note_with_a_forged_csrf_token_is_refused_and_not_stored(bot: Bot, page: Any) -> None:
    from playwright.sync_api import expect

    ref = bot.add_candidate(CASEY, "ALZ", name=NAME, phone=PHONE)
    page.goto(f"{bot.url}/secure/c/{ref}")
    page.get_by_role("button", name="Continue as casey").click()
    page.get_by_label("Add a note").fill("Call after five.")
    note_form = page.locator("form[action$='/notes']")
    note_form.locator("input[name=csrf_token]").evaluate("input => input.value = 'forged'")
    note_form.get_by_role("button", name="Save note").click()
    expect(page.locator("main")).to_contain_text(FORM_EXPIRED)
    with bot.db.session() as s:
        assert s.scalars(select(CandidateNote)).all() == []

    # as the page says: reload and try again, and the note is kept
    page.goto(f"{bot.url}/secure/c/{ref}")
    page.get_by_label("Add a note").fill("Call after five.")
    page.get_by_role("button", name="Save note").click()
    expect(page.locator("ol.notes")).to_contain_text("Call after five.")
    with bot.db.session() as s:
        assert len(s.scalars(select(CandidateNote)).all()) == 1


@pytest.mark.parametrize("elsewhere", ["https://evil.example/", "//evil.example"])
def test_a_sign_in_link_to_another_site_lands_on_the_home_page(
        bot: Bot, page: Any, elsewhere: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{bot.url}/secure/login?next={elsewhere}")
    page.get_by_role("button", name="Continue as casey").click()
    expect(page).to_have_url(bot.url + "/secure/")
    expect(page.locator("main h1")).to_have_text("Secure page")


def test_a_coordinator_adds_a_candidate_and_sees_the_contact_card(bot: Bot, page: Any) -> None:
    """Casey opens the add form from a link, signs in, mistypes the phone number and sees the
    problem under that field with everything else kept, fixes it, and lands on the new
    candidate's contact card. The view is in the audit trail."""
    with time_machine.travel(NOW, tick=True):  # Tuesday, 10:42 in Boston
        add_and_see_the_card(bot, page)


def add_and_see_the_card(bot: Bot, page: Any) -> None:
    page.goto(f"{bot.url}/secure/candidates/new?study=ALZ")
    page.get_by_role("button", name="Continue as casey").click()  # Slack's sign-in
    page.get_by_role("heading", name="Add a candidate to ALZ").wait_for()

    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Phone").fill("617 555 01")
    page.get_by_label("Date of birth").fill("1950-02-14")
    page.get_by_label("State").select_option("MA")
    page.get_by_label("The candidate agreed to be contacted").check()
    page.get_by_role("button", name="Add the candidate").click()

    error = page.locator("#phone-error")
    error.wait_for()
    assert error.inner_text() == "That phone number is not valid. Check the digits and area code."
    assert page.locator("#phone").get_attribute("aria-describedby") == "phone-error"
    assert page.locator(".field-error").count() == 1
    assert page.get_by_label("Name").input_value() == NAME
    assert page.get_by_label("State").input_value() == "MA"
    with bot.db.session() as s:
        assert s.scalars(select(Candidate)).all() == []

    page.get_by_label("Phone").fill("617 555 0199")
    page.get_by_role("button", name="Add the candidate").click()
    page.get_by_role("heading", name=f"ALZ-0001 · {NAME}").wait_for()
    assert page.url == f"{bot.url}/secure/c/ALZ-0001"
    phone = page.locator("a.phone")
    assert phone.get_attribute("href") == "tel:+16175550199"
    assert phone.inner_text() == "(617) 555-0199"
    assert "open now (10:42 for them)" in page.locator("dd.window").inner_text()
    assert "1950-02-14 · age 76" in page.content()

    with bot.db.session() as s:
        viewed = s.scalars(select(AuditEvent).where(AuditEvent.action == "phi.viewed")).all()
        assert [(a.actor, a.entity, a.entity_id, a.after) for a in viewed] == [
            (CASEY, "candidate", "ALZ-0001",
             {"fields": ["name", "phone", "dob"], "via": "contact card"})]


@pytest.fixture
def running_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    from tests import test_sandbox_console

    yield from test_sandbox_console.sandbox.__wrapped__(  # type: ignore[attr-defined]
        tmp_path, monkeypatch, "portal")


def test_the_sandbox_console_opens_the_secure_page_as_the_acting_member(
        running_sandbox: RunningSandbox) -> None:
    sandbox = running_sandbox
    import requests

    browser = requests.Session()
    home = browser.get(sandbox.url + f"/sandbox/secure?user={CASEY}", timeout=15)
    assert home.status_code == 200 and home.url == sandbox.url + "/secure/"
    assert "Signed in as" in home.text and CASEY in home.text
    console = requests.get(sandbox.url + "/", timeout=15).text
    assert "Open the secure page" in console
