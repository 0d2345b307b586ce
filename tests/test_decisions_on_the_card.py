"""Story: the approval card keeps the record. However far the referral moves (sent to site, site
contacted, visit scheduled, screened, enrolled or screen failed, withdrawn, lost), the card shows
the current state first and, below it, who approved or rejected, when (Slack's date formatting,
so each reader sees their own time zone) and why; the thread keeps the full history."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.referrals import workflow
from storage.models import Referral
from tests.approvals_factory import approve_click, referral
from tests.conftest import Bot
from tests.test_log_prescreen_call import CASEY, LEE
from tests.test_referral_pipeline import card, pre_qualify, replies


def sections(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b.get("type") == "section" and "text" in b]


def status_and_decisions(bot: Bot) -> tuple[str, str]:
    shown = sections(card(bot))
    decisions = next(s for s in shown if s.startswith("*Decisions*"))
    assert shown.index(decisions) == 1, "the current state first, the decisions below it"
    return shown[0], decisions


def test_who_approved_stays_on_the_card_in_every_later_state(bot: Bot) -> None:
    msg = pre_qualify(bot)
    approve_click(bot, LEE, msg)
    bot.deliver()
    with bot.db.session() as s:
        decided_at = s.scalars(select(Referral)).one().decided_at
    assert decided_at is not None
    approval = status_and_decisions(bot)[1]
    local = decided_at.astimezone(ZoneInfo("America/New_York"))  # the study's zone: the fallback
    assert approval == (f"*Decisions*\n:white_check_mark: Approved by <@{LEE}> · "
                        f"<!date^{int(decided_at.timestamp())}^{{date_short_pretty}} {{time}}|"
                        f"{local:%b} {local.day} {local:%H:%M} {local.tzname()}>")

    visit = bot.ctx.clock.now().date() + dt.timedelta(days=7)
    for step, expect in (("", "*Sent to site*"),
                         ("site_contacted", "*Site contacted*"),
                         (f"visit_scheduled {visit.isoformat()}",
                          f"*Visit scheduled* for {visit:%a %b} {visit.day}"),
                         ("screened", "*Screened*"),
                         ("enrolled", "*Enrolled*")):
        if step:
            body = bot.slack.slash_command(CASEY, text=f"referral ALZ-0001 {step}").json()
            assert "→" in body["text"], body
            bot.deliver()
        status, decisions = status_and_decisions(bot)
        assert expect in status, (step, status)
        assert decisions == approval, step
    history = replies(bot, msg)
    for bit in ("*approved* by", "*sent to site*", "*site contacted*", "*visit scheduled*",
                "*screened*", "*enrolled*"):
        assert any(bit in r for r in history), bit


@pytest.mark.parametrize("ending", ["screen_failed", "withdrawn", "lost"])
def test_other_endings_keep_the_decision_too(bot: Bot, ending: str) -> None:
    msg = pre_qualify(bot)
    approve_click(bot, LEE, msg)
    if ending == "screen_failed":
        for step in ("site_contacted", "visit_scheduled 2026-12-30", "screened"):
            workflow.advance(bot.ctx, actor=CASEY, ref="ALZ-0001", to_state=step.split()[0],
                             visit_date=dt.date(2026, 12, 30) if " " in step else None)
    workflow.advance(bot.ctx, actor=CASEY, ref="ALZ-0001", to_state=ending)
    bot.deliver()
    status, decisions = status_and_decisions(bot)
    assert f"*{ending.replace('_', ' ').capitalize()}*" in status
    assert f"Approved by <@{LEE}>" in decisions
    assert not any(b.get("type") == "actions" for b in card(bot)["blocks"])


def test_a_rejection_shows_its_reason_and_never_the_note(bot: Bot) -> None:
    pre_qualify(bot)
    workflow.decide(bot.ctx, referral_id=referral(bot).id, actor=LEE, approve=False,
                    expected_version=None, reason="needs_records", note="call back about MRI")
    bot.deliver()
    status, decisions = status_and_decisions(bot)
    assert status.startswith(f":x: *Rejected* by <@{LEE}> · <!date^")
    assert re.fullmatch(r"\*Decisions\*\n:x: Rejected by <@U0LEAD001> · <!date\^\d+\^"
                        r"\{date_short_pretty\} \{time\}\|[^>]+> · Needs medical records first",
                        decisions), decisions
    assert "MRI" not in str(card(bot))
