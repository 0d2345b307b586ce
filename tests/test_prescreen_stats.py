"""Story: a coordinator types `/prescreen stats ALZ 30d` and sees, only to them, the study's
calls, reached, pre-qualified, referrals and callbacks for the last 30 study-local days. A study
they are not a member of is refused; a period the bot cannot read gets a message saying what
works. Without a study they get every study they belong to."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from app.scheduler import run_job
from bot import kpis
from tests.conftest import Bot
from tests.test_kpis import expected, generate

CASEY, SAM, PAT, STRANGER = "U0COORD01", "U0COORD02", "U0SPONS01", "U0STRANGER"
NOW = dt.datetime(2026, 11, 12, 15, 0, tzinfo=dt.UTC)  # 10:00 in New York


@pytest.fixture
def data(bot: Bot) -> Iterator[Bot]:
    generate(bot.db)
    with time_machine.travel(NOW, tick=False):
        yield bot


def stats(bot: Bot, user: str, text: str) -> dict[str, Any]:
    resp = bot.slack.slash_command(user, text=f"stats {text}".strip())
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    assert body.get("response_type", "ephemeral") == "ephemeral"
    return body


def section_text(body: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in body.get("blocks", []) if b["type"] == "section")


def test_stats_for_30_days_show_the_same_numbers_as_a_plain_count(data: Bot) -> None:
    body = stats(data, CASEY, "ALZ 30d")
    p = kpis.period_for("30d", tz="America/New_York", today=dt.date(2026, 11, 12))
    want = expected(data.db, p, now=NOW)
    text = section_text(body)
    assert want["calls"] > 0
    assert f"*Calls* {want['calls']} · *reached* {want['reached']}" in text
    assert f"*pre-qualified* {want['prequalified']} · *disqualified* {want['disqualified']}" in text
    assert f"*Callbacks* due {want['callbacks_due']} · missed {want['callbacks_missed']}" in text
    assert f"enrolled {want['referrals']['enrolled']}" in text
    assert "ALZ — last 30 days (2026-10-14 – 2026-11-12)" in body["blocks"][0]["text"]["text"]
    # ref codes only: nothing from the candidate rows but the code
    assert not re.search(r"\+1|@example", text)


def test_a_site_and_a_custom_range(data: Bot) -> None:
    body = stats(data, CASEY, "ALZ 2026-10-25..2026-11-03 bos")
    header = body["blocks"][0]["text"]["text"]
    assert "ALZ / site BOS — 2026-10-25 – 2026-11-03" in header
    assert "*Per site*\nBOS:" in section_text(body)


def test_without_a_study_every_study_of_the_caller_is_shown(data: Bot) -> None:
    body = stats(data, SAM, "7d")
    headers = [b["text"]["text"] for b in body["blocks"] if b["type"] == "header"]
    assert [h.split()[1] for h in headers] == ["ALZ", "MDD"]
    body = stats(data, CASEY, "")
    headers = [b["text"]["text"] for b in body["blocks"] if b["type"] == "header"]
    assert headers == ["Stats ALZ — today (2026-11-12)"]


def test_a_study_the_caller_is_not_a_member_of_is_refused(data: Bot) -> None:
    body = stats(data, CASEY, "MDD 7d")
    assert body["text"] == ":warning: You are not a member of MDD. Ask your admin to add you."
    assert "blocks" not in body or not body["blocks"]
    assert "not a member of any study" in stats(data, STRANGER, "")["text"]


def test_bad_period_or_unknown_study_says_what_works(data: Bot) -> None:
    body = stats(data, CASEY, "ALZ last week")
    assert "is not one of your studies (ALZ) or a period" in body["text"]
    assert "7d" in body["text"]
    assert "not a date" in stats(data, CASEY, "ALZ 2026-02-30")["text"]
    assert "is not one of your studies" in stats(data, CASEY, "XYZ")["text"]
    assert "ends (2026-11-01) before it starts" in stats(data, PAT, "ALZ 2026-11-05..2026-11-01")["text"]


def test_stats_is_listed_in_help(bot: Bot) -> None:
    body = bot.slack.slash_command(CASEY, text="help").json()
    assert "/prescreen stats" in str(body)


def test_a_year_is_answered_in_the_reply_itself_once_the_rollups_are_built(data: Bot) -> None:
    assert run_job(data.ctx, "kpis")
    body = stats(data, CASEY, "ALZ 2026-01-01..2026-11-12")
    assert "Stats ALZ — 2026-01-01 – 2026-11-12" in str(body["blocks"])
    p = kpis.period_for("2026-01-01..2026-11-12", tz="America/New_York", today=NOW.date())
    assert f"*Calls* {expected(data.db, p, now=NOW)['calls']} ·" in section_text(body)


def test_before_the_rollups_are_built_a_long_period_answers_at_once_then_sends_the_figures(
        data: Bot) -> None:
    body = stats(data, CASEY, "ALZ 2026-01-01..2026-11-12")
    assert body["text"] == ":hourglass_flowing_sand: Counting 316 days of KPIs…"
    found = data.standin.wait_for(lambda st: [
        e for e in st.ephemerals(CASEY)
        if "Stats ALZ — 2026-01-01 – 2026-11-12" in str(e)], message="stats reply")
    p = kpis.period_for("2026-01-01..2026-11-12", tz="America/New_York", today=NOW.date())
    assert f"*Calls* {expected(data.db, p, now=NOW)['calls']} ·" in str(found[0])
