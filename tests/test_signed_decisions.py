"""Story: on a study with `approval_signature: required`, Approve (or Reject) answers privately
with a link to the secure page; nothing is decided until the approver signs there after a FRESH
Sign in with Slack. An old session is sent through Slack again; a signature for a version that
changed meanwhile is refused with a clear page. The signature (signer, printed name, time,
meaning, referral and version) is stored append-only, linked to the decision, and shown on the
card and in `export audit`. Studies without the setting keep one-click decisions."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from bot import ids
from bot.export import export_csv
from storage.models import DecisionSignature, Referral, ReferralDecision
from tests.approvals_factory import approve_click, button_value, configure, referral
from tests.conftest import Bot
from tests.test_log_prescreen_call import CASEY, LEE
from tests.test_referral_pipeline import CHANNEL, card, card_text, pre_qualify

MEANING = "Approved for referral as PI delegate"


@pytest.fixture
def signed_study(bot: Bot, tmp_path: Path) -> Bot:
    configure(bot, tmp_path, approval_signature="required")
    bot.standin.add_user(LEE, "lee", email="lee@example.org", tz="America/Chicago",
                         real_name="Lee Park")
    return bot


def sign_link(bot: Bot, user: str) -> str:
    """The URL button of the latest private answer to `user`."""
    def found(s: Any) -> str | None:
        for answer in reversed([r["payload"] for r in s.responses] + s.ephemerals(user)):
            for b in answer.get("blocks") or []:
                for el in b.get("elements") or []:
                    if el.get("action_id") == ids.REFERRAL_SIGN:
                        return str(el["url"])
        return None
    return bot.standin.wait_for(found, message="a link to sign")


def csrf(page: requests.Response) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, page.text
    return m.group(1)


def form_of(page: requests.Response, **fields: str) -> dict[str, str]:
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text))
    return {**hidden, "csrf_token": csrf(page), **fields}


def test_approve_needs_a_signature_after_a_fresh_sign_in(signed_study: Bot) -> None:
    bot = signed_study
    msg = pre_qualify(bot)
    assert "signature required" in card_text(msg)
    answer = approve_click(bot, LEE, msg)
    assert "approve with your signature" in answer and "nothing is decided until you sign" in answer
    assert referral(bot).state == "pending_approval"
    url = sign_link(bot, LEE)
    public_id = referral(bot).public_id
    assert public_id and url == f"{bot.url}/secure/sign/{public_id}?decision=approve&v=1"
    assert "ALZ-0001" not in url and f"/{referral(bot).id}?" not in url  # opaque, not the row id

    browser = bot.signed_in(LEE)
    page = browser.get(url, timeout=15)
    assert page.status_code == 200
    for shown in ("ALZ-0001", "ALZ · Early Alzheimer", "BOS · Boston Memory Clinic", "Approve",
                  MEANING, "Lee Park"):
        assert shown in page.text.replace("&#39;", "'"), shown

    # the printed name must match the one Slack's ID token gave
    wrong = browser.post(url.split("?")[0], data=form_of(page, printed_name="Someone Else"),
                         timeout=15)
    assert wrong.status_code == 400 and "Type your name exactly as shown (Lee Park)" in wrong.text
    assert referral(bot).state == "pending_approval"

    done = browser.post(url.split("?")[0], data=form_of(page, printed_name="lee  park"), timeout=15)
    assert done.status_code == 200
    assert "Signed by Lee Park as “Approved for referral as PI delegate”" in done.text
    bot.deliver()
    shown = card_text(card(bot))
    assert "Sent to site" in shown
    assert (f"Approved by <@{LEE}> · <!date^" in shown
            and "signed by Lee Park as “Approved for referral as PI delegate”" in shown)

    with bot.db.session() as s:
        sig = s.scalars(select(DecisionSignature)).one()
        decision = s.get(ReferralDecision, sig.decision_id)
        assert decision is not None and decision.event_id is not None
        assert (sig.signer, sig.printed_name, sig.meaning, sig.decision, sig.referral_version) == (
            LEE, "Lee Park", MEANING, "approve", 1)
        assert bot.ctx.clock.now() - sig.signed_at < dt.timedelta(minutes=1)
        assert sig.signed_at - sig.authenticated_at < dt.timedelta(minutes=5)
        sig_id = sig.id

    # append-only: the ORM refuses, and below it the database refuses
    with pytest.raises(PermissionError), bot.db.session() as s:
        row = s.get(DecisionSignature, sig_id)
        assert row is not None
        row.printed_name = "Somebody"
    with pytest.raises(DatabaseError), bot.db.engine.begin() as conn:
        conn.execute(text("UPDATE decision_signatures SET meaning = 'x'"))
    with pytest.raises(DatabaseError), bot.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_signatures"))


def test_the_audit_export_answers_who_when_as_what(signed_study: Bot, tmp_path: Path) -> None:
    bot = signed_study
    msg = pre_qualify(bot)
    approve_click(bot, LEE, msg)
    browser = bot.signed_in(LEE)
    url = sign_link(bot, LEE)
    page = browser.get(url, timeout=15)
    assert browser.post(url.split("?")[0], data=form_of(page, printed_name="Lee Park"),
                        timeout=15).status_code == 200
    today = bot.ctx.clock.now().date()
    out = tmp_path / "audit.csv"
    export_csv(bot.ctx, "audit", "ALZ", today - dt.timedelta(days=1), today + dt.timedelta(days=1),
               out)
    rows = list(csv.DictReader(out.open()))
    approved = [r for r in rows if r["action"] == "referral.approved"]
    assert len(approved) == 1 and approved[0]["actor"] == LEE
    after = approved[0]["after"]
    for bit in ('"printed_name": "Lee Park"', f'"meaning": "{MEANING}"', '"role": "approver"',
                f'"not_involved": ["{CASEY}"]', '"referral_version": 1', '"signed_at": "'):
        assert bit in after, bit


def test_an_old_session_is_sent_through_sign_in_with_slack_again(signed_study: Bot) -> None:
    bot = signed_study
    msg = pre_qualify(bot)
    approve_click(bot, LEE, msg)
    url = sign_link(bot, LEE)
    browser = bot.signed_in(LEE)
    bot.clock.advance(dt.timedelta(minutes=6))  # the session is alive, its sign-in is not fresh

    stale = browser.get(url, timeout=15, allow_redirects=False)
    assert stale.status_code == 302
    where = urlsplit(stale.headers["location"])
    assert where.path == "/secure/login" and "fresh=1" in where.query
    # the page does not sign on the old session either
    form = {"decision": "approve", "v": "1", "printed_name": "Lee Park"}
    page_cookie = browser.cookies.get("prescreen_session")
    assert page_cookie
    issued = len(bot.standin.oidc.issued)
    bot.standin.sign_in_as(LEE)
    try:
        again = browser.get(url, timeout=15)  # → login → Slack → callback → the sign page
    finally:
        bot.standin.sign_in_as(None)
    assert len(bot.standin.oidc.issued) == issued + 1, "a new OpenID Connect round trip"
    assert again.status_code == 200 and again.url == url and MEANING in again.text
    assert browser.cookies.get("prescreen_session") != page_cookie, "a new session"
    done = browser.post(url.split("?")[0], data=form_of(again, **form), timeout=15)
    assert done.status_code == 200 and "Signed" in done.text
    assert referral(bot).state == "sent_to_site"


def test_a_signature_for_a_stale_version_is_refused(signed_study: Bot) -> None:
    bot = signed_study
    msg = pre_qualify(bot)
    approve_click(bot, LEE, msg)
    url = sign_link(bot, LEE)
    browser = bot.signed_in(LEE)
    page = browser.get(url, timeout=15)
    assert page.status_code == 200

    body = bot.slack.slash_command(CASEY, text="referral ALZ-0001 withdrawn").json()
    assert "withdrawn" in body["text"]
    late = browser.post(url.split("?")[0], data=form_of(page, printed_name="Lee Park"), timeout=15)
    assert late.status_code == 409
    assert "ALZ-0001 changed since you clicked: it is now withdrawn" in late.text
    assert "Nothing was signed" in late.text
    again = browser.get(url, timeout=15)
    assert again.status_code == 409 and "Nothing was signed" in again.text
    with bot.db.session() as s:
        assert s.scalars(select(DecisionSignature)).all() == []
        assert s.scalars(select(Referral)).one().state == "withdrawn"


def test_a_signed_rejection_carries_the_reason_chosen_in_slack(signed_study: Bot) -> None:
    bot = signed_study
    msg = pre_qualify(bot)
    bot.slack.click(LEE, ids.REFERRAL_REJECT, button_value(msg, ids.REFERRAL_REJECT), message=msg,
                    channel_id=CHANNEL)
    modal = bot.standin.wait_for(lambda s: s.open_view(LEE), message="reject modal")
    resp = bot.slack.submit(LEE, modal["id"], {ids.REJECT_REASON_SELECT: "site_capacity"})
    assert resp.status_code == 200 and "errors" not in resp.text
    url = sign_link(bot, LEE)
    assert "decision=reject" in url and "reason=site_capacity" in url
    assert referral(bot).state == "pending_approval"
    browser = bot.signed_in(LEE)
    page = browser.get(url, timeout=15)
    assert "Site at capacity" in page.text and "Rejected for referral as PI delegate" in page.text
    done = browser.post(url.split("?")[0], data=form_of(page, printed_name="Lee Park"), timeout=15)
    assert done.status_code == 200
    bot.deliver()
    shown = card_text(card(bot))
    assert f"Rejected* by <@{LEE}>" in shown and "Site at capacity" in shown
    assert "signed by Lee Park as “Rejected for referral as PI delegate”" in shown


def test_the_studys_own_wording_and_studies_without_the_setting_keep_one_click(
        bot: Bot, tmp_path: Path) -> None:
    configure(bot, tmp_path, approval_signature="required",
              signature_meaning="Approved as sub-investigator for this referral")
    msg = pre_qualify(bot)
    approve_click(bot, LEE, msg)
    page = bot.signed_in(LEE).get(sign_link(bot, LEE), timeout=15)
    assert "Approved as sub-investigator for this referral" in page.text

    configure(bot, tmp_path)  # the setting removed: one click decides again
    answer = approve_click(bot, LEE, card(bot))
    assert "ALZ-0001 approved" in answer
    assert referral(bot).state == "sent_to_site"
