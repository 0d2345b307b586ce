"""Story: texts through RingCentral. The bot creates its webhook subscription (answering the
validation token); RingCentral then delivers inbound texts carrying the verification token, and
anything without it is refused. STOP (or UNSUBSCRIBE, CANCEL, END, QUIT) opts the number out at
once and is confirmed once, even when RingCentral delivers the notification twice; HELP gets the
study's help text; any other reply tells the lead's owner "New text from ALZ-0001" with a link to
read it on the secure page — the words themselves never go to Slack. START (or UNSTOP) opts the
number back in, confirmed once. Sending a study text needs consent to text, which a coordinator
records when adding the candidate (the secure page's form, or a consent_to_text column in a lead
file) or later on the contact card; a number that texted STOP cannot be opted back in from the
card. Sending and every change of consent are audited."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import time_machine
from sqlalchemy import func, select

from app.scheduler import run_job
from bot.config import Settings
from bot.leads.intake import import_leads
from bot.telephony.texts import START_CONFIRMATION, STOP_CONFIRMATION, TextRefused, send_text
from sandbox.ringcentral_standin import RingCentralStandin
from storage.models import AuditEvent, Candidate, RcSubscription, TextMessage, TextOptOut
from tests.conftest import Bot
from tests.leads_factory import LEAD_PHONE, import_yaml, make_lead
from tests.ringcentral_support import TEXTING_NUMBER, WEBHOOK_TOKEN, rc_settings, rc_standin  # noqa: F401

CASEY = "U0COORD01"
LEE = "U0LEAD001"  # approver in ALZ: sees the card, may not change consent
NOON_NY = dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)
REPLY = "Yes I can talk after 3, my husband drives me"
HELP_TEXT = "Boston Memory Clinic research team. Call +16175550150. Reply STOP to opt out."


@pytest.fixture
def settings(settings: Settings, rc_standin: RingCentralStandin) -> Settings:  # noqa: F811
    return rc_settings(settings, rc_standin)


@pytest.fixture(autouse=True)
def tuesday_noon() -> Iterator[None]:
    with time_machine.travel(NOON_NY, tick=True):
        yield


@pytest.fixture
def texting_bot(bot: Bot, tmp_path: Path) -> Bot:
    import_yaml(bot.db, tmp_path, f"""
        studies:
          - key: ALZ
            title: Early Alzheimer's prevention
            channel: C0ALZ0001
            timezone: America/New_York
            ringcentral:
              texting_number: "{TEXTING_NUMBER}"
              caller_id: "{TEXTING_NUMBER}"
              help_text: "{HELP_TEXT}"
              texts:
                missed_you: "Hi, this is Casey from the research team returning your call.
                  We'll try again soon. Reply STOP to opt out."
    """)
    assert run_job(bot.ctx, "ringcentral_webhook").startswith("webhook subscription created")
    return bot


def lead(bot: Bot, **extra: object) -> str:
    return make_lead(bot.ctx, "ALZ", NOON_NY - dt.timedelta(days=1), owner=CASEY,
                     tz="America/New_York", region="MA", **extra)


def slack_traffic(bot: Bot) -> str:
    return json.dumps([c.args for c in bot.standin.calls])


def test_the_subscription_is_created_after_the_validation_token_is_answered(
        texting_bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    (sub,) = rc_standin.subscriptions.values()
    assert sub.address == texting_bot.url + "/ringcentral/webhook"
    assert sub.verification_token == WEBHOOK_TOKEN
    with texting_bot.db.session() as s:
        assert s.scalars(select(RcSubscription.id)).one() == sub.id
    assert run_job(texting_bot.ctx, "ringcentral_webhook") == ""  # not due for renewal yet
    resp = requests.post(texting_bot.url + "/ringcentral/webhook",
                         headers={"Validation-Token": "abc123"}, timeout=5)
    assert resp.status_code == 200 and resp.headers["Validation-Token"] == "abc123"


def test_stop_delivered_twice_opts_out_once_and_is_confirmed_once(
        texting_bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(texting_bot, consent_to_text=True)
    note = rc_standin.receive_text(LEAD_PHONE, TEXTING_NUMBER, "Stop")
    rc_standin.deliver(note)  # RingCentral delivers it again

    with texting_bot.db.session() as s:
        assert s.scalar(select(func.count()).select_from(TextOptOut)) == 1
        assert s.scalar(select(func.count()).select_from(TextMessage)) == 1
    confirmations = [m for m in rc_standin.sms if m["text"] == STOP_CONFIRMATION]
    assert len(confirmations) == 1 and confirmations[0]["to"] == LEAD_PHONE
    with pytest.raises(TextRefused, match=f"{ref}'s number replied STOP: no more texts go to it."):
        send_text(texting_bot.ctx, CASEY, ref, "missed_you")

    rc_standin.receive_text(LEAD_PHONE, TEXTING_NUMBER, "UNSUBSCRIBE")  # again, later
    assert len([m for m in rc_standin.sms if m["text"] == STOP_CONFIRMATION]) == 1


def test_help_gets_the_studys_help_text(texting_bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    lead(texting_bot)
    rc_standin.receive_text(LEAD_PHONE, TEXTING_NUMBER, "help")
    assert [m["text"] for m in rc_standin.sms] == [HELP_TEXT]


def test_a_reply_tells_the_owner_without_its_words_and_reads_on_the_secure_page(
        texting_bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(texting_bot)
    rc_standin.receive_text(LEAD_PHONE, TEXTING_NUMBER, REPLY)
    texting_bot.deliver()
    dm = texting_bot.standin.wait_for(
        lambda s: [m for m in s.messages(s.dm_channel(CASEY)) if "New text" in m["text"]] or None,
        message="the new-text DM")[0]
    assert dm["text"] == f"New text from {ref}"
    link = dm["blocks"][0]["accessory"]["url"]
    assert link == f"{texting_bot.url}/secure/c/{ref}/texts"
    assert REPLY not in slack_traffic(texting_bot) and "husband" not in slack_traffic(texting_bot)
    assert not rc_standin.sms  # no automatic answer to an ordinary reply

    browser = texting_bot.signed_in(CASEY, f"/secure/c/{ref}/texts")
    page = browser.get(link, timeout=10).text
    assert REPLY in page
    with texting_bot.db.session() as s:
        viewed = s.scalars(select(AuditEvent).where(AuditEvent.action == "phi.viewed",
                                                    AuditEvent.entity_id == ref)).all()
        assert any(e.after and e.after.get("fields") == ["texts"] for e in viewed)


@pytest.mark.parametrize("headers", [{}, {"Verification-Token": "guess"},
                                     {"Verification-Token": WEBHOOK_TOKEN[:-1]}])
def test_a_forged_webhook_is_refused(texting_bot: Bot, rc_standin: RingCentralStandin,  # noqa: F811
                                     headers: dict[str, str]) -> None:
    lead(texting_bot)
    body = {"body": {"id": "1", "type": "SMS", "direction": "Inbound", "subject": "STOP",
                     "from": {"phoneNumber": LEAD_PHONE}, "to": [{"phoneNumber": TEXTING_NUMBER}]}}
    resp = requests.post(texting_bot.url + "/ringcentral/webhook", json=body, headers=headers,
                         timeout=5)
    assert resp.status_code == 403
    with texting_bot.db.session() as s:
        assert s.scalar(select(func.count()).select_from(TextOptOut)) == 0
        assert s.scalar(select(func.count()).select_from(TextMessage)) == 0


def test_sending_a_study_text_needs_consent_to_text_and_is_audited(
        texting_bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(texting_bot)
    with pytest.raises(TextRefused, match=f"{ref} has not agreed to texts: no text was sent."):
        send_text(texting_bot.ctx, CASEY, ref, "missed_you")
    assert toggle_consent(texting_bot, CASEY, ref, "yes").status_code == 303

    browser = texting_bot.signed_in(CASEY, f"/secure/c/{ref}/texts")
    page = browser.get(f"{texting_bot.url}/secure/c/{ref}/texts", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    resp = browser.post(f"{texting_bot.url}/secure/c/{ref}/texts",
                        data={"csrf_token": token, "template": "missed_you"}, timeout=10)
    assert resp.status_code == 200 and f"Text “missed_you” sent to {ref}." in resp.text
    (sent,) = rc_standin.sms
    assert sent["to"] == LEAD_PHONE and sent["from"] == TEXTING_NUMBER
    assert sent["text"].endswith("Reply STOP to opt out.")
    with texting_bot.db.session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "text.sent")).one()


def test_texts_wait_for_the_calling_window(texting_bot: Bot) -> None:
    ref = lead(texting_bot, consent_to_text=True)
    with time_machine.travel(dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC), tick=True), \
            pytest.raises(TextRefused, match=f"It is Tue 22:00 for {ref}: outside contact hours"):
        send_text(texting_bot.ctx, CASEY, ref, "missed_you")


def test_the_subscription_is_renewed_before_it_expires_and_made_again_when_lost(
        texting_bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    (first,) = rc_standin.subscriptions.values()
    texting_bot.clock.advance(dt.timedelta(days=4))
    assert run_job(texting_bot.ctx, "ringcentral_webhook") == ""  # 3 days left: not yet
    texting_bot.clock.advance(dt.timedelta(days=2))  # 1 day left: renewed
    assert run_job(texting_bot.ctx, "ringcentral_webhook").startswith("webhook subscription renewed")
    rc_standin.subscriptions.clear()  # RingCentral no longer knows it
    texting_bot.clock.advance(dt.timedelta(days=6))
    assert run_job(texting_bot.ctx, "ringcentral_webhook").startswith("webhook subscription created")
    (second,) = rc_standin.subscriptions.values()
    assert second.id != first.id
    with texting_bot.db.session() as s:
        assert s.scalars(select(RcSubscription.id)).all() == [second.id]


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def toggle_consent(bot: Bot, user: str, ref: str, value: str) -> requests.Response:
    web = bot.signed_in(user, f"/secure/c/{ref}")
    page = web.get(f"{bot.url}/secure/c/{ref}", timeout=10).text
    return web.post(f"{bot.url}/secure/c/{ref}/consent-to-text",
                    data={"csrf_token": csrf(page), "consent_to_text": value},
                    allow_redirects=False, timeout=10)


def consent_to_text(bot: Bot, ref: str) -> bool:
    with bot.db.session() as s:
        return bool(s.scalars(select(Candidate.consent_to_text)
                              .where(Candidate.ref_code == ref)).one())


def test_consent_to_text_is_ticked_on_the_add_form(texting_bot: Bot) -> None:
    web = texting_bot.signed_in(CASEY, "/secure/candidates/new?study=ALZ")
    refs = []
    for extra in ({"consent_to_text": "yes"}, {}):
        form = web.get(f"{texting_bot.url}/secure/candidates/new", params={"study": "ALZ"},
                       timeout=10).text
        assert "Agreed to receive texts about this study" in form
        token = re.search(r'name="form_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        resp = web.post(f"{texting_bot.url}/secure/candidates/new", allow_redirects=False,
                        timeout=10, data={
                            "csrf_token": csrf(form), "form_token": token, "study": "ALZ",
                            "name": "Ruth Example", "phone": f"617555010{len(refs) + 3}",
                            "state": "MA", "source": "other", "consent": "yes", **extra})
        assert resp.status_code == 303, resp.text
        refs.append(resp.headers["location"].rsplit("/", 1)[-1])
    assert [consent_to_text(texting_bot, r) for r in refs] == [True, False]
    send_text(texting_bot.ctx, CASEY, refs[0], "missed_you")
    with pytest.raises(TextRefused, match="has not agreed to texts"):
        send_text(texting_bot.ctx, CASEY, refs[1], "missed_you")


def test_a_lead_files_consent_to_text_column_is_read(texting_bot: Bot, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("name,phone,state,consent_to_text\n"
                    "Ann One,6175550111,MA,yes\nBob Two,6175550112,MA,no\n"
                    "Cy Three,6175550113,MA,\nDee Four,6175550114,MA,maybe\n")
    result = import_leads(texting_bot.ctx, path, study_key="ALZ", source="web-ads",
                          skip_invalid=True)
    assert (result.created, result.rejected) == (3, 1)
    assert [str(p) for p in result.problems] == [
        "line 5: rejected: consent_to_text must be yes or no"]
    with texting_bot.db.session() as s:
        rows = s.execute(select(Candidate.ref_code, Candidate.consent_to_text)
                         .order_by(Candidate.id)).all()
    assert [c for _, c in rows] == [True, False, False]


def test_consent_to_text_changes_on_the_card_by_coordinators_and_is_audited(
        texting_bot: Bot) -> None:
    ref = lead(texting_bot)
    lee = texting_bot.signed_in(LEE, f"/secure/c/{ref}")
    card = lee.get(f"{texting_bot.url}/secure/c/{ref}", timeout=10).text
    assert "Consent to texts" in card and "Agreed to receive texts</button>" not in card
    assert toggle_consent(texting_bot, LEE, ref, "yes").status_code == 403
    assert consent_to_text(texting_bot, ref) is False

    assert toggle_consent(texting_bot, CASEY, ref, "yes").status_code == 303
    assert consent_to_text(texting_bot, ref) is True
    assert toggle_consent(texting_bot, CASEY, ref, "no").status_code == 303
    assert consent_to_text(texting_bot, ref) is False
    with texting_bot.db.session() as s:
        changes = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "candidate.consent_to_text_changed").order_by(AuditEvent.id)).all()
    assert [(e.actor, e.entity_id, e.before, e.after) for e in changes] == [
        (CASEY, ref, {"consent_to_text": False}, {"consent_to_text": True, "via": "contact card"}),
        (CASEY, ref, {"consent_to_text": True}, {"consent_to_text": False, "via": "contact card"})]


def test_a_number_that_texted_stop_opts_back_in_only_by_texting_start(
        texting_bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(texting_bot, consent_to_text=True)
    rc_standin.receive_text(LEAD_PHONE, TEXTING_NUMBER, "STOP")
    assert toggle_consent(texting_bot, CASEY, ref, "no").status_code == 303
    refused = toggle_consent(texting_bot, CASEY, ref, "yes")
    assert refused.status_code == 400
    assert ("This number texted STOP on Tue 24 Nov 2026; it can only opt back in by texting "
            "START.") in refused.text
    assert consent_to_text(texting_bot, ref) is False

    note = rc_standin.receive_text(LEAD_PHONE, TEXTING_NUMBER, "Start")
    rc_standin.deliver(note)  # delivered twice: confirmed once
    rc_standin.receive_text(LEAD_PHONE, TEXTING_NUMBER, "UNSTOP")  # already back in: no answer
    assert [m["text"] for m in rc_standin.sms] == [STOP_CONFIRMATION, START_CONFIRMATION]
    with texting_bot.db.session() as s:
        assert s.scalar(select(func.count()).select_from(TextOptOut)) == 0
    assert toggle_consent(texting_bot, CASEY, ref, "yes").status_code == 303
    send_text(texting_bot.ctx, CASEY, ref, "missed_you")
