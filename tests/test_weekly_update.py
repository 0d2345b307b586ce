"""Story: every Monday 09:00 (study time, configurable) the study channel gets the weekly
update for sponsors and sites: the funnel for the study and per site with the conversion at
each step, median days from first call to referral and from referral to visit, callbacks on
time — as text, plus a funnel chart uploaded as a PNG through Slack's upload flow."""

from __future__ import annotations

import datetime as dt
from typing import Any

import time_machine
from sqlalchemy import select

from bot.digests.chart import conversion, funnel_png
from storage.models import DigestRun, Study
from tests.conftest import Bot
from tests.test_daily_digest import SUNDAY_10_NY, section_texts, tick, yesterday_with_work
from tests.test_log_prescreen_call import PHI_STRINGS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHANNEL = "C0ALZ0001"


def test_a_file_queued_in_the_outbox_is_uploaded_once_through_slacks_upload_flow(bot: Bot) -> None:
    from bot.outbox import upload_file

    data = PNG_MAGIC + b"\x00" * 100
    for _ in range(2):  # the same key twice: queued once
        with bot.db.session() as s:
            upload_file(bot.ctx, s, key="test:file:1", kind="weekly_chart", channel=CHANNEL,
                        filename="funnel.png", data=data, title="Funnel",
                        initial_comment="ALZ funnel", study_key="ALZ")
    bot.deliver()
    assert [c.method for c in bot.standin.calls] == ["files.getUploadURLExternal",
                                                     "files.completeUploadExternal"]
    [msg] = bot.standin.messages(CHANNEL)
    assert msg["text"] == "ALZ funnel"
    assert msg["files"][0]["title"] == "Funnel"
    [uploaded] = bot.standin.uploaded_files
    assert uploaded["data"] == data


MONDAY_0900_NY = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)


def weekly_messages(bot: Bot, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m for m in bot.standin.messages(channel)
            if (m.get("text") or "").startswith("ALZ weekly update")]


def test_monday_update_has_the_funnel_with_conversions_and_the_chart(bot: Bot) -> None:
    with time_machine.travel(SUNDAY_10_NY, tick=False) as traveller:
        yesterday_with_work(bot, traveller)
        traveller.move_to(MONDAY_0900_NY - dt.timedelta(minutes=1), tick=False)
        tick(bot)
        assert weekly_messages(bot) == []
        traveller.move_to(MONDAY_0900_NY, tick=False)
        tick(bot)
        tick(bot)
    [update] = weekly_messages(bot)
    body = " ".join(section_texts(update["blocks"]))
    assert "ALZ weekly update — 16 Nov to 22 Nov 2026" in body
    assert "Calls: *4*" in body
    assert "Pre-qualified: *1*" in body
    assert "Approved: *1* (100% of previous step)" in body
    assert "Sent to site: *1* (100% of previous step)" in body
    assert "*BOS:*\nApproved 1 → Sent to site 1 (100%) → Visit scheduled 0 (0%)" in body
    assert "*Median days* first call → referral" in body and "*Callbacks on time:*" in body

    charts = [m for m in bot.standin.messages(CHANNEL) if m.get("files")]
    assert len(charts) == 1
    [chart] = charts[0]["files"]
    assert chart["mimetype"] == "image/png" and chart["name"] == "alz-funnel-2026-11-16.png"
    [uploaded] = [f for f in bot.standin.uploaded_files if f["id"] == chart["id"]]
    data = uploaded["data"]
    assert data.startswith(PNG_MAGIC) and 5_000 < len(data) < 200_000
    methods = [c.method for c in bot.standin.calls]
    assert methods.count("files.getUploadURLExternal") == 1
    assert methods.count("files.completeUploadExternal") == 1
    for phi in PHI_STRINGS:
        assert phi not in str(bot.standin.messages())


def test_day_time_and_channel_come_from_the_study(bot: Bot) -> None:
    with bot.db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "ALZ")).one()
        study.options = {**(study.options or {}),
                         "weekly_update": {"day": "fri", "time": "16:00", "channel": "C0BOSSITE"}}
    friday_4pm = dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC)
    with time_machine.travel(friday_4pm - dt.timedelta(minutes=1), tick=False) as traveller:
        tick(bot)
        assert weekly_messages(bot, "C0BOSSITE") == []
        traveller.move_to(friday_4pm, tick=False)
        tick(bot)
    [update] = weekly_messages(bot, "C0BOSSITE")
    assert "20 Nov to 26 Nov 2026" in str(update["blocks"])
    assert "*Stale items (past SLA):* No items past SLA." in section_texts(update["blocks"])
    assert weekly_messages(bot) == []
    with bot.db.session() as s:
        [run] = s.scalars(select(DigestRun).where(DigestRun.scope == "weekly:ALZ",
                                                  DigestRun.status == "sent")).all()
        assert run.period == "2026-11-20/2026-11-26"


def test_the_chart_is_deterministic_and_small() -> None:
    steps = [("calls", 120), ("reached", 80), ("pre-qualified", 30), ("approved", 25),
             ("sent to site", 24), ("visit scheduled", 12), ("screened", 8), ("enrolled", 5)]
    first, second = funnel_png("ALZ", steps), funnel_png("ALZ", steps)
    assert first == second
    assert first.startswith(PNG_MAGIC) and len(first) < 100_000
    assert conversion(80, 120) == "67%" and conversion(1, 0) == "–"


def test_an_upload_to_a_channel_without_the_bot_fails_for_good_without_retries(bot: Bot) -> None:
    from bot.outbox import upload_file
    from storage.models import OutboxMessage

    bot.standin.set_channel(CHANNEL, bot_member=False)
    with bot.db.session() as s:
        upload_file(bot.ctx, s, key="test:file:2", kind="weekly_chart", channel=CHANNEL,
                    filename="funnel.png", data=PNG_MAGIC + b"\x00" * 10, title="Funnel",
                    study_key="ALZ")
    bot.deliver()
    with bot.db.session() as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == "test:file:2")
                        ).one()
        assert (row.status, row.last_error) == ("failed", "not_in_channel")
    assert bot.standin.messages(CHANNEL) == []
    assert len(bot.standin.calls_to("files.completeUploadExternal")) == 1


def test_the_update_lists_items_past_sla_by_source_site_owner_and_reason(bot: Bot) -> None:
    from tests.leads_factory import LEAD_NAME, LEAD_PHONE, make_lead
    from tests.test_daily_digest import CASEY, SAM, stale_text

    wednesday = dt.datetime(2026, 11, 18, 15, 0, tzinfo=dt.UTC)
    make_lead(bot.ctx, "ALZ", wednesday, owner=SAM, source="web-ads", wait_reason="no_response")
    make_lead(bot.ctx, "ALZ", wednesday, owner=CASEY, source="web-ads")
    make_lead(bot.ctx, "ALZ", wednesday, source="physician")
    make_lead(bot.ctx, "ALZ", MONDAY_0900_NY - dt.timedelta(hours=1), source="web-ads")  # in time
    with time_machine.travel(MONDAY_0900_NY, tick=False):
        tick(bot)
    [update] = weekly_messages(bot)
    assert stale_text(update) == (
        "*Stale items (past SLA):* 3\n"
        "By stage: 3 first contact\n"
        "By source: 2 web-ads · 1 physician\n"
        "By site: 3 no site yet\n"
        f"By owner: <@{CASEY}> 1 · <@{SAM}> 1 · unassigned 1\n"
        "By reason: 2 not contacted yet · 1 no response\n"
        "Run `/prescreen queue ALZ`.")
    everything = str(bot.standin.messages())
    assert LEAD_NAME not in everything and LEAD_PHONE not in everything
