"""Story, in a real browser: Casey opens the secure page's add form from a link, signs in with
Slack (the stand-in's account picker), mistypes the phone number and sees the problem under that
field with everything else kept, fixes it, and lands on the new candidate's contact card. The view
is in the audit trail."""

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

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
CASEY = "U0COORD01"
NAME = "Wilhelmina Starling-Voss"  # fictional
WAIT_MS = 15_000
NOW = dt.datetime(2026, 11, 24, 15, 42, tzinfo=dt.UTC)  # Tuesday, 10:42 in Boston


@pytest.fixture
def page() -> Iterator[Any]:
    in_ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    if not Path(CHROMIUM).exists():
        if in_ci:
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright  # in the test extras; CI installs them

    with time_machine.travel(NOW, tick=True), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        tab = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        tab.set_default_timeout(WAIT_MS)
        problems: list[str] = []
        tab.on("pageerror", lambda exc: problems.append(str(exc)))
        tab.on("console", lambda msg: problems.append(msg.text)  # e.g. a style the CSP refused
               if msg.type == "error" and "Refused to" in msg.text else None)
        yield tab
        browser.close()
        assert not problems, f"the page had script errors or CSP refusals: {problems}"


def test_coordinator_adds_a_candidate_in_the_browser_and_sees_the_card(bot: Bot, page: Any) -> None:
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
