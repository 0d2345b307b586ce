"""Story: an approver going on holiday delegates (`/prescreen delegate @sam until 2026-12-20`);
the delegate decides in their place and the card says "for @approver"; a delegation that ended a
minute ago no longer counts; with Microsoft Graph configured, an approver whose Outlook says out
of office is skipped when the card names who should decide (their delegate is named instead); a
referral pending past the study's approval SLA is escalated once to the study's admins and the
available approvers, with counts and reference codes only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.scheduler import run_job
from bot import ids
from bot.referrals.delegation import end_of_day
from integrations.graph.auth import StaticTokenCredential
from integrations.graph.client import GraphClient
from sandbox.graph_standin import SANDBOX_TOKEN, GraphStandin
from storage.models import AuditEvent, Delegation, ReferralDecision
from storage.repositories import studies as study_repo
from tests.approvals_factory import ALEX, ROBIN, approve_click, configure, referral
from tests.conftest import Bot
from tests.test_log_prescreen_call import NAME, PAT, SAM
from tests.test_referral_pipeline import card, card_text, pre_qualify

LEE = "U0LEAD001"
CHICAGO = ZoneInfo("America/Chicago")  # Lee's time zone


def lee_today(bot: Bot) -> dt.date:
    return bot.ctx.clock.now().astimezone(CHICAGO).date()


def command(bot: Bot, user: str, text: str) -> str:
    return str(bot.slack.slash_command(user, text=text).json()["text"])


def test_a_delegate_decides_in_the_approvers_place(bot: Bot) -> None:
    until = lee_today(bot) + dt.timedelta(days=3)
    answer = command(bot, LEE, f"delegate <@{SAM}|sam> until {until.isoformat()}")
    assert answer.startswith(f":white_check_mark: <@{SAM}> decides your ALZ referrals until the "
                             f"end of {until:%a %b} {until.day} (your time)")
    bot.deliver()
    told = bot.standin.messages(bot.standin.dm_channel(SAM))
    assert any(f"<@{LEE}> made you their approval delegate for ALZ" in m["text"] for m in told)
    assert "decides in your place" in command(bot, LEE, "delegate")
    assert f"you decide in <@{LEE}>'s place" in command(bot, SAM, "delegate")
    with bot.db.session() as s:
        row = s.scalars(select(Delegation)).one()
        assert row.ends_at == end_of_day(until, "America/Chicago")
        assert row.ends_at.astimezone(CHICAGO).time() == dt.time(0)
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "delegation.created")).one()

    msg = pre_qualify(bot)  # logged by Casey; Sam, a coordinator, stands in for Lee
    assert "approved" in approve_click(bot, SAM, msg)
    bot.deliver()
    assert f"Approved by <@{SAM}> for <@{LEE}>" in card_text(card(bot))
    dm = bot.standin.messages(bot.standin.dm_channel("U0COORD01"))
    assert any(f"approved by <@{SAM}> for <@{LEE}>" in m["text"] for m in dm)
    with bot.db.session() as s:
        d = s.scalars(select(ReferralDecision)).one()
        assert (d.actor, d.on_behalf_of, d.role) == (SAM, LEE, "delegate")


def test_a_delegation_that_ended_a_minute_ago_no_longer_counts(bot: Bot) -> None:
    until = lee_today(bot)
    command(bot, LEE, f"delegate <@{SAM}> until {until.isoformat()}")
    msg = pre_qualify(bot)
    ends = end_of_day(until, "America/Chicago")
    bot.clock.advance(ends - bot.ctx.clock.now() - dt.timedelta(minutes=1))
    with bot.db.session() as s:
        from bot.access import require_decider
        study = study_repo.get_study(s, "ALZ")
        assert study is not None
        assert require_decider(s, SAM, study, bot.ctx.clock.now()) == ("delegate", LEE)
    bot.clock.advance(dt.timedelta(minutes=2))  # now a minute past the end of that day
    answer = approve_click(bot, SAM, msg)
    assert ("Only approvers or admins of ALZ can approve or reject referrals; you are a "
            "coordinator.") in answer
    assert referral(bot).state == "pending_approval"
    assert "No delegations in force" in command(bot, LEE, "delegate")


def test_cancel_and_who_may_delegate_to_whom(bot: Bot) -> None:
    until = (lee_today(bot) + dt.timedelta(days=5)).isoformat()
    assert ("Only approvers or admins of a study can hand their approvals to a delegate; you are "
            "a stakeholder of ALZ") in command(bot, PAT, f"delegate <@{SAM}> until {until}")
    assert "is not a coordinator, approver or admin of ALZ" in command(
        bot, LEE, f"delegate <@{ROBIN}> until {until}")
    assert "has passed" in command(bot, LEE, f"delegate <@{SAM}> until 2020-01-01")
    command(bot, LEE, f"delegate <@{SAM}> until {until}")
    assert "Delegation ended for ALZ" in command(bot, LEE, "delegate cancel")
    msg = pre_qualify(bot)
    assert "you are a coordinator" in approve_click(bot, SAM, msg)
    with bot.db.session() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action.like("delegation.%")).order_by(AuditEvent.id))]
    assert actions == ["delegation.created", "delegation.cancelled"]


@pytest.fixture
def graph(bot: Bot) -> Iterator[GraphStandin]:
    standin = GraphStandin(static_tokens=[SANDBOX_TOKEN]).start()
    bot.ctx.graph = GraphClient(StaticTokenCredential(SANDBOX_TOKEN), base_url=standin.graph_url)
    yield standin
    bot.ctx.graph = None
    standin.stop()


def test_an_out_of_office_approver_is_skipped_and_their_delegate_named(
        bot: Bot, graph: GraphStandin, tmp_path: Path) -> None:
    configure(bot, tmp_path, roles={ROBIN: {"ALZ": "approver"}})
    with bot.db.session() as s:
        for uid, mailbox in ((LEE, "lee@example.org"), (ROBIN, "robin@example.org")):
            member = study_repo.get_member(s, uid)
            assert member is not None
            member.mailbox = mailbox
    now = bot.ctx.clock.now()
    for mailbox in ("lee@example.org", "robin@example.org"):
        graph.add_mailbox(mailbox, "America/Chicago")
    graph.add_event("lee@example.org", "Holiday", now - dt.timedelta(hours=2),
                    now + dt.timedelta(hours=10), show_as="oof")
    graph.add_event("robin@example.org", "Sponsor call", now - dt.timedelta(minutes=10),
                    now + dt.timedelta(minutes=20), show_as="busy")  # busy is not away

    msg = pre_qualify(bot)
    assert f"Waiting for approval* by <@{ROBIN}>" in card_text(msg)
    assert f"<@{LEE}>" not in card_text(msg).split("Waiting for approval")[1]

    command(bot, LEE, f"delegate <@{SAM}> until {lee_today(bot) + dt.timedelta(days=2)}")
    msg2 = pre_qualify(bot, **{ids.NAME_INPUT: "Dana Okafor", ids.PHONE_INPUT: "617 555 0177"})
    assert f"Waiting for approval* by <@{SAM}> or <@{ROBIN}>" in card_text(msg2)  # Sam for Lee


def test_a_referral_pending_past_the_sla_is_escalated_once(bot: Bot, tmp_path: Path) -> None:
    configure(bot, tmp_path, approval_sla_hours=4, roles={ALEX: {"ALZ": "admin"}})
    pre_qualify(bot)
    assert run_job(bot.ctx, "approvals") == "nothing overdue"
    bot.clock.advance(dt.timedelta(hours=3, minutes=59))
    assert run_job(bot.ctx, "approvals") == "nothing overdue"
    bot.clock.advance(dt.timedelta(minutes=2))
    assert run_job(bot.ctx, "approvals") == "1 referrals escalated"
    assert run_job(bot.ctx, "approvals") == "nothing overdue"
    bot.deliver()
    for uid in (ALEX, LEE):
        texts = [m["text"] for m in bot.standin.messages(bot.standin.dm_channel(uid))
                 if "waiting for approval" in m["text"]]
        assert texts == [":rotating_light: ALZ: 1 referral waiting for approval for more than "
                         "4 h: ALZ-0001. Decide on the cards in <#C0ALZ0001>, or "
                         "`/prescreen delegate` if you are away."], (uid, texts)
    casey_dm = bot.standin.messages(bot.standin.dm_channel("U0COORD01"))
    assert not any("waiting for approval" in m["text"] for m in casey_dm)
    assert NAME not in " ".join(str(m) for m in bot.standin.messages())
    bot.clock.advance(dt.timedelta(days=2))
    assert run_job(bot.ctx, "approvals") == "nothing overdue"
