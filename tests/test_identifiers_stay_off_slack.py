"""Story: with PHI_SURFACE=portal (the default) no name, phone number, date of birth or note
passes through Slack. A coordinator logs a call for a new candidate: the modal offers the secure
page instead of identifier fields, the page hands the reference code back to the same modal, and
the call is logged. Status, find, lead, the queue, App Home and the reject form point to the page
where they would have shown or asked for an identifier. And the suite's PHI scan, which checks
every test in portal mode, does catch an identifier sent to Slack."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from slack_sdk import WebClient
from sqlalchemy import func, select

from bot import ids, secure_links
from bot.prescreen import queries
from bot.prescreen import views as modal
from bot.prescreen.handback import read_handback
from handlers.prescreen import log_view
from storage.models import AuditEvent, PrescreenCall
from tests.conftest import BOT_TOKEN, Bot, phi_leaks
from tests.test_log_prescreen_call import CASEY, DOB, E164, LEE, NAME, PAT, PHONE, WORKDAY

pytestmark = pytest.mark.phi_surface("portal")

ANSWERS = {"answer:age": "67", "answer:dx": "no", "answer:region": "NE"}


@pytest.fixture(autouse=True)
def workday() -> Iterator[None]:
    with time_machine.travel(WORKDAY, tick=True):
        yield


def add_margaret(bot: Bot) -> str:
    """Margaret is added on the secure page (her identifiers never touch Slack)."""
    return bot.add_candidate(CASEY, "ALZ", name=NAME, phone=PHONE, dob=DOB, state="MA")


def elements(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for b in blocks:
        out += [b["accessory"]] if b.get("accessory") else []
        out += b.get("elements", []) if b.get("type") == "actions" else []
    return out


def link(blocks: list[dict[str, Any]], text: str) -> str | None:
    return next((el["url"] for el in elements(blocks)
                 if el.get("url") and el["text"]["text"] == text), None)


def calls(bot: Bot) -> int:
    with bot.db.session() as s:
        return s.scalar(select(func.count()).select_from(PrescreenCall)) or 0


def test_a_call_for_a_new_candidate_goes_through_the_secure_page_and_back(bot: Bot) -> None:
    # 1. /prescreen: the modal asks for no identifier and no note; it offers the secure page
    view = bot.open_modal(CASEY)
    shown = {b.get("block_id") for b in view["blocks"]}
    assert not shown & {ids.NAME_BLOCK, ids.PHONE_BLOCK, ids.DOB_BLOCK, ids.NOTES_BLOCK}
    assert "New candidate? Add them on the secure page" in str(view["blocks"])
    url = link(view["blocks"], "Add the candidate on the secure page")
    assert url is not None and url.startswith(secure_links.add_candidate_url(bot.ctx.settings, "ALZ"))
    token = url.split("handback=", 1)[1]
    assert url == secure_links.add_candidate_url(bot.ctx.settings, "ALZ", handback=token)
    # the link's token leads back to this very modal, and only for the coordinator who opened it
    assert read_handback(bot.ctx, CASEY, token) == view["external_id"]
    assert read_handback(bot.ctx, LEE, token) is None

    # 2. Log call before the candidate exists: said next to the choice, nothing stored
    resp = bot.slack.submit(CASEY, view["id"], {**ANSWERS, ids.OUTCOME_SELECT: "pre_qualified"})
    assert resp.json() == {"response_action": "errors", "errors": {
        ids.MODE_BLOCK: "Add the candidate on the secure page first (button above), or choose "
                        "Existing candidate."}}
    assert calls(bot) == 0

    # 3. On the page she is added; the page updates the same modal (by its external id) with
    #    her reference code, as the secure page does
    ref = add_margaret(bot)
    setup = queries.log_modal_setup(bot.ctx, CASEY, ref)
    state = modal.ModalState(study="ALZ", mode="existing", ref=ref, channel="C0ALZ0001")
    page = WebClient(token=BOT_TOKEN, base_url=bot.standin.url)
    page.views_update(external_id=view["external_id"],
                      view=log_view(bot.ctx, CASEY, setup, state, None))
    back = bot.standin.view(view["id"])
    assert f"Candidate {ref}" in str(back["blocks"])

    # 4. Back in Slack, no retyping: the call is logged for her code
    resp = bot.slack.submit(CASEY, view["id"], {**ANSWERS, ids.OUTCOME_SELECT: "pre_qualified"})
    assert resp.status_code == 200 and "response_action" not in resp.text, resp.text
    summary = bot.standin.wait_for(lambda s: s.ephemerals(CASEY), message="summary")[-1]
    assert summary["text"] == f"{ref} · attempt 1 · pre-qualified · referral sent for approval"
    assert "Add notes on the contact card" in str(summary["blocks"])
    assert link(summary["blocks"], "Open contact card") == \
        secure_links.contact_card_url(bot.ctx.settings, ref)
    assert calls(bot) == 1


def test_status_offers_the_contact_card_to_study_staff_and_shows_no_identifier(bot: Bot) -> None:
    ref = add_margaret(bot)
    mine = bot.slack.slash_command(CASEY, text=f"status {ref}").json()
    assert link(mine["blocks"], "Open contact card") == \
        secure_links.contact_card_url(bot.ctx.settings, ref)
    assert NAME not in str(mine) and E164 not in str(mine)
    sponsor = bot.slack.slash_command(PAT, text=f"status {ref}").json()
    assert ref in str(sponsor["blocks"]) and link(sponsor["blocks"], "Open contact card") is None
    typed = bot.slack.slash_command(CASEY, text="status 617-555-0142").json()
    assert "No candidate with that code" in typed["text"] and "555" not in typed["text"]
    with bot.db.session() as s:
        actions = [a.action for a in s.scalars(select(AuditEvent))]
    assert "phi.viewed" not in actions  # nothing was decrypted for Slack
    assert actions.count("candidate.viewed") == 2


def test_find_points_to_the_secure_page_and_never_repeats_the_query(bot: Bot) -> None:
    add_margaret(bot)
    reply = bot.slack.slash_command(CASEY, text="find 617-555-0142").json()
    assert reply["text"] == f"Search on the secure page: {secure_links.search_url(bot.ctx.settings)}"
    assert link(reply["blocks"], "Search") == secure_links.search_url(bot.ctx.settings)
    assert "555" not in str(reply)
    with bot.db.session() as s:
        assert not s.scalars(select(AuditEvent).where(AuditEvent.action == "candidate.searched")).all()
    assert bot.slack.slash_command(PAT, text="find Margaret").json()["text"].startswith(":warning:")


def test_lead_points_to_the_add_candidate_page(bot: Bot) -> None:
    reply = bot.slack.slash_command(CASEY, text="lead").json()
    assert link(reply["blocks"], "Add the lead") == \
        secure_links.add_candidate_url(bot.ctx.settings, "ALZ")
    assert bot.standin.view_stack(CASEY) == []  # no form with name or phone opened


def test_queue_and_app_home_link_each_contact_card(bot: Bot) -> None:
    ref = add_margaret(bot)
    card = secure_links.contact_card_url(bot.ctx.settings, ref)
    bot.slack.slash_command(CASEY, text=f"assign {ref} <@{CASEY}>")
    nxt = bot.slack.slash_command(CASEY, text="next").json()
    assert link(nxt["blocks"], "Open contact card") == card
    view = bot.open_modal(CASEY, f"log {ref}")
    bot.slack.submit(CASEY, view["id"], {ids.OUTCOME_SELECT: "no_answer"})
    bot.slack.app_home_opened(CASEY)
    home = bot.standin.wait_for(lambda s: s.home(CASEY), message="home published")
    assert f"<{card}|Open contact card>" in str(home["blocks"])
    queue = bot.slack.slash_command(CASEY, text="queue").json()
    assert f"<{card}|Open contact card>" in str(queue["blocks"])


def test_the_reject_form_takes_no_free_text_note(bot: Bot) -> None:
    ref = add_margaret(bot)
    view = bot.open_modal(CASEY, f"log {ref}")
    bot.slack.submit(CASEY, view["id"], {**ANSWERS, ids.OUTCOME_SELECT: "pre_qualified"})
    bot.deliver()
    card = next(m for m in bot.standin.messages("C0ALZ0001") if ref in str(m.get("blocks")))
    value = next(el["value"] for el in elements(card["blocks"])
                 if el["action_id"] == ids.REFERRAL_REJECT)
    bot.slack.click(LEE, ids.REFERRAL_REJECT, value, message=card, channel_id="C0ALZ0001")
    form = bot.standin.wait_for(lambda s: s.open_view(LEE), message="reject form")
    assert ids.REJECT_TEXT_BLOCK not in {b.get("block_id") for b in form["blocks"]}
    assert link(form["blocks"], "Open contact card") == \
        secure_links.contact_card_url(bot.ctx.settings, ref)
    resp = bot.slack.submit(LEE, form["id"], {ids.REJECT_REASON_SELECT: "needs_records"})
    assert resp.status_code == 200 and "response_action" not in resp.text, resp.text


def test_the_phi_scan_catches_an_identifier_sent_to_slack(bot: Bot) -> None:
    """The scan that runs after every portal-mode test can fail: an identifier sent on purpose,
    in any usual writing, is named with the Slack method that carried it."""
    encrypted = [NAME, E164, DOB.isoformat()]
    slack = WebClient(token=BOT_TOKEN, base_url=bot.standin.url)
    slack.chat_postMessage(channel="C0ALZ0001", text=f"call {NAME.upper()}")
    slack.views_publish(user_id=CASEY, view={"type": "home", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "(617) 555-0142 · 04/12/1958"}}]})
    leaks = phi_leaks(bot.standin, encrypted)
    assert any(NAME in leak and "chat.postMessage" in leak for leak in leaks), leaks
    assert any(E164 in leak and "views.publish" in leak for leak in leaks), leaks
    assert any("1958-04-12" in leak and "views.publish" in leak for leak in leaks), leaks
    assert phi_leaks(bot.standin, ["Someone Else", "+13125550100", "1990-01-02"]) == []
    bot.standin.reset()  # what was sent on purpose is not this test's leak
    assert phi_leaks(bot.standin, encrypted) == []


def test_every_identifier_of_the_day_stays_off_slack(bot: Bot) -> None:
    """A day's work in portal mode; the scan after the test checks it all (this test only
    makes sure there was something to scan)."""
    ref = add_margaret(bot)
    view = bot.open_modal(CASEY, f"log {ref}")
    bot.slack.submit(CASEY, view["id"], {ids.OUTCOME_SELECT: "callback_requested",
                                         ids.CB_DATE_INPUT: dt.date(2026, 11, 25),
                                         ids.CB_TIME_INPUT: "11:00"})
    bot.deliver()
    bot.slack.slash_command(CASEY, text=f"status {ref}")
    bot.slack.app_home_opened(CASEY)
    bot.standin.wait_for(lambda s: s.home(CASEY), message="home published")
    assert len(bot.standin.calls) >= 3
