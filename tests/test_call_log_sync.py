"""Story: the phone system knows what happened. The `call_log` job syncs each coordinator's
RingCentral call log (a full sync once, then incremental with the sync token) and turns outbound
calls to a candidate's number into attempts without anyone typing: no answer and busy as
`no_answer`, voicemail as `left_voicemail`, counted in cadence like logged attempts. A connected
call asks its coordinator to log the outcome. Records are matched through the phone lookup
index; nothing is decrypted to match. The sync is idempotent by record id, resumes after a
crash without duplicating, waits out rate limits, and says plainly when the JWT has expired.
Wherever attempts are shown, a synced one says "from RingCentral": the contact card's attempts
list, and the last outcome of `/prescreen status`."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator

import pytest
import time_machine
from sqlalchemy import func, select, update

from app.scheduler import run_job
from bot import ids
from bot.config import Settings
from bot.prescreen.workflow import CallInput, log_call
from bot.telephony.sync import sync_all
from sandbox.ringcentral_standin import RingCentralStandin
from storage.models import Callback, Candidate, Member, PrescreenCall, RcCallRecord, RcExtension
from tests.conftest import Bot
from tests.leads_factory import LEAD_PHONE, make_lead
from tests.ringcentral_support import extension_of, rc_settings, rc_standin  # noqa: F401

CASEY = "U0COORD01"
NOON_NY = dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)


@pytest.fixture
def settings(settings: Settings, rc_standin: RingCentralStandin) -> Settings:  # noqa: F811
    return rc_settings(settings, rc_standin)


@pytest.fixture(autouse=True)
def tuesday_noon() -> Iterator[None]:
    with time_machine.travel(NOON_NY, tick=True):
        yield


@pytest.fixture
def casey_ext(rc_standin: RingCentralStandin) -> str:  # noqa: F811
    return extension_of(rc_standin, "casey@example.org")


def lead(bot: Bot) -> str:
    return make_lead(bot.ctx, "ALZ", NOON_NY - dt.timedelta(days=1), owner=CASEY,
                     tz="America/New_York", region="MA")


def attempts(bot: Bot) -> list[tuple[str, int]]:
    with bot.db.session() as s:
        return [(c.outcome, c.attempt_no) for c in
                s.scalars(select(PrescreenCall).order_by(PrescreenCall.attempt_no))]


def test_full_sync_then_incremental_turns_missed_calls_into_attempts(
        bot: Bot, rc_standin: RingCentralStandin, casey_ext: str) -> None:  # noqa: F811
    ref = lead(bot)
    rc_standin.add_call(casey_ext, LEAD_PHONE, "No Answer", start=NOON_NY - dt.timedelta(hours=1))
    rc_standin.add_call(casey_ext, "+12025550123", "Call connected", 300)  # not a candidate

    run_job(bot.ctx, "call_log")
    assert attempts(bot) == [("no_answer", 1)]

    rc_standin.add_call(casey_ext, LEAD_PHONE, "Voicemail", 40)
    run_job(bot.ctx, "call_log")

    assert [t for e, t in rc_standin.sync_types if e == casey_ext] == ["FSync", "ISync"]
    assert attempts(bot) == [("no_answer", 1), ("left_voicemail", 2)]
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate).where(Candidate.ref_code == ref)).one()
        assert (cand.attempts, cand.last_outcome, cand.status) == (2, "left_voicemail",
                                                                   "needs_call")
        # "from RingCentral": each attempt is tied to its call-log record
        assert s.scalar(select(func.count()).select_from(RcCallRecord)
                        .where(RcCallRecord.call_id.is_not(None))) == 2
        # the cadence plans the next attempt as for logged attempts
        assert s.scalars(select(Callback).where(Callback.kind == "cadence")).all()
        # the other number left no trace
        assert s.scalar(select(func.count()).select_from(RcCallRecord)) == 2


def test_a_connected_call_asks_its_coordinator_to_log_the_outcome(
        bot: Bot, rc_standin: RingCentralStandin, casey_ext: str) -> None:  # noqa: F811
    ref = lead(bot)
    rc_standin.add_call(casey_ext, LEAD_PHONE, "Call connected", 360)
    run_job(bot.ctx, "call_log")
    bot.deliver()

    assert attempts(bot) == []  # the form is the attempt: nothing counted twice
    dm = bot.standin.wait_for(lambda s: [m for m in s.messages(s.dm_channel(CASEY))
                                         if "ended" in (m.get("text") or "")] or None,
                              message="the call-ended DM")[0]
    assert dm["text"] == f"Call with {ref} ended (6 min) — log the outcome"
    bot.slack.click(CASEY, ids.CALLBACK_LOG, message=dm, channel_id=bot.standin.dm_channel(CASEY))
    view = bot.standin.wait_for(lambda s: s.open_view(CASEY), message="the log-call form")
    assert view["callback_id"] == ids.LOG_CALL_VIEW
    assert ref in json.dumps(view)

    # twenty minutes later Casey logs the outcome: that is the call's one attempt
    with time_machine.travel(NOON_NY + dt.timedelta(minutes=20), tick=True):
        log_call(bot.ctx, CallInput(study_key="ALZ", coordinator=CASEY, outcome="considering",
                                    existing_ref=ref))
        run_job(bot.ctx, "call_log")
    assert attempts(bot) == [("considering", 1)]
    with bot.db.session() as s:
        assert s.scalars(select(RcCallRecord.call_id)).one() is not None


def test_a_sync_that_died_before_saving_its_token_resumes_without_duplicates(
        bot: Bot, rc_standin: RingCentralStandin, casey_ext: str) -> None:  # noqa: F811
    lead(bot)
    for n in range(3):
        rc_standin.add_call(casey_ext, LEAD_PHONE, "No Answer",
                            start=NOON_NY - dt.timedelta(hours=3 - n))
    run_job(bot.ctx, "call_log")
    with bot.db.session() as s:  # the crash: records stored, token never saved
        s.execute(update(RcExtension).values(sync_token=None))

    run_job(bot.ctx, "call_log")
    run_job(bot.ctx, "call_log")

    assert attempts(bot) == [("no_answer", 1), ("no_answer", 2), ("no_answer", 3)]


def test_a_call_logged_by_hand_is_the_same_attempt_as_the_synced_one(
        bot: Bot, rc_standin: RingCentralStandin, casey_ext: str) -> None:  # noqa: F811
    ref = lead(bot)
    log_call(bot.ctx, CallInput(study_key="ALZ", coordinator=CASEY, outcome="no_answer",
                                existing_ref=ref))
    rc_standin.add_call(casey_ext, LEAD_PHONE, "No Answer", start=NOON_NY - dt.timedelta(minutes=3))
    run_job(bot.ctx, "call_log")
    assert attempts(bot) == [("no_answer", 1)]
    with bot.db.session() as s:
        assert s.scalars(select(RcCallRecord.call_id)).one() is not None


def test_a_429_storm_is_waited_out_and_nothing_is_lost_or_doubled(
        bot: Bot, rc_standin: RingCentralStandin, casey_ext: str) -> None:  # noqa: F811
    lead(bot)
    rc_standin.add_call(casey_ext, LEAD_PHONE, "Busy")
    rc_standin.rate_limit(7, retry_after=0.05, group="Heavy")

    first = sync_all(bot.ctx)  # 1 try + 3 retries per request, then it stops for this tick
    assert first.rate_limited and "rate limited by RingCentral (Heavy group)" in first.errors[0]
    assert attempts(bot) == []
    client = bot.ctx.extras["ringcentral"]
    assert client.stats.waited_s >= 3 * 0.05

    second = sync_all(bot.ctx)  # the storm is over
    assert not second.errors
    sync_all(bot.ctx)
    assert attempts(bot) == [("no_answer", 1)]


def test_an_expired_jwt_is_reported_in_plain_words(
        bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    bot.ctx.extras.pop("ringcentral", None)
    bot.ctx.settings.ringcentral_jwt = rc_standin.issue_jwt("expired")
    report = sync_all(bot.ctx)
    assert report.errors == [
        "extension list: OAU-213: the JWT has expired: create a new JWT credential in the "
        "RingCentral developer console and update RINGCENTRAL_JWT"]


def test_records_are_matched_through_the_phone_index_without_decrypting(
        bot: Bot, rc_standin: RingCentralStandin, casey_ext: str,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(5):
        lead(bot)  # five candidates; one number
    rc_standin.add_call(casey_ext, LEAD_PHONE, "No Answer")
    decrypted: list[str] = []
    real = bot.ctx.cipher.decrypt
    monkeypatch.setattr(bot.ctx.cipher, "decrypt", lambda t: decrypted.append(t) or real(t))
    run_job(bot.ctx, "call_log")
    assert decrypted == []
    assert len(attempts(bot)) == 1


def test_synced_attempts_say_from_ringcentral_on_the_card_and_in_status(
        bot: Bot, rc_standin: RingCentralStandin, casey_ext: str) -> None:  # noqa: F811
    ref = lead(bot)
    rc_standin.add_call(casey_ext, LEAD_PHONE, "No Answer", start=NOON_NY - dt.timedelta(hours=1))
    run_job(bot.ctx, "call_log")

    status = json.dumps(bot.slack.slash_command(CASEY, text=f"status {ref}").json())
    assert "No answer (from RingCentral)" in status

    with time_machine.travel(NOON_NY + dt.timedelta(hours=2), tick=True):
        log_call(bot.ctx, CallInput(study_key="ALZ", coordinator=CASEY,
                                    outcome="left_voicemail", existing_ref=ref))
        status = json.dumps(bot.slack.slash_command(CASEY, text=f"status {ref}").json())
        assert "Left voicemail" in status and "from RingCentral" not in status

        web = bot.signed_in(CASEY, f"/secure/c/{ref}")
        card = web.get(f"{bot.url}/secure/c/{ref}", timeout=10).text
    listed = re.findall(r"<li>([^<]*) · ([^<·]*) · (from RingCentral|logged by @[^<]*)</li>", card)
    # newest first, in Casey's time zone (New York)
    assert [(w.strip(), o.strip(), by.strip()) for w, o, by in listed] == [
        ("Tue 24 Nov 2026 14:00", "Left voicemail", f"logged by @{casey_name(bot)}"),
        ("Tue 24 Nov 2026 11:00", "No answer", "from RingCentral")]


def casey_name(bot: Bot) -> str:
    with bot.db.session() as s:
        m = s.scalars(select(Member).where(Member.slack_user_id == CASEY)).one()
        return m.display_name or m.slack_user_id
