"""Story: a coordinator types `/prescreen calendar` and sees today's Outlook meetings (with Teams
links) and free slots; when a referral reaches "visit scheduled" the form offers the site's free
slots. Everything is read from the calendar cache that the `graph_sync` job fills."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import time_machine
from sqlalchemy import select

from app.scheduler import run_job
from bot import ids
from integrations.graph.auth import StaticTokenCredential
from integrations.graph.client import GraphClient
from sandbox.graph_standin import SANDBOX_TOKEN, GraphStandin, seed_demo
from storage.models import Referral
from storage.repositories import studies as study_repo
from tests.conftest import Bot
from tests.test_log_prescreen_call import CASEY, LEE, new_candidate, submit
from tests.test_referral_pipeline import CHANNEL, card

WORKDAY_NOON = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)  # a Tuesday, 10:00 in New York


@pytest.fixture
def graph(bot: Bot) -> Iterator[GraphStandin]:
    traveller = time_machine.travel(WORKDAY_NOON, tick=True)
    traveller.start()
    with bot.db.session() as s:
        study_repo.upsert_member(s, slack_user_id=CASEY, email="casey@example.org",
                                 timezone="America/New_York", display_name=None,
                                 mailbox="casey@example.org", roles={"ALZ": "coordinator"}, actor="t")
    standin = GraphStandin(static_tokens=[SANDBOX_TOKEN]).start()
    seed_demo(standin, {"casey@example.org": "America/New_York",
                        "bos-sched@example.org": "America/New_York"}, bot.ctx.clock.now())
    bot.ctx.graph = GraphClient(StaticTokenCredential(SANDBOX_TOKEN), base_url=standin.graph_url)
    yield standin
    bot.ctx.graph = None
    standin.stop()
    traveller.stop()


def test_calendar_before_and_after_the_sync(bot: Bot, graph: GraphStandin) -> None:
    body = bot.slack.slash_command(CASEY, text="calendar").json()
    assert body["response_type"] == "ephemeral"
    assert "hasn't been read yet" in str(body["blocks"])

    run_job(bot.ctx, "graph_sync")
    calls = bot.ctx.graph.stats.requests
    assert calls > 0
    body = bot.slack.slash_command(CASEY, text="calendar").json()
    text = str(body["blocks"])
    assert "Tue Nov 24" in text
    assert "Sponsor check-in" in text and "Join Teams meeting" in text
    assert "Protocol training" not in text  # cancelled
    assert "free" in text.lower()
    assert bot.ctx.graph.stats.requests == calls, "the slash command reads the cache, not Graph"


def test_people_without_a_study_get_a_clear_answer(bot: Bot, graph: GraphStandin) -> None:
    body = bot.slack.slash_command("U0STRANGER", text="calendar").json()
    assert body["text"].startswith(":warning:")


def test_visit_form_offers_the_sites_free_slots(bot: Bot, graph: GraphStandin) -> None:
    run_job(bot.ctx, "graph_sync")
    view = bot.open_modal(CASEY)
    submit(bot, CASEY, view, new_candidate())
    bot.deliver()
    value = next(el["value"] for b in card(bot)["blocks"] if b.get("type") == "actions"
                 for el in b["elements"] if el["action_id"] == ids.REFERRAL_APPROVE)
    bot.slack.click(LEE, ids.REFERRAL_APPROVE, value, message=card(bot), channel_id=CHANNEL)
    bot.standin.wait_for(lambda s: s.responses)
    bot.slack.slash_command(CASEY, text="referral ALZ-0001 site_contacted")
    bot.deliver()
    btn = next(el for b in card(bot)["blocks"] if b.get("type") == "actions"
               for el in b["elements"] if el["action_id"].endswith(":visit_scheduled"))
    bot.slack.click(CASEY, btn["action_id"], btn["value"], message=card(bot), channel_id=CHANNEL)
    form = bot.standin.wait_for(lambda s: s.open_view(CASEY), message="visit form")
    slot_block = next(b for b in form["blocks"] if b.get("block_id") == ids.VISIT_SLOT_BLOCK)
    options = slot_block["element"]["options"]
    assert options, "free slots are offered"
    first = options[0]["value"]
    assert bot.slack.submit(CASEY, form["id"], {ids.VISIT_SLOT_SELECT: first}).status_code == 200
    start = dt.datetime.strptime(first, "%Y-%m-%dT%H:%MZ").replace(tzinfo=dt.UTC)
    with bot.db.session() as s:
        ref = s.scalars(select(Referral)).one()
    assert ref.state == "visit_scheduled"
    assert ref.visit_date == start.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).date()


def test_callback_on_a_busy_block_is_flagged(bot: Bot, graph: GraphStandin) -> None:
    run_job(bot.ctx, "graph_sync")
    # the demo calendar has "Sponsor check-in" 11:00–11:30 New York time today (Tue Nov 24)
    view = bot.open_modal(CASEY)
    resp = submit(bot, CASEY, view, new_candidate(**{
        ids.REGION_INPUT: "NY", ids.OUTCOME_SELECT: "callback_requested",
        ids.CB_DATE_INPUT: dt.date(2026, 11, 24), ids.CB_TIME_INPUT: "11:10"}))
    assert resp.status_code == 200, resp.text
    summary = bot.standin.wait_for(lambda s: s.ephemerals(CASEY))[-1]
    assert "Sponsor check-in" in str(summary["blocks"]) and "Outlook" in str(summary["blocks"])
