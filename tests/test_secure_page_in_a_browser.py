"""Story: in a real browser (Chromium), a coordinator opens the secure page, picks "Continue as
casey" on Slack's sign-in page and lands on the home page; a stakeholder is turned away with the
reason; an expired session goes back to sign-in; a forged ID token shows the refusal page."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Bot
from tests.test_sandbox_console import CHROMIUM, CHROMIUM_ARGS, WAIT_MS

CASEY, PAT = "U0COORD01", "U0SPONS01"


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
