"""Story: the worker is killed at the worst instant — Slack has taken the referral card and the
worker never recorded it. After the lease another worker takes the row, finds the card in Slack
by the message metadata it carries, and adopts it instead of posting it again: the channel has
one card, and the approval updates that card as usual. The same holds for a DM sent by user id,
a thread reply, and a connection that breaks on the way back. A card that never reached Slack
is still posted, and a lookup that Slack refuses is tried again later, never guessed."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import create_engine, select, text

from bot import ids
from bot import outbox as outbox_api
from integrations.slack_outbox import METADATA_EVENT_TYPE, key_hash
from storage.models import OutboxMessage
from tests.conftest import BOT_TOKEN, ENCRYPTION_KEY, SIGNING_SECRET, Bot, is_postgres, phi_surface_env
from tests.test_log_prescreen_call import CASEY, LEE, NAME, PHI_STRINGS, new_candidate, submit

CHANNEL = "C0ALZ0001"
VICTIM = "outbox-victim"  # application_name of the killed worker's PostgreSQL sessions
AFTER_THE_LEASE = dt.timedelta(minutes=2)


# ----------------------------------------------------------------- what the people see


def log_pre_qualified_call(bot: Bot) -> None:
    """Casey logs a pre-qualified call: the card waits in the outbox for the worker."""
    view = bot.open_modal(CASEY)
    resp = submit(bot, CASEY, view, new_candidate())
    assert resp.status_code == 200 and "response_action" not in resp.text, resp.text


def cards(bot: Bot) -> list[dict[str, Any]]:
    return [m for m in bot.standin.messages(CHANNEL)
            if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]


def the_card(bot: Bot) -> dict[str, Any]:
    found = cards(bot)
    assert len(found) == 1, f"expected one card in the channel, found {len(found)}"
    return found[0]


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {el["action_id"]: el.get("value", "") for b in message.get("blocks") or []
            if b.get("type") == "actions" for el in b["elements"]}


def approve(bot: Bot) -> None:
    """Lee clicks Approve on the card as Slack shows it, then the worker delivers."""
    card = the_card(bot)
    before = len(bot.standin.responses)
    resp = bot.slack.click(LEE, ids.REFERRAL_APPROVE, buttons(card)[ids.REFERRAL_APPROVE],
                           message=card, channel_id=CHANNEL)
    assert resp.status_code == 200
    bot.standin.wait_for(lambda s: len(s.responses) > before, message="approval confirmed")
    bot.deliver()


def coordinator_dms(bot: Bot) -> list[dict[str, Any]]:
    return bot.standin.messages(bot.standin.dm_channel(CASEY))


def row(bot: Bot, kind: str) -> OutboxMessage:
    with bot.db.session() as s:
        found = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind,
                                                      OutboxMessage.method == "chat.postMessage")
                          ).one()
        s.expunge(found)
    return found


@contextmanager
def later(delta: dt.timedelta = AFTER_THE_LEASE) -> Iterator[None]:
    """Time moves on (the app's clock and Slack's alike)."""
    with time_machine.travel(dt.datetime.now(dt.UTC) + delta, tick=True):
        yield


# ----------------------------------------------------------------- a worker that gets killed


def worker_env(bot: Bot, tmp_path: Path) -> dict[str, str]:
    url = bot.ctx.settings.database_url
    if is_postgres():
        url += ("&" if "?" in url else "?") + f"application_name={VICTIM}"
    keep = {k: v for k, v in os.environ.items()
            if not k.upper().startswith(("SLACK_", "DATABASE_", "PRESCREEN_", "OUTBOX_"))}
    return {**keep, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": bot.standin.url, "DATABASE_URL": url,
            "PRESCREEN_ENCRYPTION_KEYS": ENCRYPTION_KEY, "DATA_DIR": str(tmp_path / "data"),
            "OUTBOX_CHANNEL_INTERVAL": "0", "LOG_LEVEL": "INFO",
            **phi_surface_env(bot.ctx.settings.phi_surface)}


def start_worker(bot: Bot, tmp_path: Path) -> subprocess.Popen[str]:
    """`prescreen-bot jobs run outbox` in its own process: what a worker does every few seconds."""
    return subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; raise SystemExit(main())",
         "jobs", "run", "outbox"],
        cwd=tmp_path, env=worker_env(bot, tmp_path), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def killed(proc: subprocess.Popen[str]) -> None:
    """Wait for the worker and check that it died by SIGKILL (it never finished its job)."""
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, f"worker was not killed: {out}\n{err}"


def kill_it(proc: subprocess.Popen[str]) -> Callable[[dict[str, Any]], None]:
    def hook(_args: dict[str, Any]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    return hook


def wait_for_victim_sessions_to_end(bot: Bot) -> None:
    """On PostgreSQL a killed client's sessions end when the server notices; wait for that."""
    if not is_postgres():
        return
    engine = create_engine(bot.ctx.settings.database_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                left = conn.scalar(text("SELECT count(*) FROM pg_stat_activity "
                                        "WHERE application_name = :n"), {"n": VICTIM})
            if not left:
                return
            time.sleep(0.05)
        raise AssertionError("the killed worker's database sessions did not end")
    finally:
        engine.dispose()


class OutboxLock:
    """Another session holds a write lock on the outbox: a worker's commit has to wait."""

    def __init__(self, bot: Bot) -> None:
        self.url = bot.ctx.settings.database_url
        self.taken = threading.Event()
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    def take(self, _args: dict[str, Any] | None = None) -> None:
        if is_postgres():
            engine = create_engine(self.url)
            conn = engine.connect()
            conn.begin()
            conn.exec_driver_sql("LOCK TABLE outbox_messages IN EXCLUSIVE MODE")
            self._pg = (engine, conn)
        else:
            self._sqlite = sqlite3.connect(self.url.split("///", 1)[1], isolation_level=None,
                                           check_same_thread=False)
            self._sqlite.execute("BEGIN IMMEDIATE")
        self.taken.set()

    def release(self) -> None:
        if self._pg is not None:
            engine, conn = self._pg
            conn.rollback()
            conn.close()
            engine.dispose()
        if self._sqlite is not None:
            self._sqlite.rollback()
            self._sqlite.close()

    def wait_until_worker_blocked(self, proc: subprocess.Popen[str]) -> None:
        """The worker has Slack's answer and waits for the lock to record it."""
        assert self.taken.wait(60), "the worker never posted"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if is_postgres():
                engine = create_engine(self.url)
                with engine.connect() as conn:
                    waiting = conn.scalar(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :n "
                        "AND wait_event_type = 'Lock'"), {"n": VICTIM})
                engine.dispose()
            else:  # SQLite has no sockets: none left means Slack's answer was read and closed
                waiting = not _holds_a_socket(proc.pid)
            if waiting:
                return
            time.sleep(0.02)
        raise AssertionError("the worker did not get to recording Slack's answer")


def _holds_a_socket(pid: int) -> bool:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith("socket:"):
                return True
        except FileNotFoundError:  # closed between the listing and the look
            continue
    return False


# ----------------------------------------------------------------- the stories


@pytest.mark.parametrize("instant", ["before Slack's answer arrives",
                                     "after the answer, before the commit"])
def test_a_worker_killed_at_the_worst_instant_leaves_one_card_that_updates_as_usual(
        bot: Bot, tmp_path: Path, instant: str) -> None:
    log_pre_qualified_call(bot)
    worker = start_worker(bot, tmp_path)
    if instant == "before Slack's answer arrives":
        bot.standin.intercept("chat.postMessage", kill_it(worker))
    else:
        lock = OutboxLock(bot)
        bot.standin.intercept("chat.postMessage", lock.take)
        try:
            lock.wait_until_worker_blocked(worker)
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
        finally:
            lock.release()
    killed(worker)
    wait_for_victim_sessions_to_end(bot)
    posted = the_card(bot)  # Slack has the card ...
    card_row = row(bot, "referral_card")
    assert (card_row.status, card_row.slack_ts) == ("sending", None)  # ... the worker never knew
    assert posted["metadata"] == {"event_type": METADATA_EVENT_TYPE, "event_payload": {
        "outbox_id": card_row.id, "key": key_hash(card_row.idempotency_key)}}

    with later():
        bot.deliver()  # the next worker, after the lease
        card = the_card(bot)
        assert card["ts"] == posted["ts"]
        assert ids.REFERRAL_APPROVE in buttons(card)
        card_row = row(bot, "referral_card")
        assert (card_row.status, card_row.slack_ts, card_row.posted_channel) == (
            "sent", posted["ts"], CHANNEL)
        [lookup] = bot.standin.calls_to("conversations.history")
        assert lookup.args["channel"] == CHANNEL
        assert lookup.args["include_all_metadata"] in ("1", "true", True)
        assert len(bot.standin.calls_to("chat.postMessage")) == 1

        approve(bot)
        card = the_card(bot)
        assert card["ts"] == posted["ts"] and "edited" in card
        assert ids.REFERRAL_APPROVE not in buttons(card)
        shown = str(card["blocks"])
        assert "Waiting for approval" not in shown
        assert f"Approved* by <@{LEE}>" in shown or "Sent to site" in shown
        assert any("approved" in m["text"] for m in bot.standin.thread(CHANNEL, card["ts"])
                   if m["ts"] != card["ts"])
    public = "\n".join(str(m) for m in bot.standin.messages())  # metadata included
    for phi in [*PHI_STRINGS, NAME]:
        assert phi not in public


def test_a_card_that_never_reached_slack_is_looked_for_then_posted(bot: Bot,
                                                                   tmp_path: Path) -> None:
    log_pre_qualified_call(bot)
    worker = start_worker(bot, tmp_path)
    bot.standin.intercept("chat.postMessage", kill_it(worker), carry_out=False)
    killed(worker)
    wait_for_victim_sessions_to_end(bot)
    assert cards(bot) == []
    with later():
        bot.deliver()
        card = the_card(bot)
        assert [c.method for c in bot.standin.calls
                if c.method in ("conversations.history", "chat.postMessage")] == [
            "conversations.history", "chat.postMessage"]
        assert row(bot, "referral_card").slack_ts == card["ts"]
        approve(bot)
        assert ids.REFERRAL_APPROVE not in buttons(the_card(bot))


@pytest.mark.parametrize("refusal", ["internal_error", "ratelimited", "not_in_channel"])
def test_a_lookup_slack_refuses_is_tried_again_later_never_posted_blindly(
        bot: Bot, tmp_path: Path, refusal: str) -> None:
    log_pre_qualified_call(bot)
    worker = start_worker(bot, tmp_path)
    bot.standin.intercept("chat.postMessage", kill_it(worker))
    killed(worker)
    wait_for_victim_sessions_to_end(bot)
    posted = the_card(bot)
    if refusal == "ratelimited":  # slack_sdk rides out two 429s itself; the third reaches us
        bot.standin.rate_limit("conversations.history", times=3, retry_after=1)
    else:
        bot.standin.fail_next("conversations.history", error=refusal, times=1)
    with later():
        outbox_api.dispatcher(bot.ctx).run_once()
        assert len(bot.standin.calls_to("chat.postMessage")) == 1  # not posted again
        card_row = row(bot, "referral_card")
        assert card_row.status == "pending" and card_row.slack_ts is None
        assert card_row.last_error == f"lookup: {refusal}"
        assert card_row.next_attempt_at > bot.ctx.clock.now()
        assert card_row.unconfirmed_since is not None
    with later(AFTER_THE_LEASE + dt.timedelta(minutes=10)):
        bot.deliver()
        assert the_card(bot)["ts"] == posted["ts"]
        assert row(bot, "referral_card").slack_ts == posted["ts"]
        assert len(bot.standin.calls_to("chat.postMessage")) == 1


def test_a_dm_by_user_id_is_looked_up_in_the_im_channel(bot: Bot, tmp_path: Path) -> None:
    log_pre_qualified_call(bot)
    bot.deliver()
    card = the_card(bot)
    resp = bot.slack.click(LEE, ids.REFERRAL_APPROVE, buttons(card)[ids.REFERRAL_APPROVE],
                           message=card, channel_id=CHANNEL)
    assert resp.status_code == 200
    bot.standin.wait_for(lambda s: s.responses, message="approval confirmed")
    dm_row = row(bot, "decision_dm")
    assert dm_row.channel == CASEY  # addressed by user id
    worker = start_worker(bot, tmp_path)
    bot.standin.intercept("chat.postMessage", kill_it(worker),
                          when=lambda args: args.get("channel") == CASEY)
    killed(worker)
    wait_for_victim_sessions_to_end(bot)
    im = bot.standin.dm_channel(CASEY)
    assert len(coordinator_dms(bot)) == 1
    with later():
        bot.deliver()
        dms = coordinator_dms(bot)
        assert len(dms) == 1 and "was approved by" in dms[0]["text"]
        dm_row = row(bot, "decision_dm")
        assert (dm_row.status, dm_row.slack_ts, dm_row.posted_channel) == ("sent", dms[0]["ts"], im)
        looked_in = [c.args["channel"] for c in bot.standin.calls_to("conversations.history")]
        assert im in looked_in and CASEY not in looked_in
        assert bot.standin.calls_to("conversations.open")[-1].args["users"] == CASEY


def test_a_thread_reply_is_looked_up_in_its_thread(bot: Bot, tmp_path: Path) -> None:
    log_pre_qualified_call(bot)
    bot.deliver()
    card = the_card(bot)
    resp = bot.slack.click(LEE, ids.REFERRAL_APPROVE, buttons(card)[ids.REFERRAL_APPROVE],
                           message=card, channel_id=CHANNEL)
    assert resp.status_code == 200
    bot.standin.wait_for(lambda s: s.responses, message="approval confirmed")
    worker = start_worker(bot, tmp_path)
    bot.standin.intercept("chat.postMessage", kill_it(worker),
                          when=lambda args: args.get("thread_ts") == card["ts"])
    killed(worker)
    wait_for_victim_sessions_to_end(bot)

    [reply] = [m for m in bot.standin.thread(CHANNEL, card["ts"]) if m["ts"] != card["ts"]]
    assert "approved" in reply["text"]

    def copies_of_reply() -> int:
        return sum(m["text"] == reply["text"] for m in bot.standin.thread(CHANNEL, card["ts"]))

    with later():
        bot.deliver()
        assert copies_of_reply() == 1
        [lookup] = bot.standin.calls_to("conversations.replies")
        assert (lookup.args["channel"], lookup.args["ts"]) == (CHANNEL, card["ts"])
        assert the_card(bot)["ts"] == card["ts"]
        assert ids.REFERRAL_APPROVE not in buttons(the_card(bot))


def test_a_connection_broken_after_slack_took_the_card_is_not_resent_blindly(bot: Bot) -> None:
    log_pre_qualified_call(bot)
    bot.standin.intercept("chat.postMessage", answer=False)
    outbox_api.dispatcher(bot.ctx).run_once()
    posted = the_card(bot)
    card_row = row(bot, "referral_card")
    assert card_row.status == "pending" and card_row.unconfirmed_since is not None
    with later():
        bot.deliver()
        assert the_card(bot)["ts"] == posted["ts"]
        assert len(bot.standin.calls_to("chat.postMessage")) == 1
        assert row(bot, "referral_card").slack_ts == posted["ts"]
        approve(bot)
        assert ids.REFERRAL_APPROVE not in buttons(the_card(bot))
