"""Story: whoever logged the qualifying call, or coordinates the referral, cannot approve it —
not even as an admin — and is told who can. A study may need two different approvers: the first
approval shows "1 of 2" on the card, the second (another person) completes it, a rejection by
either ends it, the same person cannot approve twice, and approvers racing each other still make
exactly one outcome."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select

from bot.referrals import workflow
from storage.models import AuditEvent, ReferralDecision, ReferralEvent
from tests.approvals_factory import ALEX, ROBIN, approve_click, configure, referral
from tests.conftest import Bot
from tests.test_log_prescreen_call import CASEY, LEE
from tests.test_referral_pipeline import card, card_text, pre_qualify, replies


def test_the_coordinator_who_logged_the_call_cannot_approve_it_even_as_an_admin(
        bot: Bot, tmp_path: Path) -> None:
    configure(bot, tmp_path, roles={CASEY: {"ALZ": "admin"}})
    msg = pre_qualify(bot)  # Casey, now an ALZ admin, logs the call

    answer = approve_click(bot, CASEY, msg)
    assert answer == (f":warning: Only an approver who did not log this call can approve "
                      f"ALZ-0001: <@{LEE}>.")
    assert referral(bot).state == "pending_approval"
    body = bot.slack.slash_command(CASEY, text="referral ALZ-0001 approved").json()
    assert "Only an approver who did not log this call can approve ALZ-0001" in body["text"]

    assert "approved" in approve_click(bot, LEE, msg)
    bot.deliver()
    assert referral(bot).state == "sent_to_site"
    with bot.db.session() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "referral.approved")).one()
        assert ev.actor == LEE and ev.after is not None
        assert ev.after["role"] == "approver" and ev.after["not_involved"] == [CASEY]


def test_a_coordinator_may_still_reject_nothing_to_hide_there(bot: Bot, tmp_path: Path) -> None:
    configure(bot, tmp_path, roles={CASEY: {"ALZ": "admin"}})
    pre_qualify(bot)
    result = workflow.decide(bot.ctx, referral_id=referral(bot).id, actor=CASEY, approve=False,
                             expected_version=None, reason="duplicate")
    assert result.to_state == "rejected"


def test_two_approver_study_first_approval_is_1_of_2_second_completes(
        bot: Bot, tmp_path: Path) -> None:
    configure(bot, tmp_path, approvals_needed=2, roles={ROBIN: {"ALZ": "approver"}})
    msg = pre_qualify(bot)
    assert "0 of 2 approvals" in card_text(msg)

    answer = approve_click(bot, LEE, msg)
    assert "approval 1 of 2 recorded" in answer
    bot.deliver()
    text = card_text(card(bot))
    assert "Waiting for approval* by <@U0STRANGER> · 1 of 2 approvals" in text
    assert f"Approved by <@{LEE}> · <!date^" in text and "1 of 2 approvals" in text
    assert referral(bot).state == "pending_approval"
    assert any("1 of 2 approvals" in r for r in replies(bot, msg))

    # the same person cannot give the second approval
    again = approve_click(bot, LEE, card(bot))
    assert "You already approved ALZ-0001 (1 of 2). A different approver gives the next approval." in again

    assert "approved" in approve_click(bot, ROBIN, card(bot)).lower()
    bot.deliver()
    text = card_text(card(bot))
    assert "Sent to site" in text
    assert f"Approved by <@{LEE}>" in text and f"Approved by <@{ROBIN}>" in text
    assert "2 of 2 approvals" in text
    with bot.db.session() as s:
        rows = s.scalars(select(ReferralDecision).order_by(ReferralDecision.id)).all()
        assert [(r.actor, r.step, r.needed) for r in rows] == [(LEE, 1, 2), (ROBIN, 2, 2)]
        assert rows[0].event_id is None and rows[1].event_id is not None


def test_a_rejection_by_either_approver_ends_it(bot: Bot, tmp_path: Path) -> None:
    configure(bot, tmp_path, approvals_needed=2, roles={ROBIN: {"ALZ": "approver"}})
    msg = pre_qualify(bot)
    approve_click(bot, LEE, msg)
    ref = referral(bot)
    result = workflow.decide(bot.ctx, referral_id=ref.id, actor=ROBIN, approve=False,
                             expected_version=ref.version, reason="site_capacity")
    assert result.to_state == "rejected"
    bot.deliver()
    text = card_text(card(bot))
    assert f"Rejected* by <@{ROBIN}>" in text
    assert f"Approved by <@{LEE}>" in text and "Site at capacity" in text
    assert not any(b.get("type") == "actions" for b in card(bot)["blocks"])


def _race(bot: Bot, users: list[str], version: int) -> dict[str, str]:
    ref_id = referral(bot).id
    barrier = threading.Barrier(len(users))
    outcomes: dict[str, str] = {}

    def click(user: str) -> None:
        barrier.wait()
        try:
            outcomes[user] = "won:" + workflow.decide(bot.ctx, referral_id=ref_id, actor=user,
                                                      approve=True, expected_version=version).to_state
        except Exception as exc:
            outcomes[user] = f"lost:{type(exc).__name__}:{exc}"

    threads = [threading.Thread(target=click, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


def test_two_approvers_racing_on_a_two_approver_study_make_one_outcome(
        bot: Bot, tmp_path: Path) -> None:
    configure(bot, tmp_path, approvals_needed=2,
              roles={ROBIN: {"ALZ": "approver"}, ALEX: {"ALZ": "admin"}})
    pre_qualify(bot)

    # the first approval, clicked by two at once: one is recorded, the other is told
    first = _race(bot, [LEE, ROBIN], referral(bot).version)
    assert sorted(o.split(":")[0] for o in first.values()) == ["lost", "won"], first
    assert "pending_approval" in next(o for o in first.values() if o.startswith("won"))
    loser = next(o for o in first.values() if o.startswith("lost"))
    assert "AlreadyDecided" in loser and "1 of 2 approvals" in loser
    with bot.db.session() as s:
        assert len(s.scalars(select(ReferralDecision)).all()) == 1
        first_by = s.scalars(select(ReferralDecision)).one().actor

    # the second approval, clicked by the two others at once: exactly one completes it
    others = [u for u in (LEE, ROBIN, ALEX) if u != first_by]
    second = _race(bot, others, referral(bot).version)
    assert sorted(o.split(":")[0] for o in second.values()) == ["lost", "won"], second
    assert "already approved by" in next(o for o in second.values() if o.startswith("lost"))
    with bot.db.session() as s:
        assert len(s.scalars(select(ReferralDecision)).all()) == 2
        approved = s.scalars(select(ReferralEvent).where(ReferralEvent.to_state == "approved")).all()
        assert len(approved) == 1
    assert referral(bot).state == "sent_to_site"
