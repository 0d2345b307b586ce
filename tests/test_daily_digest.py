"""Story: every morning at the study's digest_time (study time zone) the study channel gets
one digest of yesterday: calls, reached, pre-qualified, disqualified (top failed criteria),
referrals approved / sent / visits scheduled / enrolled, callbacks due today and missed,
approvals pending for more than 24 h, unreachable candidates, per coordinator and per site,
each compared with the previous 7-day average. Counts and reference codes only. It is sent
once per day whatever the number of workers; a worker that was down sends it late, once, and
a digest more than 12 hours late is skipped and logged. Long lists stay within Slack's limits."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from bot import ids
from bot.blocks import MAX_MESSAGE_BLOCKS, MAX_SECTION_TEXT
from bot.digests import daily, runs
from storage.models import DigestRun, OutboxMessage
from tests.conftest import BOT_TOKEN, ENCRYPTION_KEY, SIGNING_SECRET, Bot, phi_surface_env, python_argv
from tests.test_log_prescreen_call import CASEY, LEE, PHI_STRINGS, SAM, submit

CHANNEL = "C0ALZ0001"


def kpis(**overrides: Any) -> SimpleNamespace:
    base: dict[str, Any] = dict(
        study_key="ALZ", period=None, calls=0, reached=0, prequalified=0, disqualified=0,
        top_failed=[], referrals={}, callbacks_due=0, callbacks_missed=0,
        callbacks_on_time_pct=None, pending_approvals_24h=[], unreachable=[], by_coordinator={},
        by_site={}, funnel=[], median_days_call_to_referral=None,
        median_days_referral_to_visit=None, by_source={})
    base.update(overrides)
    return SimpleNamespace(**base)


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for b in blocks:
        if b.get("text"):
            out.append(b["text"]["text"])
        out += [f["text"] for f in b.get("fields", [])]
        out += [e.get("text", "") for e in b.get("elements", [])]
    return out


def test_long_lists_are_cut_with_and_n_more_and_stay_within_slack_limits(bot: Bot) -> None:
    pending = [f"ALZ-{i:04d}" for i in range(1, 201)]
    coordinators = {f"U{i:08d}": {"calls": 300 - i, "reached": 1, "prequalified": 0}
                    for i in range(120)}
    sites = {f"S{i:03d}": {"approved": 1} for i in range(80)}
    numbers = daily.DailyNumbers(
        day=kpis(calls=12, pending_approvals_24h=pending, unreachable=pending,
                 by_coordinator=coordinators, by_site=sites,
                 top_failed=[(f"crit{i}", 50 - i) for i in range(30)]),
        previous=[kpis(calls=7)] * 7, today=kpis(callbacks_due=3))
    text, blocks = daily.render("ALZ", dt.date(2026, 11, 22), numbers)

    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    texts = section_texts(blocks)
    assert all(len(t) <= MAX_SECTION_TEXT for t in texts)
    pending_text = next(t for t in texts if t.startswith("*Pending approval > 24 h (200):*"))
    assert "ALZ-0001" in pending_text and "ALZ-0200" not in pending_text
    assert "…and 160 more — `/prescreen stats ALZ yesterday`" in pending_text
    coord_text = next(t for t in texts if t.startswith("*Per coordinator:*"))
    assert coord_text.index("<@U00000000>") < coord_text.index("<@U00000001>")  # busiest first
    assert "…and 100 more" in coord_text
    assert "12 ↑ _(7-day avg 7.0)_" in " ".join(texts)
    assert text.startswith("ALZ daily digest Sun 22 Nov: 12 calls")

    # and Slack (the stand-in checks the documented limits) accepts it
    with bot.db.session() as s:
        runs.enqueue(bot.ctx, s, "daily:ALZ", "2026-11-22",
                     [runs.Outgoing(daily.KIND, CHANNEL, text, blocks, study_key="ALZ")])
    bot.deliver()
    [msg] = bot.standin.messages(CHANNEL)
    assert len(msg["blocks"]) == len(blocks)


def test_fit_blocks_keeps_fifty_and_says_how_many_were_left_out() -> None:
    from bot.blocks import section
    from bot.digests.render import fit_blocks

    blocks = [section(f"line {i}") for i in range(130)]
    fitted = fit_blocks(blocks, more_hint="`/prescreen stats ALZ yesterday`")
    assert len(fitted) == 50
    assert fitted[-1]["elements"][0]["text"] == "…and 81 more — `/prescreen stats ALZ yesterday`"


def test_two_workers_racing_for_the_same_run_send_it_once(bot: Bot) -> None:
    run = runs.DueRun("daily:ALZ", "2026-11-22", bot.ctx.clock.now() - dt.timedelta(minutes=1),
                      dt.date(2026, 11, 23))
    built = []
    go = threading.Barrier(2)

    def build(late: bool) -> list[runs.Outgoing]:
        built.append(late)
        time.sleep(0.2)  # both are past the "already sent?" check before either claims
        return [runs.Outgoing(daily.KIND, CHANNEL, "digest", study_key="ALZ")]

    outcomes: list[str | None] = []

    def worker() -> None:
        go.wait()
        outcomes.append(runs.run_if_due(bot.ctx, run, build, runs.TickResult()))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 2
    assert sorted(outcomes, key=str) == [None, "sent"]
    with bot.db.session() as s:
        assert len(s.scalars(select(DigestRun)).all()) == 1
        assert len(s.scalars(select(OutboxMessage)).all()) == 1


def test_due_times_follow_the_study_clock_across_dst_changes(bot: Bot) -> None:
    from bot.digests.runs import last_daily, local_due

    ny = "America/New_York"
    # fall back (Sun 1 Nov 2026): 08:30 EST is 13:30 UTC; the day before it was 12:30 UTC (EDT)
    assert local_due(dt.date(2026, 10, 31), "08:30", ny) == dt.datetime(2026, 10, 31, 12, 30,
                                                                        tzinfo=dt.UTC)
    assert local_due(dt.date(2026, 11, 1), "08:30", ny) == dt.datetime(2026, 11, 1, 13, 30,
                                                                       tzinfo=dt.UTC)
    # spring forward (Sun 8 Mar 2026): 08:30 EDT is 12:30 UTC; a 02:30 digest moves to 03:30
    assert local_due(dt.date(2026, 3, 8), "08:30", ny) == dt.datetime(2026, 3, 8, 12, 30,
                                                                      tzinfo=dt.UTC)
    assert local_due(dt.date(2026, 3, 8), "02:30", ny) == dt.datetime(2026, 3, 8, 7, 30,
                                                                      tzinfo=dt.UTC)
    # at 13:00 UTC on 1 Nov the 08:30 EST digest is not due yet: the latest is Saturday's
    day, _ = last_daily(dt.datetime(2026, 11, 1, 13, 0, tzinfo=dt.UTC), "08:30", ny)
    assert day == dt.date(2026, 10, 31)
    with bot.db.session() as s:
        from storage.repositories.studies import get_study

        study = get_study(s, "ALZ")
        assert study is not None
        run = daily.due_run(study, dt.datetime(2026, 11, 1, 13, 30, tzinfo=dt.UTC))
    assert (run.scope, run.period, run.day) == ("daily:ALZ", "2026-10-31", dt.date(2026, 11, 1))


# ------------------------------------------------------------------ CLI


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, bot: Bot, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", bot.ctx.settings.database_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_API_URL", bot.standin.url)
    monkeypatch.setenv("PRESCREEN_ENCRYPTION_KEYS", ENCRYPTION_KEY)
    for name, value in phi_surface_env(bot.ctx.settings.phi_surface).items():
        monkeypatch.setenv(name, value)



def run_cli(*argv: str) -> tuple[int, str]:
    from app import cli

    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_digest_cli_refuses_an_unknown_study_or_a_bad_date(
        cli_env: None, bot: Bot, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("digest", "preview", "NOPE")[0] == 2
    assert "no study 'NOPE'; studies: ALZ, MDD" in capsys.readouterr().err
    assert run_cli("digest", "send", "ALZ", "--period", "21/11/2026")[0] == 2
    assert "--period '21/11/2026' is not a date like 2026-11-21" in capsys.readouterr().err
    with bot.db.session() as s:
        assert s.scalars(select(OutboxMessage)).all() == []
        assert s.scalars(select(DigestRun)).all() == []


# ------------------------------------------------------------------ the real digest, end to end

SUNDAY_10_NY = dt.datetime(2026, 11, 22, 15, 0, tzinfo=dt.UTC)
MONDAY_0830_NY = dt.datetime(2026, 11, 23, 13, 30, tzinfo=dt.UTC)


def log_call(bot: Bot, user: str, **fields: Any) -> None:
    from tests.test_log_prescreen_call import new_candidate

    resp = submit(bot, user, bot.open_modal(user, "log ALZ"), new_candidate(**fields))
    assert resp.status_code == 200 and "response_action" not in resp.text, resp.text


def approve_latest(bot: Bot) -> None:
    from bot import ids
    from tests.test_referral_pipeline import card

    bot.deliver()
    msg = card(bot)
    value = next(el["value"] for b in msg["blocks"] if b.get("type") == "actions"
                 for el in b["elements"] if el["action_id"] == ids.REFERRAL_APPROVE)
    before = len(bot.standin.responses)
    bot.slack.click(LEE, ids.REFERRAL_APPROVE, value, message=msg, channel_id=CHANNEL)
    bot.standin.wait_for(lambda s: len(s.responses) > before, message="approval answered")
    bot.deliver()


def digests(bot: Bot) -> list[dict[str, Any]]:
    return [m for m in bot.standin.messages(CHANNEL)
            if (m.get("text") or "").startswith("ALZ daily digest")]


def tick(bot: Bot) -> str:
    from app.scheduler import run_job

    summary = run_job(bot.ctx, "digests")
    bot.deliver()
    return str(summary)


def yesterday_with_work(bot: Bot, traveller: Any) -> None:
    """Wed 18 Nov: one no-answer call. Sun 22 Nov: Casey pre-qualifies one candidate (approved
    and sent to the Boston site) and disqualifies one on age; Sam gets no answer from one."""
    traveller.move_to(dt.datetime(2026, 11, 18, 15, 0, tzinfo=dt.UTC), tick=False)
    log_call(bot, SAM, **{ids.OUTCOME_SELECT: "no_answer", ids.PHONE_INPUT: "(617) 555-0101"})
    traveller.move_to(SUNDAY_10_NY, tick=False)
    log_call(bot, CASEY)
    approve_latest(bot)
    log_call(bot, CASEY, **{"answer:age": "40", ids.PHONE_INPUT: "(617) 555-0102"})
    log_call(bot, SAM, **{ids.OUTCOME_SELECT: "no_answer", ids.PHONE_INPUT: "(617) 555-0103"})
    bot.deliver()


def test_monday_digest_reports_sunday_against_the_week_before(bot: Bot) -> None:
    with time_machine.travel(SUNDAY_10_NY, tick=False) as traveller:
        yesterday_with_work(bot, traveller)
        traveller.move_to(MONDAY_0830_NY - dt.timedelta(minutes=1), tick=False)
        tick(bot)
        assert digests(bot) == []
        traveller.move_to(MONDAY_0830_NY, tick=False)
        tick(bot)
        tick(bot)
    [digest] = digests(bot)
    body = " ".join(section_texts(digest["blocks"]))
    assert "ALZ daily digest — Sun 22 Nov 2026" in body
    assert "*Calls*\n3 ↑ _(7-day avg 0.1)_" in body
    assert "*Pre-qualified*\n1 ↑" in body and "*Disqualified*\n1 ↑" in body
    assert "*Top failed criteria:*\nage 1" in body
    assert "*Approved*\n1 ↑" in body and "*Sent to site*\n1 ↑" in body
    assert f"<@{CASEY}>: 2 calls" in body and f"<@{SAM}>: 1 call ·" in body
    assert "*BOS*:" in body and "sent to site" in body
    assert "sent late" not in body
    everything = str(bot.standin.messages())  # every channel and DM
    for phi in PHI_STRINGS:
        assert phi not in str(digest)
        assert phi not in everything
    with bot.db.session() as s:
        [run] = s.scalars(select(DigestRun).where(DigestRun.scope == "daily:ALZ",
                                                  DigestRun.period == "2026-11-22")).all()
        assert (run.status, run.late) == ("sent", False)


def test_worker_down_at_0830_sends_once_at_1100_marked_late(bot: Bot) -> None:
    with time_machine.travel(SUNDAY_10_NY, tick=False) as traveller:
        yesterday_with_work(bot, traveller)
        traveller.move_to(MONDAY_0830_NY + dt.timedelta(hours=2, minutes=30), tick=False)  # 11:00
        tick(bot)
        tick(bot)
        traveller.move_to(MONDAY_0830_NY + dt.timedelta(hours=3), tick=False)
        tick(bot)
    [digest] = digests(bot)
    assert "sent late — it was due 08:30 EST" in str(digest["blocks"])
    assert "(sent late" in digest["text"]
    with bot.db.session() as s:
        run = s.scalars(select(DigestRun).where(DigestRun.scope == "daily:ALZ",
                                                DigestRun.period == "2026-11-22")).one()
        assert (run.status, run.late) == ("sent", True)


def test_a_digest_more_than_twelve_hours_late_is_skipped_and_logged(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    with time_machine.travel(MONDAY_0830_NY + dt.timedelta(hours=13), tick=False):
        tick(bot)
    assert digests(bot) == []
    with bot.db.session() as s:
        run = s.scalars(select(DigestRun).where(DigestRun.scope == "daily:ALZ",
                                                DigestRun.period == "2026-11-22")).one()
        assert run.status == "skipped"
    assert any("daily:ALZ 2026-11-22 skipped" in r.getMessage() for r in caplog.records)


def test_two_workers_ticking_together_post_one_digest(bot: Bot) -> None:
    from app.scheduler import run_job

    # 08:31 in Chicago: MDD's digest is due, ALZ's (08:30 New York) is an hour late
    with time_machine.travel(dt.datetime(2026, 11, 23, 14, 31, tzinfo=dt.UTC), tick=False):
        go = threading.Barrier(3)
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                go.wait()
                run_job(bot.ctx, "digests")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        bot.deliver()
    assert len(digests(bot)) == 1
    mdd = [m for m in bot.standin.messages("C0MDD0001")
           if (m.get("text") or "").startswith("MDD daily digest")]
    assert len(mdd) == 1


def test_days_are_study_days_on_dst_changes(bot: Bot) -> None:
    """1 Nov 2026 in New York runs from 04:00 UTC to 05:00 UTC the next day (25 hours)."""
    with time_machine.travel(dt.datetime(2026, 11, 1, 4, 30, tzinfo=dt.UTC), tick=False) as t:
        log_call(bot, CASEY, **{ids.OUTCOME_SELECT: "no_answer"})  # 00:30 EDT, 1 Nov
        t.move_to(dt.datetime(2026, 11, 2, 4, 30, tzinfo=dt.UTC), tick=False)  # 23:30 EST, 1 Nov
        log_call(bot, CASEY, **{ids.OUTCOME_SELECT: "no_answer", ids.PHONE_INPUT: "(617) 555-0104"})
        t.move_to(dt.datetime(2026, 11, 2, 5, 30, tzinfo=dt.UTC), tick=False)  # 00:30 EST, 2 Nov
        log_call(bot, CASEY, **{ids.OUTCOME_SELECT: "no_answer", ids.PHONE_INPUT: "(617) 555-0105"})
        t.move_to(dt.datetime(2026, 11, 2, 13, 30, tzinfo=dt.UTC), tick=False)  # 08:30 EST, 2 Nov
        tick(bot)
        t.move_to(dt.datetime(2026, 3, 8, 5, 30, tzinfo=dt.UTC), tick=False)  # 00:30 EST, 8 Mar
        log_call(bot, CASEY, **{ids.OUTCOME_SELECT: "no_answer", ids.PHONE_INPUT: "(617) 555-0106"})
        t.move_to(dt.datetime(2026, 3, 9, 3, 30, tzinfo=dt.UTC), tick=False)  # 23:30 EDT, 8 Mar
        log_call(bot, CASEY, **{ids.OUTCOME_SELECT: "no_answer", ids.PHONE_INPUT: "(617) 555-0107"})
        t.move_to(dt.datetime(2026, 3, 9, 12, 30, tzinfo=dt.UTC), tick=False)  # 08:30 EDT, 9 Mar
        tick(bot)
    by_day = {m["blocks"][0]["text"]["text"]: " ".join(section_texts(m["blocks"]))
              for m in digests(bot)}
    assert "*Calls*\n2 " in by_day["ALZ daily digest — Sun 01 Nov 2026"]
    assert "*Calls*\n2 " in by_day["ALZ daily digest — Sun 08 Mar 2026"]


def test_preview_prints_the_next_digest_and_send_queues_it_again_on_purpose(
        cli_env: None, bot: Bot) -> None:
    from storage.models import AuditEvent

    with time_machine.travel(SUNDAY_10_NY, tick=False) as traveller:
        yesterday_with_work(bot, traveller)
        traveller.move_to(MONDAY_0830_NY - dt.timedelta(minutes=30), tick=False)
        code, out = run_cli("digest", "preview", "ALZ")
        assert code == 0, out
        assert "ALZ daily digest — Sun 22 Nov 2026" in out and "Calls: 3 ↑ (7-day avg 0.1)" in out
        assert "Stale items (past SLA): No items past SLA." in out
        with bot.db.session() as s:
            assert s.scalars(select(DigestRun).where(DigestRun.scope == "daily:ALZ")).all() == []
        code, out = run_cli("digest", "preview", "ALZ", "--kind", "weekly")
        assert code == 0 and "ALZ weekly update — 16 Nov to 22 Nov 2026" in out
        assert "[file alz-funnel-2026-11-16.png" in out
        bot.deliver()
        assert digests(bot) == []

        code, out = run_cli("digest", "send", "ALZ", "--period", "2026-11-22")
        assert code == 0, out
        assert 'queued message "ALZ daily digest Sun 22 Nov' in out and "to C0ALZ0001" in out
        bot.deliver()
        assert len(digests(bot)) == 1
        traveller.move_to(MONDAY_0830_NY, tick=False)
        tick(bot)
        assert len(digests(bot)) == 1, "the scheduled run does not send a second copy"

        code, out = run_cli("digest", "send", "ALZ", "--period", "2026-11-22")
        assert code == 0 and "(it had been sent before)" in out
        bot.deliver()
        assert len(digests(bot)) == 2
    with bot.db.session() as s:
        audits = s.scalars(select(AuditEvent).where(AuditEvent.action == "digest.resent")).all()
        assert [a.entity_id for a in audits] == ["daily:ALZ:2026-11-22"] * 2


def test_two_worker_processes_send_the_due_digest_once(bot: Bot, tmp_path: Path) -> None:
    """Two `prescreen-bot jobs run digests` processes at once, on the same database, five
    minutes after the ALZ digest was due (the processes share the test's clock)."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MS_"))}
    env.update(DATABASE_URL=bot.ctx.settings.database_url, SLACK_BOT_TOKEN=BOT_TOKEN,
               SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=bot.standin.url,
               PRESCREEN_ENCRYPTION_KEYS=ENCRYPTION_KEY,
               **phi_surface_env(bot.ctx.settings.phi_surface))
    with time_machine.travel(MONDAY_0830_NY + dt.timedelta(minutes=5), tick=True):
        procs = [subprocess.Popen(python_argv("-m", "app.cli", "jobs", "run", "digests"),
                                  env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    period = "2026-11-22"  # Sunday, reported on Monday morning
    assert sum(f"daily:ALZ {period}" in out for out in outputs) == 1, outputs
    with bot.db.session() as s:
        [run] = s.scalars(select(DigestRun).where(DigestRun.scope == "daily:ALZ",
                                                  DigestRun.period == period)).all()
        assert (run.status, run.late) == ("sent", False)
        assert len(s.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == daily.KIND, OutboxMessage.study_key == "ALZ")).all()) == 1
    with time_machine.travel(MONDAY_0830_NY + dt.timedelta(minutes=6), tick=True):
        bot.deliver()
    assert len(digests(bot)) == 1


# ------------------------------------------------------------------ stale items (past SLA)


def stale_text(message: dict[str, Any]) -> str:
    return next(t for t in section_texts(message["blocks"])
                if t.startswith("*Stale items (past SLA)"))


def test_digest_counts_items_past_sla_as_of_its_due_time_without_patient_identity(
        bot: Bot) -> None:
    from zoneinfo import ZoneInfo

    from tests.leads_factory import LEAD_NAME, LEAD_PHONE, make_lead
    from tests.test_stage_slas import referral

    def ny(*args: int) -> dt.datetime:
        return dt.datetime(*args, tzinfo=ZoneInfo("America/New_York"))  # type: ignore[misc]

    tuesday = ny(2026, 11, 17, 10, 0)  # first call was due Friday 10:00: late on Monday
    make_lead(bot.ctx, "ALZ", tuesday, owner=SAM, source="web-ads")
    make_lead(bot.ctx, "ALZ", tuesday, owner=SAM, source="web-ads")
    make_lead(bot.ctx, "ALZ", tuesday, source="referral-partner")
    at_site = make_lead(bot.ctx, "ALZ", tuesday, owner=CASEY)
    referral(bot, at_site, "sent_to_site", tuesday)  # site contact was due Thursday
    # Friday 10:00, due Monday 10:00: past SLA when the late digest is built at 11:00, but not
    # at its 08:30 due time, which is what the digest counts
    make_lead(bot.ctx, "ALZ", ny(2026, 11, 20, 10, 0), owner=CASEY, source="web-ads")
    with time_machine.travel(MONDAY_0830_NY + dt.timedelta(hours=2, minutes=30), tick=False):
        tick(bot)
    [digest] = digests(bot)
    assert stale_text(digest) == (
        "*Stale items (past SLA):* 4\n"
        "By stage: 3 first contact · 1 site contact\n"
        "By source: 2 web-ads · 1 referral-partner · 1 web form\n"
        "By site: 3 no site yet · 1 BOS\n"
        f"By owner: <@{SAM}> 2 · <@{CASEY}> 1 · unassigned 1\n"
        "By reason: 3 not contacted yet · 1 no response\n"
        "Run `/prescreen queue ALZ`.")
    everything = str(bot.standin.messages())
    assert LEAD_NAME not in everything and LEAD_PHONE not in everything
    assert LEAD_PHONE[2:] not in everything

    # MDD has nothing waiting: one short line
    [mdd] = [m for m in bot.standin.messages("C0MDD0001")
             if (m.get("text") or "").startswith("MDD daily digest")]
    assert stale_text(mdd) == "*Stale items (past SLA):* No items past SLA."


def test_long_stale_breakdowns_stay_within_one_section() -> None:
    from bot.digests.render import stale_section

    owners = {f"U{i:08d}": 200 - i for i in range(150)}
    block = stale_section({"study": "ALZ", "total": 20000, "by_stage": {"first_attempt": 20000},
                           "by_source": {"web-ads": 20000}, "by_site": {"none": 20000},
                           "by_owner": owners, "by_reason": {"not contacted yet": 20000}})
    text = block["text"]["text"]
    assert len(text) <= MAX_SECTION_TEXT
    owner_line = next(line for line in text.splitlines() if line.startswith("By owner:"))
    assert owner_line.startswith("By owner: <@U00000000> 200 · <@U00000001> 199")
    assert owner_line.endswith("…and 140 more — `/prescreen queue ALZ`")
    assert text.endswith("Run `/prescreen queue ALZ`.")
