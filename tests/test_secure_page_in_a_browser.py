"""Story: in a real browser (Chromium), a coordinator opens the secure page, picks "Continue as
casey" on Slack's sign-in page and lands on the home page; a stakeholder is turned away with the
reason; an expired session goes back to sign-in; a forged ID token shows the refusal page. A
coordinator adds a candidate (one mistake shown next to its field, then fixed) and sees the
contact card, and the view is audited."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from storage.models import AuditEvent, Candidate
from tests.conftest import Bot
from tests.test_sandbox_console import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, RunningSandbox

CASEY, PAT = "U0COORD01", "U0SPONS01"
NAME = "Wilhelmina Starling-Voss"  # fictional
NOW = dt.datetime(2026, 11, 24, 15, 42, tzinfo=dt.UTC)


@pytest.fixture
def page(bot: Bot) -> Iterator[Any]:
    in_ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    if not Path(CHROMIUM).exists():
        if in_ci:
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        tab = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        tab.set_default_timeout(WAIT_MS)
        problems: list[str] = []
        tab.on("pageerror", lambda exc: problems.append(str(exc)))
        tab.on("console", lambda m: problems.append(m.text)
               if m.type == "error" and "Content Security Policy" in m.text else None)
        yield tab
        browser.close()
        assert not problems, f"the page reported errors (CSP or JavaScript): {problems}"


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


def test_a_tampered_id_token_shows_the_refusal_page(bot: Bot, page: Any) -> None:
    from playwright.sync_api import expect

    bot.standin.tamper_next_id_token("signature")
    sign_in_as(bot, page, "casey")
    expect(page.locator("main h1")).to_have_text("Not signed in")
    expect(page.locator("main")).to_contain_text("could not be verified")
    expect(page.get_by_role("link", name="Sign in with Slack")).to_be_visible()


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
