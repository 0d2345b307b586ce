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
from sqlalchemy import select

from bot.blocks import MAX_MESSAGE_BLOCKS, MAX_SECTION_TEXT
from bot.digests import daily, runs
from storage.models import DigestRun, OutboxMessage
from tests.conftest import BOT_TOKEN, ENCRYPTION_KEY, SIGNING_SECRET, Bot

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


def run_cli(*argv: str) -> tuple[int, str]:
    from bot import cli

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
