"""Story: a call ends pre-qualified → the study channel gets an approval card → a non-approver's
click is refused → the approver approves → the card updates in place, the coordinator gets a DM,
the site is told, and every later status change is a thread reply under the one living card.
Announcements go through the outbox, which survives rate limits, bad channels and crashes."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.scheduler import run_job
from bot import ids
from bot.referrals import workflow
from storage.models import AuditEvent, OutboxMessage, Referral, ReferralEvent
from tests.conftest import Bot
from tests.test_log_prescreen_call import CASEY, LEE, NAME, PAT, PHI_STRINGS, SAM, new_candidate, submit

CHANNEL = "C0ALZ0001"
SITE_CHANNEL = "C0BOSSITE"


def pre_qualify(bot: Bot, **overrides: Any) -> dict[str, Any]:
    """Log a pre-qualified call and deliver the outbox; return the card as Slack shows it."""
    view = bot.open_modal(CASEY)
    resp = submit(bot, CASEY, view, new_candidate(**overrides))
    assert resp.status_code == 200 and "response_action" not in resp.text, resp.text
    bot.deliver()
    return card(bot)


def card(bot: Bot) -> dict[str, Any]:
    roots = [m for m in bot.standin.messages(CHANNEL) if not m.get("thread_ts")
             or m.get("thread_ts") == m.get("ts")]
    assert roots, "no card in the study channel"
    return roots[-1]


def card_text(message: dict[str, Any]) -> str:
    return str(message.get("blocks"))


def replies(bot: Bot, message: dict[str, Any]) -> list[str]:
    return [m["text"] for m in bot.standin.thread(CHANNEL, message["ts"]) if m["ts"] != message["ts"]]


def test_full_journey_from_pre_qualified_to_site(bot: Bot) -> None:
    msg = pre_qualify(bot)
    text = card_text(msg)
    assert "Referral ALZ-0001" in text and "Waiting for approval" in text
    assert "BOS · Boston Memory Clinic" in text and "age, dx, region" in text
    assert f"<@{CASEY}>" in text
    approve_value = next(el["value"] for b in msg["blocks"] if b.get("type") == "actions"
                         for el in b["elements"] if el["action_id"] == ids.REFERRAL_APPROVE)

    # a coordinator is not an approver: the button is not a permission
    resp = bot.slack.click(SAM, ids.REFERRAL_APPROVE, approve_value, message=msg, channel_id=CHANNEL)
    assert resp.status_code == 200
    refusal = bot.standin.wait_for(lambda s: s.responses, message="refusal")[-1]["payload"]
    assert refusal["response_type"] == "ephemeral"
    assert ("Only approvers or admins of ALZ can approve or reject referrals; you are a "
            "coordinator.") in refusal["text"]
    with bot.db.session() as s:
        assert s.scalars(select(Referral)).one().state == "pending_approval"

    bot.slack.click(LEE, ids.REFERRAL_APPROVE, approve_value, message=msg, channel_id=CHANNEL)
    bot.standin.wait_for(lambda s: len(s.responses) >= 2, message="approver confirmation")
    bot.deliver()

    updated = card(bot)
    assert updated["ts"] == msg["ts"], "the card is updated in place, not re-posted"
    assert f"Approved* by <@{LEE}>" in card_text(updated) or "Sent to site" in card_text(updated)
    thread = replies(bot, msg)
    assert any("approved" in r and f"<@{LEE}>" in r for r in thread)
    assert any("sent to site" in r for r in thread)
    dm = bot.standin.messages(bot.standin.dm_channel(CASEY))
    assert any("ALZ-0001 was approved by" in m["text"] for m in dm)
    site = bot.standin.messages(SITE_CHANNEL)
    assert len(site) == 1 and "ALZ-0001" in site[0]["text"] and "site_contacted" in site[0]["text"]
    with bot.db.session() as s:
        ref = s.scalars(select(Referral)).one()
        assert (ref.state, ref.decided_by) == ("sent_to_site", LEE)
        events = s.scalars(select(ReferralEvent).order_by(ReferralEvent.id))
        trail = [(e.from_state, e.to_state) for e in events]
        assert trail == [(None, "pending_approval"), ("pending_approval", "approved"),
                         ("approved", "sent_to_site")]
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "referral.approved")) is not None

    # later steps by command and by button; each is a thread reply plus the card updated
    body = bot.slack.slash_command(CASEY, text="referral ALZ-0001 site_contacted").json()
    assert "sent to site → site contacted" in body["text"]
    bot.deliver()
    advance_btn = next(el for b in card(bot)["blocks"] if b.get("type") == "actions"
                       for el in b["elements"] if el["action_id"].endswith(":visit_scheduled"))
    bot.slack.click(CASEY, advance_btn["action_id"], advance_btn["value"], message=card(bot),
                    channel_id=CHANNEL)
    visit_form = bot.standin.wait_for(lambda s: s.open_view(CASEY), message="visit form")
    assert visit_form["callback_id"] == ids.VISIT_VIEW
    gone = bot.slack.submit(CASEY, visit_form["id"], {ids.VISIT_DATE_INPUT: dt.date(2020, 1, 6)})
    assert "has passed" in gone.json()["errors"][ids.VISIT_DATE_BLOCK]
    visit = bot.ctx.clock.now().date() + dt.timedelta(days=10)
    assert bot.slack.submit(CASEY, visit_form["id"], {ids.VISIT_DATE_INPUT: visit}).status_code == 200
    bot.deliver()
    assert f"Visit scheduled* for {visit:%a %b} {visit.day}" in card_text(card(bot))
    assert any(f"visit {visit.isoformat()}" in r for r in replies(bot, msg))
    body = bot.slack.slash_command(CASEY, text="referral ALZ-0001 visit_scheduled 2026-12-03").json()
    assert "already" in body["text"] or "changed meanwhile" in body["text"]
    body = bot.slack.slash_command(CASEY, text="referral ALZ-0001 screened").json()
    assert "visit scheduled → screened" in body["text"]
    assert len([m for m in bot.standin.messages(CHANNEL) if m.get("thread_ts") in (None, m["ts"])]) == 1


@pytest.mark.phi_surface("slack")  # the note is typed in Slack
def test_reject_with_a_reason(bot: Bot) -> None:
    msg = pre_qualify(bot)
    value = next(el["value"] for b in msg["blocks"] if b.get("type") == "actions"
                 for el in b["elements"] if el["action_id"] == ids.REFERRAL_REJECT)
    bot.slack.click(LEE, ids.REFERRAL_REJECT, value, message=msg, channel_id=CHANNEL)
    modal = bot.standin.wait_for(lambda s: s.open_view(LEE), message="reject modal")
    resp = bot.slack.submit(LEE, modal["id"], {ids.REJECT_REASON_SELECT: "needs_records",
                                               ids.REJECT_TEXT_INPUT: "Ask for the MRI report"})
    assert resp.status_code == 200
    bot.deliver()
    text = card_text(card(bot))
    assert "Rejected* by" in text and "Needs medical records first" in text
    assert "MRI" not in bot.standin.all_outgoing_text().replace("Ask for the MRI report", "")
    dm = bot.standin.messages(bot.standin.dm_channel(CASEY))
    assert any("rejected by" in m["text"] and "Needs medical records" in m["text"] for m in dm)
    with bot.db.session() as s:
        ref = s.scalars(select(Referral)).one()
        assert ref.state == "rejected" and ref.reason == "needs_records"
        assert bot.ctx.cipher.decrypt(ref.reason_note_enc) == "Ask for the MRI report"


CRAFTED = ("<!channel> <!here> <!subteam^S0DEVS01|devs> <@U0COORD01> "
           "<https://evil.example/login|Re-login here>")


def _reject_modal(bot: Bot, msg: dict[str, Any]) -> dict[str, Any]:
    value = next(el["value"] for b in msg["blocks"] if b.get("type") == "actions"
                 for el in b["elements"] if el["action_id"] == ids.REFERRAL_REJECT)
    bot.slack.click(LEE, ids.REFERRAL_REJECT, value, message=msg, channel_id=CHANNEL)
    return bot.standin.wait_for(lambda s: s.open_view(LEE), message="reject modal")


@pytest.mark.phi_surface("slack")  # the note is typed in Slack
def test_reject_reasons_come_from_the_studys_list_and_free_text_stays_in_the_note(
        bot: Bot, tmp_path: Path) -> None:
    import yaml

    from bot.studies.importer import import_studies
    from tests.conftest import FIXTURES

    data = yaml.safe_load((FIXTURES / "studies.yaml").read_text())
    data["studies"][0]["reject_reasons"] = {"not_eligible": "Not eligible after review",
                                            "site_full": "Site at capacity",
                                            "other": "Other (see note)"}
    (tmp_path / "studies.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    import_studies(bot.db, tmp_path / "studies.yaml", actor="test")

    msg = pre_qualify(bot)
    modal = _reject_modal(bot, msg)
    reason_el = next(b["element"] for b in modal["blocks"]
                     if b.get("block_id") == ids.REJECT_REASON_BLOCK)
    assert [o["value"] for o in reason_el["options"]] == ["not_eligible", "site_full", "other"]

    # a crafted payload: a "reason" that is not on the list (mentions, a link; or another
    # study's default code) is refused next to the field, and nothing changes
    for crafted in (CRAFTED, "needs_records"):
        values = bot.slack.fill(modal["id"], {ids.REJECT_REASON_SELECT: "other"})
        values[ids.REJECT_REASON_BLOCK][ids.REJECT_REASON_SELECT]["selected_option"] = {
            "text": {"type": "plain_text", "text": "Other"}, "value": crafted}
        resp = bot.slack.view_submission(LEE, modal["id"], values)
        assert "Choose one of the ALZ reasons" in resp.json()["errors"][ids.REJECT_REASON_BLOCK]
    with bot.db.session() as s:
        assert s.scalars(select(Referral)).one().state == "pending_approval"

    # the real choice, with free text in the note: the note is stored encrypted, never posted
    resp = bot.slack.submit(LEE, modal["id"], {ids.REJECT_REASON_SELECT: "site_full",
                                               ids.REJECT_TEXT_INPUT: "Ping " + CRAFTED})
    assert resp.status_code == 200 and "errors" not in resp.text
    bot.deliver()
    assert "Rejected* by" in card_text(card(bot)) and "Site at capacity" in card_text(card(bot))
    dm = bot.standin.messages(bot.standin.dm_channel(CASEY))
    assert any("rejected by" in m["text"] and "Site at capacity" in m["text"] for m in dm)
    posted = " ".join(str(m) for m in bot.standin.messages())
    for bit in ("<!channel>", "<!here>", "<!subteam", "evil.example", "&lt;!", "Ping"):
        assert bit not in posted, bit
    with bot.db.session() as s:
        ref = s.scalars(select(Referral)).one()
        assert (ref.state, ref.reason) == ("rejected", "site_full")
        assert bot.ctx.cipher.decrypt(ref.reason_note_enc) == "Ping " + CRAFTED


def test_text_typed_into_a_command_is_repeated_as_text_never_as_a_mention(bot: Bot) -> None:
    pre_qualify(bot)
    # repeated as text, or (where it may be a phone number or a name) not repeated at all
    for typed, says, repeated in (
            (f"referral ALZ-0001 visit_scheduled {CRAFTED.split()[0]}", "is not a date", True),
            ("referrals ALZ <!here>", "is not a referral state", True),
            ("referral <@U0COORD01> site_contacted", "No candidate with that code", False),
            ("<!subteam^S0DEVS01|devs>", "I don't know that", False)):
        reply = bot.slack.slash_command(LEE, text=typed).json()
        shown = reply["text"] + str(reply.get("blocks") or "")
        assert says in shown, shown
        assert "<!" not in shown and "<@U0COORD01>" not in shown, shown
        assert ("&lt;" in shown) is repeated, shown


def test_two_approvers_at_once_make_exactly_one_decision(bot: Bot) -> None:
    from storage.repositories import studies as study_repo

    with bot.db.session() as s:
        study = study_repo.get_study(s, "ALZ")
        study_repo.upsert_member(s, slack_user_id="U0LEAD002", email=None, timezone="UTC",
                                 display_name=None, mailbox=None, roles={"ALZ": "approver"}, actor="t")
        assert study is not None
    pre_qualify(bot)
    with bot.db.session() as s:
        ref = s.scalars(select(Referral)).one()
        ref_id, version = ref.id, ref.version
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def click(user: str, approve: bool) -> None:
        barrier.wait()
        try:
            r = workflow.decide(bot.ctx, referral_id=ref_id, actor=user, approve=approve,
                                expected_version=version, reason=None if approve else "other")
            outcomes[user] = "won:" + r.to_state
        except Exception as exc:  # the loser is told who decided
            outcomes[user] = f"lost:{type(exc).__name__}:{exc}"

    threads = [threading.Thread(target=click, args=(LEE, True)),
               threading.Thread(target=click, args=("U0LEAD002", False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    won = [u for u, o in outcomes.items() if o.startswith("won")]
    lost = [o for o in outcomes.values() if o.startswith("lost")]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert "AlreadyDecided" in lost[0] and "already" in lost[0] and "<@" in lost[0]
    with bot.db.session() as s:
        decisions = s.scalars(select(ReferralEvent).where(
            ReferralEvent.to_state.in_(("approved", "rejected")))).all()
    assert len(decisions) == 1


def test_double_click_and_retry_are_no_ops(bot: Bot) -> None:
    msg = pre_qualify(bot)
    value = next(el["value"] for b in msg["blocks"] if b.get("type") == "actions"
                 for el in b["elements"] if el["action_id"] == ids.REFERRAL_APPROVE)
    bot.slack.click(LEE, ids.REFERRAL_APPROVE, value, message=msg, channel_id=CHANNEL)
    bot.slack.click(LEE, ids.REFERRAL_APPROVE, value, message=msg, channel_id=CHANNEL, retry_num=1)
    # one of the two clicks is answered "already approved by @lee at …", whichever Slack
    # delivered second; wait for that answer, not for a count of answers
    bot.standin.wait_for(lambda s: [a for a in s.responses
                                    if "already approved by" in (a["payload"].get("text") or "")],
                         timeout=15, message="the second click answered 'already approved by'")
    with bot.db.session() as s:
        assert len(s.scalars(select(ReferralEvent).where(ReferralEvent.to_state == "approved")).all()) == 1


def test_illegal_transition_lists_the_allowed_next_states(bot: Bot) -> None:
    pre_qualify(bot)
    body = bot.slack.slash_command(CASEY, text="referral ALZ-0001 enrolled").json()
    assert "pending approval" in body["text"] and "approved, rejected, withdrawn, lost" in body["text"]
    body = bot.slack.slash_command(CASEY, text="referral ALZ-0001 approved").json()
    assert ("Only approvers or admins of ALZ can approve or reject referrals; you are a "
            "coordinator.") in body["text"]
    body = bot.slack.slash_command(CASEY, text="referral ALZ-0001 partying").json()
    assert "not a referral state" in body["text"]
    with bot.db.session() as s:
        assert s.scalars(select(Referral)).one().state == "pending_approval"


def test_study_without_approval_step_goes_straight_to_the_site(bot: Bot) -> None:
    view = bot.open_modal(SAM, channel_id="C0MDD0001")
    select_el = view["blocks"][0]["element"]
    from sandbox.slack_standin.sender import state_value

    action = {"type": "static_select", "action_id": ids.STUDY_SELECT, "block_id": ids.STUDY_BLOCK,
              "selected_option": state_value(select_el, "MDD")["selected_option"], "action_ts": "1"}
    bot.slack.block_actions(SAM, [action], view=view["id"],
                            values={ids.STUDY_BLOCK: {ids.STUDY_SELECT: state_value(select_el, "MDD")}})
    bot.standin.wait_for(lambda s: any(b.get("block_id") == "q:age" for b in s.view(view["id"])["blocks"]))
    resp = submit(bot, SAM, bot.standin.view(view["id"]), {
        ids.STUDY_SELECT: "MDD", ids.NAME_INPUT: "Olu Brightwater", ids.PHONE_INPUT: "312 555 0199",
        ids.DOB_INPUT: dt.date(1990, 1, 2), ids.CONSENT_INPUT: ["yes"], "answer:age": "36",
        ids.OUTCOME_SELECT: "pre_qualified"})
    assert resp.status_code == 200
    assert "referral approved, site notified" in bot.standin.wait_for(lambda s: s.ephemerals(SAM))[-1]["text"]
    bot.deliver()
    with bot.db.session() as s:
        assert s.scalars(select(Referral)).one().state == "sent_to_site"
    assert "Sent to site" in str(bot.standin.messages("C0MDD0001")[0]["blocks"])


def test_referrals_list_with_counts(bot: Bot) -> None:
    pre_qualify(bot)
    body = bot.slack.slash_command(PAT, text="referrals ALZ").json()
    assert "pending approval 1" in str(body["blocks"]) and "ALZ-0001" in str(body["blocks"])
    body = bot.slack.slash_command("U0STRANGER", text="referrals ALZ").json()
    assert "not a member of ALZ" in body["text"]


def test_outbox_survives_a_429_storm(bot: Bot) -> None:
    bot.standin.rate_limit("chat.postMessage", times=4, retry_after=1)
    view = bot.open_modal(CASEY)
    submit(bot, CASEY, view, new_candidate())
    deadline = time.monotonic() + 30  # a real-time limit, whatever the test's clock reads
    while not bot.standin.messages(CHANNEL) and time.monotonic() < deadline:
        bot.deliver()
    assert len(bot.standin.messages(CHANNEL)) == 1
    limited = [c for c in bot.standin.calls_to("chat.postMessage") if c.status == 429]
    assert len(limited) == 4
    with bot.db.session() as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "referral_card")).one()
        assert row.status == "sent" and row.slack_ts == bot.standin.messages(CHANNEL)[0]["ts"]


def test_outbox_marks_channel_not_found_failed_and_alerts_an_admin(bot: Bot) -> None:
    from storage.repositories import studies as study_repo

    with bot.db.session() as s:
        study_repo.upsert_member(s, slack_user_id="U0ADMIN01", email=None, timezone="UTC",
                                 display_name=None, mailbox=None, roles={"ALZ": "admin"}, actor="t")
    bot.standin.fail_next("chat.postMessage", error="channel_not_found", times=1)
    view = bot.open_modal(CASEY)
    submit(bot, CASEY, view, new_candidate())
    bot.deliver()
    with bot.db.session() as s:
        card_row = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "referral_card",
                                                         OutboxMessage.method == "chat.postMessage")).one()
        assert card_row.status == "failed" and card_row.last_error == "channel_not_found"
        assert card_row.attempts == 1
    alert = bot.standin.messages(bot.standin.dm_channel("U0ADMIN01"))
    assert len(alert) == 1 and "channel_not_found" in alert[0]["text"]
    assert "outbox retry" in alert[0]["text"]


def test_crash_between_commit_and_send_is_recovered_by_the_next_run(bot: Bot) -> None:
    from storage.repositories import outbox as repo

    view = bot.open_modal(CASEY)
    submit(bot, CASEY, view, new_candidate())
    # a dispatcher claims the card and dies before sending
    past = bot.ctx.clock.now() - dt.timedelta(minutes=5)
    with bot.db.session() as s:
        claimed = repo.claim_due(s, now=past + dt.timedelta(minutes=5), limit=10,
                                 lease=dt.timedelta(seconds=1), channel_interval=dt.timedelta(0))
        assert claimed
    assert bot.standin.messages(CHANNEL) == []
    import time

    time.sleep(1.1)  # the crashed claim's lease runs out
    run_job(bot.ctx, "outbox")
    assert len(bot.standin.messages(CHANNEL)) == 1
    run_job(bot.ctx, "outbox")
    assert len(bot.standin.messages(CHANNEL)) == 1


def test_nothing_sent_carries_patient_identity(bot: Bot) -> None:
    msg = pre_qualify(bot)
    value = next(el["value"] for b in msg["blocks"] if b.get("type") == "actions"
                 for el in b["elements"] if el["action_id"] == ids.REFERRAL_APPROVE)
    bot.slack.click(LEE, ids.REFERRAL_APPROVE, value, message=msg, channel_id=CHANNEL)
    bot.standin.wait_for(lambda s: s.responses)
    bot.deliver()
    public = "\n".join(str(m) for m in bot.standin.messages())
    for phi in [*PHI_STRINGS, NAME]:
        assert phi not in public


@pytest.fixture(autouse=True)
def _no_problems(bot: Bot):  # type: ignore[no-untyped-def]
    yield
    assert bot.standin.problems == []


def test_admin_lists_and_retries_a_failed_message(bot: Bot, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    import io

    from app import cli

    bot.standin.fail_next("chat.postMessage", error="not_in_channel", times=1)
    pre_qualify_without_delivery = bot.open_modal(CASEY)
    submit(bot, CASEY, pre_qualify_without_delivery, new_candidate())
    bot.deliver()
    assert bot.standin.messages(CHANNEL) == []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", bot.ctx.settings.database_url)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    out = io.StringIO()
    assert cli.main(["outbox", "list"], out=out) == 0
    line = next(x for x in out.getvalue().splitlines() if "not_in_channel" in x)
    row_id = int(line.split()[0])
    assert cli.main(["outbox", "retry", str(row_id)], out=io.StringIO()) == 0
    assert cli.main(["outbox", "retry", str(row_id)], out=io.StringIO()) == 2
    bot.deliver()
    assert len(bot.standin.messages(CHANNEL)) == 1


def test_two_dispatchers_deliver_each_announcement_once(bot: Bot) -> None:
    from collections import Counter

    from slack_sdk import WebClient

    from integrations.slack_outbox import OutboxDispatcher
    from storage.repositories import outbox as repo

    channels = [CHANNEL, SITE_CHANNEL, "C0MDD0001"]
    with bot.db.session() as s:
        for i in range(120):
            repo.enqueue(s, key=f"load:{i}", kind="load", channel=channels[i % 3],
                         payload={"text": f"announcement {i}"}, now=bot.ctx.clock.now())

    def dispatch() -> None:
        client = WebClient(token=bot.ctx.slack.token, base_url=bot.standin.url)
        OutboxDispatcher(bot.db, client, now=bot.ctx.clock.now, channel_interval=0).drain(max_seconds=60)

    workers = [threading.Thread(target=dispatch) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(90)
    sent = Counter(m["text"] for m in bot.standin.messages() if m["text"].startswith("announcement"))
    assert len(sent) == 120
    assert max(sent.values()) == 1
    with bot.db.session() as s:
        assert {r.status for r in s.scalars(select(OutboxMessage))} == {"sent"}


def test_outbox_paces_each_channel_across_dispatchers(bot: Bot) -> None:
    import itertools

    from slack_sdk import WebClient

    from integrations.slack_outbox import OutboxDispatcher
    from storage.repositories import outbox as repo

    with bot.db.session() as s:
        for i in range(8):
            repo.enqueue(s, key=f"paced:{i}", kind="load", channel=CHANNEL if i % 2 else SITE_CHANNEL,
                         payload={"text": f"paced {i}"}, now=bot.ctx.clock.now())

    def dispatch() -> None:
        client = WebClient(token=bot.ctx.slack.token, base_url=bot.standin.url)
        OutboxDispatcher(bot.db, client, now=bot.ctx.clock.now, channel_interval=0.3).drain(max_seconds=30)

    workers = [threading.Thread(target=dispatch) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    for channel in (CHANNEL, SITE_CHANNEL):
        stamps = [float(m["ts"]) for m in bot.standin.messages(channel)]
        assert len(stamps) == 4
        assert min(b - a for a, b in itertools.pairwise(stamps)) >= 0.29
