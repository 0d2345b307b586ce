"""Story: the database fails in the middle of saving a form (the connection drops after the
candidate row was written, before the call or the audit event). The coordinator sees "Not saved
… ref …" under the form, which stays open with their entries; the log has the same ref with the
traceback and no patient identity; nothing of the half-done work is stored. Pressing the button
again once the database is back saves it once."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot import ids
from bot.logging_setup import QuietFormatter
from storage.db import Database
from storage.models import AuditEvent, Callback, Candidate, OutboxMessage, PrescreenCall, Referral
from tests.conftest import Bot
from tests.test_inbound_lead import PHI as LEAD_PHI
from tests.test_inbound_lead import SAM, lead
from tests.test_log_prescreen_call import CASEY, PHI_STRINGS, new_candidate, submit

STORED = (Candidate, PrescreenCall, Referral, Callback, AuditEvent, OutboxMessage)
NOTES = "Prefers mornings; daughter helps"  # the note new_candidate() fills in


@contextmanager
def connection_drops_on(db: Database, statement_start: str) -> Iterator[list[str]]:
    """The database connection dies just before the first statement that starts with
    `statement_start` reaches the server: the driver raises its own error, as when a database
    restarts or a network link drops mid-transaction. Yields the statements it broke."""
    broken: list[str] = []

    def drop(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if not broken and statement.lstrip().upper().startswith(statement_start.upper()):
            broken.append(statement)
            conn.connection.dbapi_connection.close()

    event.listen(db.engine, "before_cursor_execute", drop)
    try:
        yield broken
    finally:
        event.remove(db.engine, "before_cursor_execute", drop)


def counts(bot: Bot) -> dict[str, int]:
    with bot.db.session() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0 for m in STORED}


def not_saved(resp: Any, block: str) -> str:
    body = resp.json()
    assert body["response_action"] == "errors", body
    message: str = body["errors"][block]
    match = re.fullmatch(r"Not saved: something went wrong \(ref ([0-9a-f]{6})\)\. .+", message)
    assert match, message
    return match.group(1)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """The text a log file would get: the app's own format, message and traceback."""
    formatter = QuietFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records)


@pytest.mark.phi_surface("slack")  # the new candidate is entered in the modal
def test_a_call_the_database_drops_is_not_saved_and_says_so_with_a_ref(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    view = bot.open_modal(CASEY)
    before = counts(bot)
    with caplog.at_level(logging.INFO), connection_drops_on(bot.db, "INSERT INTO prescreen_calls") as broken:
        resp = submit(bot, CASEY, view, new_candidate())

    assert broken, "the fault was injected"
    ref = not_saved(resp, ids.OUTCOME_BLOCK)
    assert "press Log call again" in resp.json()["errors"][ids.OUTCOME_BLOCK]
    assert bot.standin.view(view["id"]) is not None, "the form stays open with the entries"
    assert counts(bot) == before, "the candidate written before the fault was rolled back"
    [record] = [r for r in caplog.records if ref in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info, "the ref leads to a traceback"
    text = logged(caplog)
    for phi in [*PHI_STRINGS, NOTES]:
        assert phi not in text, f"{phi!r} reached the log"
    assert "INSERT INTO prescreen_calls" in text, "the log says which statement failed"
    assert '"age": 67' not in text and "gAAAA" not in text, "but not its values (answers, ciphertext)"
    assert not bot.standin.ephemerals(CASEY) and not bot.standin.messages("C0ALZ0001")

    # the database is back: the same form, submitted again, is saved once
    again = submit(bot, CASEY, view, new_candidate())
    assert again.status_code == 200 and "errors" not in again.text, again.text
    after = counts(bot)
    assert (after["candidates"], after["prescreen_calls"], after["referrals"]) == (1, 1, 1)
    summary = bot.standin.wait_for(lambda s: s.ephemerals(CASEY), message="the summary")[-1]
    assert summary["text"].startswith("ALZ-0001 · attempt 1")


@pytest.mark.phi_surface("slack")  # the new candidate is entered in the modal
def test_a_lead_the_database_drops_is_not_saved_and_says_so_with_a_ref(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    view = bot.open_modal(SAM, "lead MDD", channel_id="C0MDD0001")
    before = counts(bot)
    with caplog.at_level(logging.INFO), connection_drops_on(bot.db, "INSERT INTO audit_events") as broken:
        resp = bot.slack.submit(SAM, view["id"], lead())

    assert broken, "the fault was injected"
    ref = not_saved(resp, ids.LEAD_PHONE_BLOCK)
    assert counts(bot) == before
    [record] = [r for r in caplog.records if ref in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info
    text = logged(caplog)
    for phi in LEAD_PHI:
        assert phi not in text, f"{phi!r} reached the log"
    assert not bot.standin.ephemerals(SAM)

    again = bot.slack.submit(SAM, view["id"], lead())
    assert again.status_code == 200 and "errors" not in again.text, again.text
    assert counts(bot)["candidates"] == 1
    confirmation = bot.standin.wait_for(lambda s: s.ephemerals(SAM), message="the confirmation")[-1]
    assert "MDD-0001 added" in confirmation["text"]


def test_a_traceback_in_the_log_never_carries_an_exception_message() -> None:
    """Whatever our code or a library puts in an exception's message (here a name and a phone
    number, as a careless error text would), the log keeps the type and the frames only; a
    database error keeps its SQL, whose values the engines hide."""
    from sqlalchemy.exc import IntegrityError

    def fails() -> None:
        try:
            raise ValueError("Ada Lovelace +16175550100")
        except ValueError as exc:
            raise IntegrityError("INSERT INTO candidates (name_enc) VALUES (?)", None, exc) from exc

    try:
        fails()
    except IntegrityError:
        record = logging.LogRecord("prescreen.test", logging.ERROR, __file__, 1, "failed ref=abc123",
                                   None, sys.exc_info())
    text = QuietFormatter("%(levelname)s %(message)s").format(record)
    assert "failed ref=abc123" in text and "in fails" in text
    assert "builtins.ValueError" in text and "INSERT INTO candidates" in text
    assert "Ada" not in text and "6175550100" not in text


@pytest.fixture
def clock(bot: Bot) -> Iterator[Any]:
    import time_machine

    from tests.test_callback_reminders import START

    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.mark.parametrize("form", ["reschedule", "hand off"])
def test_a_callback_form_the_database_drops_is_not_saved_and_says_so_under_the_form(
        bot: Bot, clock: Any, form: str) -> None:
    """The reminder's forms take the same path as every form: "Not saved … ref" inline."""
    import datetime as dt

    from tests.test_callback_reminders import DUE, at, callback, click, log_callback, reminders, tick

    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    button, block = ((ids.CALLBACK_RESCHEDULE, ids.RS_TIME_BLOCK) if form == "reschedule"
                     else (ids.CALLBACK_HANDOFF, ids.HANDOFF_BLOCK))
    click(bot, CASEY, button, reminders(bot)[0])
    view = bot.standin.wait_for(lambda s: s.open_view(CASEY))
    values = ({ids.RS_DATE_INPUT: dt.date(2026, 11, 25), ids.RS_TIME_INPUT: "10:00"}
              if form == "reschedule" else {ids.HANDOFF_SELECT: SAM})
    before = callback(bot)
    with connection_drops_on(bot.db, "UPDATE callbacks") as broken:
        resp = bot.slack.submit(CASEY, view["id"], values)
    assert broken, "the fault was injected"
    not_saved(resp, block)
    after = callback(bot)
    assert (after.due_at, after.owner_id, after.version) == (before.due_at, before.owner_id,
                                                             before.version)


def test_a_form_error_goes_under_the_field_it_names(bot: Bot, clock: Any) -> None:
    """By the error's field, never its wording: a time that has passed goes under the time."""
    import datetime as dt

    from tests.test_callback_reminders import DUE, at, click, log_callback, reminders, tick

    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    click(bot, CASEY, ids.CALLBACK_RESCHEDULE, reminders(bot)[0])
    view = bot.standin.wait_for(lambda s: s.open_view(CASEY))
    past = bot.slack.submit(CASEY, view["id"], {ids.RS_DATE_INPUT: dt.date(2026, 11, 1),
                                                ids.RS_TIME_INPUT: "10:00"}).json()
    assert list(past["errors"]) == [ids.RS_TIME_BLOCK] and "has passed" in past["errors"][
        ids.RS_TIME_BLOCK]
