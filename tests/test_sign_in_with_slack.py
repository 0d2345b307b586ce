"""Story: a coordinator opens the secure page, signs in with Slack and lands where they were
going; the page lets in only members whose role may see identifiers, refuses anything forged
or replayed, never sends the browser elsewhere, and forgets a session after 30 idle minutes or
12 hours. Every step is real HTTP: the app, and the Slack stand-in's Sign in with Slack."""

from __future__ import annotations

import datetime as dt
import html
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bot.secure_links import safe_next
from pages.framework import FORM_EXPIRED, SECURITY_HEADERS, Pages
from storage import audit
from storage.repositories import members as member_repo
from storage.repositories import web_sessions as session_repo
from tests.conftest import Bot

CASEY, LEE, PAT, ROBIN, ALEX = "U0COORD01", "U0LEAD001", "U0SPONS01", "U0STRANGER", "U0ADMIN01"
HOME = "/secure/"


def sessions(bot: Bot, user: str | None = None) -> int:
    with bot.db.session() as s:
        return session_repo.count_sessions(s, user)


def signin_events(bot: Bot) -> list[tuple[str, str, str | None]]:
    with bot.db.session() as s:
        return [(e.action, e.actor, e.reason) for e in audit.history(s, "web_session", "-")]


def to_slack(bot: Bot, browser: requests.Session, next_path: str | None = HOME,
             raw_query: str | None = None) -> str:
    """Open /secure/login: the app sends the browser to Slack's authorize page."""
    query = raw_query if raw_query is not None else (
        "" if next_path is None else "?" + requests.models.RequestEncodingMixin._encode_params(
            {"next": next_path}))
    resp = browser.get(bot.url + "/secure/login" + query, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    assert location.startswith(bot.standin.base_url + "/openid/connect/authorize?")
    return location


def back_from_slack(bot: Bot, browser: requests.Session, authorize: str, user: str) -> str:
    """Slack signs `user` in and sends the browser back: the callback URL with code and state."""
    bot.standin.sign_in_as(user)
    try:
        resp = browser.get(authorize, allow_redirects=False, timeout=10)
    finally:
        bot.standin.sign_in_as(None)
    assert resp.status_code == 302
    callback = resp.headers["location"]
    assert callback.startswith(bot.url + "/secure/auth/callback?")
    return callback


def sign_in(bot: Bot, user: str, next_path: str | None = HOME, raw_query: str | None = None
            ) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    callback = back_from_slack(bot, browser, to_slack(bot, browser, next_path, raw_query), user)
    return browser, browser.get(callback, timeout=10)


def test_a_coordinator_signs_in_and_lands_where_they_were_going(bot: Bot) -> None:
    browser = requests.Session()
    first = browser.get(bot.url + "/secure/?study=ALZ", allow_redirects=False, timeout=10)
    assert first.status_code == 302
    assert first.headers["location"] == "/secure/login?next=%2Fsecure%2F%3Fstudy%3DALZ"
    authorize = to_slack(bot, browser, "/secure/?study=ALZ")
    args = parse_qs(urlsplit(authorize).query)
    assert args["response_type"] == ["code"] and args["code_challenge_method"] == ["S256"]
    assert set(args["scope"][0].split()) == {"openid", "email", "profile"}
    assert args["redirect_uri"] == [bot.url + "/secure/auth/callback"]
    assert args["state"][0] and args["nonce"][0] and len(args["code_challenge"][0]) == 43
    landed = browser.get(back_from_slack(bot, browser, authorize, CASEY), timeout=10)
    assert landed.url == bot.url + "/secure/?study=ALZ"
    home = browser.get(bot.url + HOME, timeout=10)
    assert home.status_code == 200
    assert "Signed in as" in home.text and CASEY in home.text and "ALZ" in home.text
    assert "Sign out" in home.text
    assert sessions(bot, CASEY) == 1
    assert signin_events(bot) == [("signin.succeeded", CASEY, None)]
    # the database keeps only a hash of the cookie
    cookie = browser.cookies.get("prescreen_session")
    assert cookie
    with bot.db.session() as s:
        assert session_repo.get_session(s, cookie) is None


def test_the_helper_signs_in_for_other_stories(bot: Bot) -> None:
    browser = bot.signed_in(LEE)
    assert browser.get(bot.url + HOME, timeout=10).status_code == 200


@pytest.mark.parametrize(("user", "text"), [
    (PAT, "You are a stakeholder of ALZ: contact cards are for coordinators, approvers and admins."),
    (ROBIN, "You are not a member of any study. Ask your admin to add you."),
])
def test_only_roles_that_may_see_identifiers_get_in(bot: Bot, user: str, text: str) -> None:
    browser, resp = sign_in(bot, user)
    assert resp.status_code == 403
    assert text in resp.text
    assert "Sign in with Slack" in resp.text
    assert sessions(bot) == 0 and not browser.cookies.get("prescreen_session")
    assert signin_events(bot) == [("signin.refused", user, "no role that may see identifiers")]


def test_an_id_token_for_another_workspace_is_refused(bot: Bot) -> None:
    bot.standin.tamper_next_id_token("team")
    _browser, resp = sign_in(bot, CASEY)
    assert resp.status_code == 403
    assert "You signed in to another Slack workspace" in resp.text
    assert sessions(bot) == 0
    assert signin_events(bot) == [("signin.refused", "unknown", "another workspace")]


@pytest.mark.parametrize("tampering", ["signature", "audience", "nonce", "issuer", "expired"])
def test_a_tampered_id_token_is_refused(bot: Bot, tampering: str,
                                        caplog: pytest.LogCaptureFixture) -> None:
    bot.standin.tamper_next_id_token(tampering)
    browser, resp = sign_in(bot, CASEY)
    assert resp.status_code == 403
    assert "Slack's answer could not be verified, so you are not signed in." in html.unescape(
        resp.text)
    assert sessions(bot) == 0 and not browser.cookies.get("prescreen_session")
    assert [a for a, _actor, _r in signin_events(bot)] == ["signin.refused"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "prescreen.signin"]
    assert len(warnings) == 1 and warnings[0].startswith("sign-in refused: ID token")
    token = bot.standin.oidc.issued[-1]
    assert token["nonce"] not in warnings[0]
    # the next, honest sign-in works
    _browser, again = sign_in(bot, CASEY)
    assert again.status_code == 200 and again.url == bot.url + HOME


def test_a_callback_is_used_once_and_only_by_the_browser_that_started_it(bot: Bot) -> None:
    browser = requests.Session()
    authorize = to_slack(bot, browser)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    callback = back_from_slack(bot, browser, authorize, CASEY)
    # another browser (a link sent to someone) cannot finish it
    other = requests.get(callback, timeout=10)
    assert other.status_code == 403 and "started in another browser" in other.text
    assert browser.get(callback, timeout=10).url == bot.url + HOME
    # replayed with the state cookie: used already
    replay = requests.Session()
    replay.cookies.set("prescreen_login", state)
    again = replay.get(callback, timeout=10)
    assert again.status_code == 403 and "This sign-in link was used already." in again.text
    assert sessions(bot) == 1


@pytest.mark.parametrize("raw_query", [
    "?next=//evil.example", "?next=https://evil.example", "?next=/%5Cevil", "?next=%2F%2Fevil",
    "?next=%252F%252Fevil", "?next=/secure/%2F%2Fevil.example", "?next=/secure/../evil",
    "?next=/secure/%5C%5Cevil", "?next=javascript:alert(1)", "?next=/secure/%0d%0aSet-Cookie:x",
])
def test_an_open_redirect_attempt_lands_on_the_home_page(bot: Bot, raw_query: str) -> None:
    _browser, resp = sign_in(bot, CASEY, raw_query=raw_query)
    assert [r.headers["location"] for r in resp.history] == [HOME]
    assert resp.url == bot.url + HOME


def test_safe_next_keeps_the_page_own_paths() -> None:
    assert safe_next("/secure/c/ALZ-0001") == "/secure/c/ALZ-0001"
    assert safe_next("/secure/search?q=555") == "/secure/search?q=555"
    for bad in ("//evil", "/\\evil", "https://evil.example/secure/", "/secure//evil", "/securex",
                "/secure/\\evil", "%2Fsecure%2F", " /secure/", "/secure/é"):
        assert safe_next(bad) == HOME, bad


def test_a_session_ends_after_30_idle_minutes(bot: Bot) -> None:
    browser = bot.signed_in(CASEY)
    for _ in range(3):  # in use: 75 minutes, never 30 idle
        bot.clock.advance(dt.timedelta(minutes=25))
        assert browser.get(bot.url + HOME, timeout=10).url == bot.url + HOME
    bot.clock.advance(dt.timedelta(minutes=30, seconds=1))
    resp = browser.get(bot.url + HOME, allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    assert resp.headers["location"] == "/secure/login?next=%2Fsecure%2F"
    assert sessions(bot) == 0


def test_a_session_ends_12_hours_after_sign_in_however_busy(bot: Bot) -> None:
    browser = bot.signed_in(CASEY)
    for _ in range(24):  # every 29 minutes for 11 h 36 min
        bot.clock.advance(dt.timedelta(minutes=29))
        assert browser.get(bot.url + HOME, allow_redirects=False, timeout=10).status_code == 200
    bot.clock.advance(dt.timedelta(minutes=25))  # 12 h 1 min after sign-in
    resp = browser.get(bot.url + HOME, allow_redirects=False, timeout=10)
    assert resp.status_code == 302 and resp.headers["location"].startswith("/secure/login")


def _csrf(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def test_sign_out_ends_the_session(bot: Bot) -> None:
    browser = bot.signed_in(CASEY)
    token = _csrf(browser.get(bot.url + HOME, timeout=10).text)
    resp = browser.post(bot.url + "/secure/logout", data={"csrf_token": token}, timeout=10)
    assert resp.status_code == 200 and "You are signed out" in resp.text
    assert "prescreen_session=;" in resp.headers["set-cookie"]
    assert "Max-Age=0" in resp.headers["set-cookie"]
    assert sessions(bot) == 0
    assert not browser.cookies.get("prescreen_session")
    assert [a for a, _u, _r in signin_events(bot)] == ["signin.succeeded", "signin.signed_out"]


@pytest.mark.parametrize("token", ["forged-token", "", None])
def test_a_form_with_a_forged_csrf_token_changes_nothing(bot: Bot, token: str | None) -> None:
    browser = bot.signed_in(CASEY)
    data = {} if token is None else {"csrf_token": token}
    resp = browser.post(bot.url + "/secure/logout", data=data, timeout=10)
    assert resp.status_code == 403 and FORM_EXPIRED in resp.text
    assert sessions(bot, CASEY) == 1
    assert browser.get(bot.url + HOME, timeout=10).status_code == 200
    # another session's token is no better
    other = bot.signed_in(CASEY)
    their = _csrf(other.get(bot.url + HOME, timeout=10).text)
    assert browser.post(bot.url + "/secure/logout", data={"csrf_token": their},
                        timeout=10).status_code == 403
    assert sessions(bot, CASEY) == 2


def test_every_page_carries_the_security_headers_and_strict_cookies(bot: Bot) -> None:
    browser = requests.Session()
    authorize = to_slack(bot, browser)
    callback = back_from_slack(bot, browser, authorize, CASEY)
    done = browser.get(callback, allow_redirects=False, timeout=10)
    cookies = [c for k, c in done.raw.headers.items() if k.lower() == "set-cookie"]
    session_cookie = next(c for c in done.raw.headers.getlist("set-cookie")
                          if c.startswith("prescreen_session="))
    assert cookies
    flags = {f.strip() for f in session_cookie.split(";")[1:]}
    assert flags == {"Path=/", "HttpOnly", "SameSite=Lax"}  # loopback http: no Secure
    answers = [
        done,
        browser.get(bot.url + HOME, timeout=10),
        browser.get(bot.url + "/secure/static/page.css", timeout=10),
        browser.get(bot.url + "/secure/no-such-page", timeout=10),
        requests.get(bot.url + HOME, allow_redirects=False, timeout=10),
        requests.get(bot.url + "/secure/login", allow_redirects=False, timeout=10),
        requests.post(bot.url + "/secure/logout", timeout=10),
        requests.get(callback, timeout=10),
    ]
    for resp in answers:
        for name, value in SECURITY_HEADERS:
            assert resp.headers.get(name) == value, (resp.url, name)
    assert answers[3].status_code == 404


def test_over_https_the_cookie_is_host_only_and_secure(bot: Bot) -> None:
    ctx = bot.ctx
    https = type(ctx)(**{**ctx.__dict__, "settings": ctx.settings.model_copy(
        update={"public_url": "https://prescreen.example.org"})})
    pages = Pages(https)
    assert pages.session_cookie == "__Host-prescreen_session"
    from pages.framework import Response

    resp = Response()
    pages.set_cookie(resp, pages.session_cookie, "abc")
    assert resp.headers == [("set-cookie",
                             "__Host-prescreen_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure")]


def test_a_deactivated_member_is_signed_out_at_the_next_request(bot: Bot) -> None:
    browser = bot.signed_in(CASEY)
    with bot.db.session() as s:
        member = member_repo.find(s, CASEY)
        assert member is not None
        member_repo.deactivate(s, member, actor=ALEX, reason="left the team")
    resp = browser.get(bot.url + HOME, allow_redirects=False, timeout=10)
    assert resp.status_code == 403
    assert "You are not a member of any study." in resp.text
    assert "Max-Age=0" in resp.headers["set-cookie"]
    assert sessions(bot, CASEY) == 0
