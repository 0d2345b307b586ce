"""Story: Slack (and only Slack) can talk to the bot. A coordinator types `/prescreen help` and
gets the command list at once; a forged, replayed or unsigned request is refused untouched."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import Bot

ACK_BUDGET_S = 3.0


def test_help_answers_ephemerally_within_the_ack_budget(bot: Bot) -> None:
    started = time.monotonic()
    resp = bot.slack.slash_command("U0COORD01", text="help", channel_id="C0ALZ0001")
    elapsed = time.monotonic() - started

    assert resp.status_code == 200
    assert elapsed < ACK_BUDGET_S
    body = resp.json()
    assert body["response_type"] == "ephemeral"
    help_text = " ".join(b.get("text", {}).get("text", "") for b in body["blocks"])
    assert "/prescreen help" in help_text


def test_unknown_subcommand_explains_and_lists_commands(bot: Bot) -> None:
    resp = bot.slack.slash_command("U0COORD01", text="frobnicate", channel_id="C0ALZ0001")
    body = resp.json()
    text = " ".join(b.get("text", {}).get("text", "") for b in body["blocks"])
    assert "frobnicate" in text
    assert "/prescreen help" in text


def _raw_post(bot: Bot, headers: dict[str, str], body: str) -> requests.Response:
    return requests.post(bot.url + "/slack/events", data=body.encode(), headers=headers, timeout=5)


@pytest.mark.parametrize("tamper", ["wrong_signature", "stale_timestamp", "missing_headers"])
def test_bad_signatures_are_refused_and_nothing_happens(bot: Bot, tamper: str) -> None:
    calls_before = len(bot.standin.calls)
    kwargs = {
        "wrong_signature": {"signing_secret": "not-the-secret"},
        "stale_timestamp": {"timestamp": int(time.time()) - 6 * 60},
        "missing_headers": {"unsigned": True},
    }[tamper]
    resp = bot.slack.slash_command("U0COORD01", text="help", channel_id="C0ALZ0001", **kwargs)

    assert resp.status_code == 401
    assert "prescreen-bot commands" not in resp.text
    time.sleep(0.2)  # anything processed would have called Slack by now
    assert len(bot.standin.calls) == calls_before


def test_unknown_paths_and_methods(bot: Bot) -> None:
    assert requests.get(bot.url + "/nope", timeout=5).status_code == 404
    assert requests.get(bot.url + "/slack/events", timeout=5).status_code == 405
