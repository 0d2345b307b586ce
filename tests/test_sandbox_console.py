"""Story: a coordinator lead tries the whole bot in a browser, without a Slack workspace. They
open the sandbox console, type /prescreen as the coordinator, fill the modal (and see an inline
error), submit a pre-qualified call and read the ephemeral summary; they switch to the approver,
click Approve on the card in the study channel and watch it update; they move the clock 15
minutes and the coordinator's reminder DM arrives. With identifiers kept off Slack (the default),
they add the new candidate on the secure page the modal links to, come back to the modal with the
reference code filled in, log the call and open the contact card from the status reply, and no
identifier they typed ever shows in the console's Slack view. Every step is a real signed request
to the real app. A screenshot of each step is kept (SANDBOX_ARTIFACTS, default tests/artifacts/)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from app.runtime import Runtime, build_runtime
from bot import ids
from bot.clock import OffsetClock
from bot.config import Settings
from sandbox.seed import DEMO, DEMO_LEADS, DEMO_NAMES
from tests.browser import WAIT_MS, chromium_tab
from tests.conftest import _QuietHandler, _ThreadingWSGIServer, identifier_forms

CASEY, LEE = "U0COORD01", "U0LEAD001"
ALZ_CHANNEL = "C0ALZ0001"
NEW_NAME = "Wilhelmina Starling-Voss"  # the candidate typed in the browser; fictional
# its reference code: the next ALZ number after the demo candidates and leads
NEW_REF = f"ALZ-{sum(c.study == 'ALZ' for c in [*DEMO, *DEMO_LEADS]) + 1:04d}"
# the candidate added on the secure page in the portal-mode walk-through; fictional
PORTAL_NAME, PORTAL_DOB = "Ottoline Quarrington-Beck", "1955-11-02"
PORTAL_PHONE, PORTAL_E164 = "(617) 555-0147", "+16175550147"
# the sandbox runs only when nothing real is configured
SANDBOX_UNSET = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL",
                 "PRESCREEN_ENCRYPTION_KEYS", "HOST", "MS_TENANT_ID", "MS_CLIENT_ID",
                 "MS_CLIENT_SECRET", "MS_CLIENT_CERT_PATH")
# The sandbox's clock starts here whatever the real date and hour: a Monday, 07:30 in New York,
# before the "your day" DMs (08:00 local), the day's digests (ALZ 08:30 New York, MDD 09:00
# Chicago) and the weekly updates (Monday 09:00), more than 12 hours after the previous ones, so
# none is caught up at start and "a day later" brings exactly one daily digest per study and the
# weekly chart.
START = dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.UTC)


def artifacts_dir() -> Path:
    path = Path(os.environ.get("SANDBOX_ARTIFACTS") or Path(__file__).parent / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningSandbox:
    url: str
    runtime: Runtime

    def state(self, user: str) -> dict[str, Any]:
        resp = requests.get(self.url + "/sandbox/state", params={"user": user}, timeout=10)
        resp.raise_for_status()
        return dict(resp.json())


def _sandbox_settings(tmp_path: Path, port: int, phi_surface: str = "portal") -> Settings:
    # The sandbox always uses its own SQLite file (in a temporary DATA_DIR here), also on the
    # PostgreSQL CI run: it is a one-process demo, and the app's behaviour on PostgreSQL is
    # covered by the other stories, which drive the same handlers through the same stand-in.
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token=None,
        slack_app_token=None,
        data_dir=tmp_path / "data",
        port=port,
        outbox_channel_interval=0,
        log_level="WARNING",
        phi_surface=phi_surface,
    )


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            phi_surface: str) -> Iterator[RunningSandbox]:
    """`prescreen-bot run` without Slack tokens, in-process: web app, stand-in and worker."""
    from wsgiref.simple_server import make_server

    from app.scheduler import run_worker

    for var in SANDBOX_UNSET:
        monkeypatch.delenv(var, raising=False)
    port = _free_port()
    settings = _sandbox_settings(tmp_path, port, phi_surface)
    assert settings.sandbox
    url = f"http://127.0.0.1:{port}"
    rt = build_runtime(settings, app_url=url, clock=OffsetClock(start=START))
    server = make_server("127.0.0.1", port, rt.web, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(rt.ctx, stop), daemon=True)
    worker.start()
    yield RunningSandbox(url, rt)
    stop.set()
    worker.join(timeout=15)
    server.shutdown()
    server.server_close()
    rt.close()


@pytest.fixture
def browser_page(sandbox: RunningSandbox) -> Iterator[Any]:
    with chromium_tab(1360, 860) as page:
        yield page


class Steps:
    def __init__(self, page: Any, first: int = 1) -> None:
        self.page = page
        self.dir = artifacts_dir()
        self.n = first - 1

    def shot(self, name: str, page: Any = None) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{name}.png"
        (page or self.page).screenshot(path=str(path))
        return path


def _field(page: Any, action_id: str) -> Any:
    return page.locator(f'#modal [data-action-id="{action_id}"]')


# Logs a call for a new candidate typed into the modal: PHI_SURFACE=slack. The default (portal)
# walk-through is test_log_a_new_candidate_through_the_secure_page below.
@pytest.mark.phi_surface("slack")
def test_try_the_whole_bot_in_a_browser(sandbox: RunningSandbox, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    steps = Steps(page)
    page.goto(sandbox.url + "/")

    # the workspace: study channels, the bot DM, Home; the demo channel already has cards
    page.select_option("#user-switcher", CASEY)
    expect(page.locator("#channel-list")).to_contain_text("# alz-prescreen")
    expect(page.locator("#channel-list")).to_contain_text("# mdd-prescreen")
    expect(page.locator("#dm-list")).to_contain_text("prescreen-bot")
    expect(page.locator("#messages")).to_contain_text("Referral ALZ-0001")
    steps.shot("workspace")

    # /prescreen opens the real log-call modal; picking the study (a dispatch_action select)
    # makes the app update the view with that study's questionnaire
    page.fill("#composer-input", "/prescreen")
    page.press("#composer-input", "Enter")
    expect(page.locator("#modal-backdrop")).to_be_visible()
    expect(page.locator("#modal-title")).to_have_text("Log pre-screen call")
    expect(page.locator("#modal-body")).to_contain_text("Pick the study")
    _field(page, ids.STUDY_SELECT).select_option("ALZ")
    expect(_field(page, "answer:age")).to_be_visible()
    expect(_field(page, ids.STUDY_SELECT)).to_have_value("ALZ")
    _field(page, ids.NAME_INPUT).fill(NEW_NAME)
    _field(page, ids.PHONE_INPUT).fill("12")  # not a phone number
    _field(page, ids.DOB_INPUT).fill("1957-03-09")
    _field(page, ids.REGION_INPUT).select_option("MA")
    _field(page, ids.CONSENT_INPUT).locator('input[value="yes"]').check()
    _field(page, "answer:age").fill("68")
    _field(page, "answer:dx").locator('input[value="no"]').check()
    _field(page, "answer:region").select_option("NE")
    _field(page, ids.OUTCOME_SELECT).select_option("pre_qualified")
    steps.shot("modal-filled")

    # the app answers response_action=errors: shown under the field, input kept
    page.click("#modal-submit")
    phone_block = page.locator(f'#modal .bk-input-block[data-block-id="{ids.PHONE_BLOCK}"]')
    expect(phone_block.locator(".bk-error")).to_be_visible()
    expect(_field(page, ids.NAME_INPUT)).to_have_value(NEW_NAME)
    steps.shot("inline-error")

    _field(page, ids.PHONE_INPUT).fill("(617) 555-0199")
    page.click("#modal-submit")
    expect(page.locator("#modal-backdrop")).to_be_hidden()
    summary = page.locator(".msg.ephemeral", has_text=NEW_REF)
    expect(summary).to_contain_text("Only visible to you")
    expect(summary).to_contain_text("referral sent for approval")
    card = page.locator(".msg", has_text=f"Referral {NEW_REF}").last
    expect(card).to_contain_text("Waiting for approval")
    steps.shot("ephemeral-summary")

    # the approver sees the card in the channel and approves it
    page.select_option("#user-switcher", LEE)
    card = page.locator(".msg:not(.ephemeral)", has_text=f"Referral {NEW_REF}").last
    expect(card.get_by_role("button", name="Approve")).to_be_visible()
    expect(page.locator(".msg.ephemeral", has_text=NEW_REF)).to_have_count(0)
    steps.shot("approver-sees-card")
    card.get_by_role("button", name="Approve").click()
    expect(card).to_contain_text("Sent to site")
    expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    expect(card).to_contain_text("(edited)")
    shot = steps.shot("card-updated")
    thread = page.locator(".thread").last
    expect(thread).to_contain_text("approved")

    # time moves on: the reminder for the demo callback fires and reaches the coordinator's DM
    reminder_ref = next(f"ALZ-{i:04d}" for i, c in enumerate(
        [c for c in DEMO if c.study == "ALZ"], start=1) if c.callback_in_minutes == 10)
    page.click(".clock-btn[data-minutes='15']")
    expect(page.locator(".clock-btn[data-minutes='15']")).to_be_enabled(timeout=60_000)
    page.select_option("#user-switcher", CASEY)
    page.locator("#dm-list .nav-item").click()
    expect(page.locator("#pane-title")).to_have_text("prescreen-bot")
    reminder = page.locator(".msg", has_text=reminder_ref).filter(has_text="Callback due").last
    expect(reminder).to_contain_text("Callback due")
    expect(reminder).not_to_contain_text("Late reminder")  # time passed in steps, as in real life
    expect(reminder.get_by_role("button", name="Snooze 15 min")).to_be_visible()
    expect(page.locator("#messages")).to_contain_text(f"{NEW_REF} was approved by")
    steps.shot("reminder-dm")

    # a button in the DM opens a modal (date and time pickers); Cancel closes it like Slack
    reminder.get_by_role("button", name="Reschedule").click()
    expect(page.locator("#modal-backdrop")).to_be_visible()
    expect(page.locator("#modal input[type=date]").first).to_be_visible()
    steps.shot("reschedule-modal")
    page.click("#modal-close")
    expect(page.locator("#modal-backdrop")).to_be_hidden()

    # App Home renders the real home view, published when the tab is opened
    page.click("#nav-home")
    expect(page.locator("#home")).to_be_visible()
    expect(page.locator("#composer")).to_be_hidden()
    expect(page.locator("#home .bk-header, #home .bk-section").first).to_be_visible()
    expect(page.locator("#home")).to_contain_text(reminder_ref)
    steps.shot("app-home")

    # a day later the sponsor reads the digests and the weekly chart in the study channel
    page.select_option("#user-switcher", "U0SPONS01")
    page.click(".clock-btn[data-minutes='1440']")
    expect(page.locator(".clock-btn[data-minutes='1440']")).to_be_enabled(timeout=90_000)
    page.locator("#channel-list .nav-item", has_text="alz-prescreen").click()
    expect(page.locator("#messages")).to_contain_text("ALZ daily digest", timeout=60_000)
    chart = page.locator("#messages img.file-image").last
    expect(chart).to_be_visible(timeout=60_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chart.element_handle())
    chart.scroll_into_view_if_needed()
    steps.shot("digests")

    assert shot.exists() and shot.stat().st_size > 10_000
    _assert_no_names_in_channels(sandbox, [*DEMO_NAMES, NEW_NAME])


@pytest.mark.phi_surface("portal")
def test_log_a_new_candidate_through_the_secure_page(sandbox: RunningSandbox,
                                                     browser_page: Any, phi_surface: str) -> None:
    """PHI_SURFACE=portal, the default: the newcomer logs a call for a new candidate and opens
    the contact card, and no identifier they typed ever shows in the console's Slack view."""
    from playwright.sync_api import expect

    assert phi_surface == "portal"
    page = browser_page
    steps = Steps(page, first=11)  # after the slack-mode walk-through's screenshots
    seen: list[str] = []  # the console's Slack view at each step, HTML and text

    def look() -> None:
        seen.append(page.content())
        seen.append(page.locator("body").inner_text())

    page.goto(sandbox.url + "/")
    page.select_option("#user-switcher", CASEY)
    expect(page.locator("#messages")).to_contain_text("Referral ALZ-0001")

    # /prescreen, pick the study: no identifier field, a link to the secure page instead
    page.fill("#composer-input", "/prescreen")
    page.press("#composer-input", "Enter")
    expect(page.locator("#modal-title")).to_have_text("Log pre-screen call")
    _field(page, ids.STUDY_SELECT).select_option("ALZ")
    expect(_field(page, "answer:age")).to_be_visible()
    expect(_field(page, ids.NAME_INPUT)).to_have_count(0)
    expect(_field(page, ids.PHONE_INPUT)).to_have_count(0)
    add = page.locator("#modal a.bk-btn", has_text="Add the candidate on the secure page")
    expect(add).to_have_attribute("target", "_blank")
    expect(add).to_have_attribute("rel", "noopener noreferrer")
    _field(page, "answer:age").fill("68")  # answered before leaving: still there on return
    look()
    steps.shot("portal-modal-link")

    # the link opens a new tab, signed in as Casey (Slack's sign-in knows who is acting)
    with page.context.expect_page() as opened:
        add.click()
    secure = opened.value
    secure.set_default_timeout(WAIT_MS)
    expect(secure.locator("main h1")).to_have_text("Add a candidate to ALZ")
    assert "/secure/candidates/new" in secure.url and "handback=" in secure.url
    secure.fill("#name", PORTAL_NAME)
    secure.fill("#phone", "12")  # not a phone number
    secure.fill("#dob", PORTAL_DOB)
    secure.select_option("#state", "MA")
    secure.check("#consent")
    secure.get_by_role("button", name="Add the candidate").click()
    expect(secure.locator("#phone-error")).to_be_visible()
    expect(secure.locator("#name")).to_have_value(PORTAL_NAME)
    steps.shot("portal-add-inline-error", secure)
    secure.fill("#phone", PORTAL_PHONE)
    secure.get_by_role("button", name="Add the candidate").click()
    expect(secure.locator("main h1")).to_contain_text(f"{NEW_REF} added")
    expect(secure.locator("main")).to_contain_text(f"Your log-call form in Slack now shows {NEW_REF}")
    steps.shot("portal-added", secure)
    secure.close()

    # back in the console the same modal shows the code, without a reload; answers kept
    expect(page.locator("#modal-body")).to_contain_text(f"Candidate {NEW_REF}")
    expect(_field(page, "answer:age")).to_have_value("68")
    look()
    steps.shot("portal-modal-has-code")
    _field(page, "answer:dx").locator('input[value="no"]').check()
    _field(page, "answer:region").select_option("NE")
    _field(page, ids.OUTCOME_SELECT).select_option("pre_qualified")
    page.click("#modal-submit")
    expect(page.locator("#modal-backdrop")).to_be_hidden()
    summary = page.locator(".msg.ephemeral", has_text=NEW_REF)
    expect(summary).to_contain_text("Only visible to you")
    expect(summary).to_contain_text("referral sent for approval")
    expect(page.locator(".msg", has_text=f"Referral {NEW_REF}").last).to_contain_text(
        "Waiting for approval")
    look()
    steps.shot("portal-summary")
    page.locator("#dm-list .nav-item").click()
    expect(page.locator("#pane-title")).to_have_text("prescreen-bot")
    look()
    page.locator("#channel-list .nav-item", has_text="alz-prescreen").click()

    # the contact card is one click from Slack: the status reply's "Open contact card" button
    page.fill("#composer-input", f"/prescreen status {NEW_REF}")
    page.press("#composer-input", "Enter")
    status = page.locator(".msg.ephemeral", has_text=f"{NEW_REF} · ALZ · referred")
    expect(status).to_contain_text("Only visible to you")
    card_link = status.locator("a.bk-btn", has_text="Open contact card")
    expect(card_link).to_have_attribute("target", "_blank")
    look()
    steps.shot("portal-status")
    with page.context.expect_page() as opened:
        card_link.click()
    card = opened.value
    card.set_default_timeout(WAIT_MS)
    expect(card.locator("main h1")).to_have_text(f"{NEW_REF} · {PORTAL_NAME}")
    expect(card.locator("a.phone")).to_have_attribute("href", "tel:" + PORTAL_E164)
    steps.shot("portal-contact-card", card)
    card.close()

    # the rest of the Slack view: App Home; then everything Casey's Slack shows, and every
    # call the app made to Slack, without a trace of what was typed on the secure page
    page.click("#nav-home")
    expect(page.locator("#home .bk-header, #home .bk-section").first).to_be_visible()
    look()
    seen.append(json.dumps(sandbox.state(CASEY)))
    standin = sandbox.runtime.sandbox.standin
    seen.extend(json.dumps([c.method, c.args, c.response], default=str) for c in standin.calls)
    typed = [*identifier_forms(PORTAL_NAME), *identifier_forms(PORTAL_E164),
             *identifier_forms(PORTAL_DOB), *PORTAL_NAME.casefold().replace("-", " ").split()]
    for text in seen:
        folded = text.casefold()
        for form in typed:
            assert form not in folded, f"{form!r} (typed on the secure page) reached the Slack view"
    assert any(NEW_REF in text for text in seen), "the Slack view shows the reference code"


def _assert_no_names_in_channels(sandbox: RunningSandbox, names: list[str]) -> None:
    standin = sandbox.runtime.sandbox.standin
    channel_ids = [c["id"] for c in sandbox.runtime.sandbox.channels]
    posted = [m for cid in channel_ids for m in standin.messages(cid)]
    assert len(posted) >= 10, "the demo should have filled the study channels"
    text = json.dumps(posted)
    for name in names:
        for part in name.replace("-", " ").split():
            assert part not in text, f"{part!r} (from a candidate name) appeared in a channel"


def test_mrkdwn_is_escaped_before_formatting(sandbox: RunningSandbox, browser_page: Any) -> None:
    page = browser_page
    page.goto(sandbox.url + "/")
    page.wait_for_function("window.BlockKit !== undefined")
    out = page.evaluate("""() => {
        const box = document.createElement('div');
        box.appendChild(BlockKit.mrkdwn(
            '*Approved* by <@U0LEAD001> _today_ <img src=x onerror=alert(1)> &lt;b&gt;x&lt;/b&gt;\\n'
            + '<https://example.org/a?b=1&amp;c=2|the guide> <javascript:alert(1)|bad>',
            (id) => id === 'U0LEAD001' ? 'Lee Lead' : id));
        return {html: box.innerHTML, imgs: box.querySelectorAll('img').length,
                links: Array.from(box.querySelectorAll('a')).map(a => a.getAttribute('href'))};
    }""")
    assert out["imgs"] == 0
    assert "<b>Approved</b>" in out["html"] and "<i>today</i>" in out["html"]
    assert "@Lee Lead" in out["html"] and "<br>" in out["html"]
    assert "&lt;b&gt;x&lt;/b&gt;" in out["html"]
    assert out["links"] == ["https://example.org/a?b=1&c=2"]
    # a link to the sandbox's own secure page opens it signed in as the acting member
    page.wait_for_function("document.getElementById('secure-link').href.indexOf('next=') > 0")
    link = page.evaluate("""(base) => {
        const a = BlockKit.mrkdwn('<' + base + '/secure/c/ALZ-0003|ALZ-0003>').querySelector('a');
        return {href: a.getAttribute('href'), target: a.target, rel: a.rel};
    }""", sandbox.url)
    acting = page.input_value("#user-switcher")
    assert link == {"href": f"{sandbox.url}/sandbox/secure?user={acting}"
                            "&next=%2Fsecure%2Fc%2FALZ-0003",
                    "target": "_blank", "rel": "noopener noreferrer"}


def test_console_refuses_what_slack_would_not_send(sandbox: RunningSandbox) -> None:
    url = sandbox.url
    assert requests.post(url + "/sandbox/command", json={"user": "U0NOBODY", "text": "/prescreen"},
                         timeout=10).status_code == 400
    bad_clock = requests.post(url + "/sandbox/clock", json={"minutes": 0}, timeout=10)
    assert bad_clock.status_code == 400 and "1 to" in bad_clock.json()["error"]
    standin = sandbox.runtime.sandbox.standin
    card = standin.wait_for(lambda st: next((m for m in st.messages(ALZ_CHANNEL) if m.get("blocks")),
                                            None), timeout=15, message="a demo card")
    ghost = requests.post(url + "/sandbox/action", json={
        "user": LEE, "channel": ALZ_CHANNEL, "ts": card["ts"], "block_id": "nope",
        "action_id": ids.REFERRAL_APPROVE}, timeout=10)
    assert ghost.status_code == 400 and "on screen" in ghost.json()["error"]
    assert requests.get(url + "/static/../console.py", timeout=10).status_code == 404
    page = requests.get(url + "/", timeout=10)
    assert page.status_code == 200 and "blockkit.js" in page.text


def test_secure_links_open_signed_in_as_the_acting_member(sandbox: RunningSandbox) -> None:
    """A link to the secure page in the console lands on that page as the member the console is
    acting as, also after switching member in the same browser; only the page's own paths."""
    browser = requests.Session()
    card = browser.get(sandbox.url + "/sandbox/secure", timeout=15,
                       params={"user": CASEY, "next": "/secure/c/ALZ-0001"})
    assert card.status_code == 200 and card.url == sandbox.url + "/secure/c/ALZ-0001"
    assert "Signed in as" in card.text and CASEY in card.text
    # the console now acts as the approver: the same browser lands on the page as Lee
    home = browser.get(sandbox.url + "/sandbox/secure", params={"user": LEE, "next": "/secure/"},
                       timeout=15)
    assert home.status_code == 200 and home.url == sandbox.url + "/secure/"
    assert LEE in home.text and CASEY not in home.text
    # anywhere else is the page's home, never another site
    for elsewhere in ("https://example.org/", "//example.org/", "/sandbox/state?user=" + LEE):
        landed = browser.get(sandbox.url + "/sandbox/secure", timeout=15,
                             params={"user": LEE, "next": elsewhere})
        assert landed.url == sandbox.url + "/secure/"


def test_sandbox_reset_restores_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import main
    from storage.db import Database
    from storage.models import Callback, Candidate, Member, Referral

    for var in SANDBOX_UNSET:
        monkeypatch.delenv(var, raising=False)
    db_url = f"sqlite:///{tmp_path / 'data' / 'prescreen-sandbox.db'}"  # the sandbox's own file
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert main(["sandbox", "reset"]) == 0
    db = Database(db_url)
    try:
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Candidate)) == 26
            leads = s.execute(select(Candidate.ref_code, Candidate.source, Member.slack_user_id)
                              .outerjoin(Member, Candidate.owner_id == Member.id)
                              .where(Candidate.status == "needs_call", Candidate.attempts == 0)
                              ).all()
            assert len(leads) == 6 and all(source for _, source, _ in leads)
            assert sorted(owner or "-" for _, _, owner in leads) == ["-", "-", CASEY, CASEY,
                                                                     "U0COORD02", "U0COORD02"]
            states = set(s.scalars(select(Referral.state)))
            assert {"pending_approval", "sent_to_site", "site_contacted", "rejected"} <= states
            assert s.scalar(select(func.count()).select_from(Callback)
                            .where(Callback.status == "scheduled")) >= 3
    finally:
        db.dispose()
    # a second reset wipes what is there and loads the same demo again (not 40 candidates)
    assert main(["sandbox", "reset"]) == 0
    db = Database(db_url)
    try:
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Candidate)) == 26
    finally:
        db.dispose()
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


def test_clock_brings_reminders_then_escalation(sandbox: RunningSandbox) -> None:
    """+15 min: the due reminders arrive on time (DMs); +1 h: the callback nobody acted on is
    escalated in the study channel, by count and reference-free, as the worker would do it."""
    standin = sandbox.runtime.sandbox.standin
    standin.wait_for(lambda st: len(st.messages(ALZ_CHANNEL)) >= 5, timeout=20,
                     message="the demo cards delivered")
    before = sandbox.state(CASEY)["now"]
    answer = requests.post(sandbox.url + "/sandbox/clock", json={"minutes": 15}, timeout=60).json()
    assert answer["ok"] and answer["now"] > before
    assert set(answer["jobs"]) >= {"callbacks", "cadence", "outbox"}
    # (the worker's own ticks run the same jobs meanwhile; either may send, never both)

    def dm_of(user: str) -> list[dict[str, Any]]:
        return [m for m in standin.messages(standin.dm_channel(user)) if "Callback due" in m["text"]]

    reminders = standin.wait_for(lambda st: dm_of(CASEY), timeout=15, message="Casey's reminder")
    assert len(reminders) == 1 and "ALZ-0011" in reminders[0]["text"]
    assert "Late reminder" not in json.dumps(reminders[0]["blocks"])
    standin.wait_for(lambda st: any("MDD-0004" in m["text"] for m in dm_of("U0COORD02")),
                     timeout=15, message="Sam's reminder")
    # another member sees neither DM
    lee = sandbox.state(LEE)
    assert not any("Callback due" in m["text"] for m in lee["messages"][lee["dm"]["id"]])
    assert standin.dm_channel(CASEY) not in lee["messages"]

    requests.post(sandbox.url + "/sandbox/clock", json={"minutes": 60}, timeout=60).raise_for_status()
    escalation = standin.wait_for(
        lambda st: [m for m in st.messages(ALZ_CHANNEL)
                    if "overdue for <@U0COORD01>" in m["text"]], timeout=15, message="escalation")
    assert "ALZ-0011" not in escalation[0]["text"], "escalations give counts, not codes"


def test_a_day_later_the_digests_are_there(sandbox: RunningSandbox) -> None:
    """+1 day: the daily digest is in the study channel (counts and codes only), the charts the
    app uploaded are served to members who can see them, and to nobody else."""
    standin = sandbox.runtime.sandbox.standin
    standin.wait_for(lambda st: len(st.messages(ALZ_CHANNEL)) >= 5, timeout=20,
                     message="the demo cards delivered")
    answer = requests.post(sandbox.url + "/sandbox/clock", json={"minutes": 24 * 60},
                           timeout=120).json()
    assert answer["ok"] and "digests" in answer["jobs"]
    digest = standin.wait_for(
        lambda st: [m for m in st.messages(ALZ_CHANNEL) if "ALZ daily digest" in json.dumps(m)],
        timeout=30, message="the ALZ daily digest")
    assert len(digest) == 1
    _assert_no_names_in_channels(sandbox, DEMO_NAMES)
    assert any(f["name"].endswith(".png") for f in standin.uploaded_files), "the weekly chart"
    for f in standin.uploaded_files:
        if not f.get("completed") or not f.get("channel"):
            continue
        url = sandbox.url + "/sandbox/file"
        ok = requests.get(url, params={"user": "U0ADMIN01", "id": f["id"]}, timeout=10)
        assert ok.status_code == 200 and ok.content == f["data"]
        assert requests.get(url, params={"user": "U0NOBODY", "id": f["id"]},
                            timeout=10).status_code == 400
