"""Story: a coordinator may only promise a callback inside the candidate's permitted calling
window — federal 08:00–21:00 candidate time, the study's own window, and stricter state rules
(Florida 08:00–20:00 and at most 3 calls in 24 hours; no Sunday calls where state law says so),
kept as data. A time outside is refused inline with the nearest allowed times, and daylight-saving
days are read the same way every time and explained."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from bot import ids
from bot.callbacks import windows
from storage.models import Callback, Study
from tests.conftest import Bot
from tests.test_log_prescreen_call import CASEY, new_candidate, submit

NY = "America/New_York"
NOW = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)  # Monday 09:00 in New York


class FixedClock:
    def __init__(self, now: dt.datetime) -> None:
        self._now = now

    def now(self) -> dt.datetime:
        return self._now


def ctx(now: dt.datetime = NOW) -> Any:
    return SimpleNamespace(clock=FixedClock(now))


def study(start: str | None = None, end: str | None = None) -> Study:
    return Study(key="ALZ", title="t", channel_id="C0", timezone=NY, calling_window_start=start,
                 calling_window_end=end)


def local(y: int, m: int, d: int, hh: int, mm: int = 0, tz: str = NY) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=ZoneInfo(tz))


def problem(due: dt.datetime, *, region: str | None = None, s: Study | None = None,
            calls: list[dt.datetime] | None = None, tz: str = NY) -> str | None:
    return windows.window_problem(ctx(), study=s or study(), candidate=None, tz_name=tz,
                                  due_at=due.astimezone(dt.UTC), region=region, calls_at=calls)


def test_default_window_is_eight_to_nine_candidate_time() -> None:
    assert problem(local(2026, 11, 24, 8, 0)) is None
    assert problem(local(2026, 11, 24, 20, 59)) is None
    late = problem(local(2026, 11, 24, 21, 0))
    assert late == ("Tue 21:00 is outside calling hours for this candidate: 08:00–21:00 their time. "
                    "Nearest allowed: Tue 20:45 or Wed 08:00.")
    early = problem(local(2026, 11, 24, 7, 30))
    assert early is not None and "Nearest allowed: Mon 20:45 or Tue 08:00." in early


def test_the_window_is_the_candidates_not_the_coordinators() -> None:
    # 10:30 in New York is 07:30 in Los Angeles: too early for a Californian
    due = local(2026, 11, 24, 10, 30)
    assert problem(due, tz="America/Los_Angeles") is not None
    assert problem(due, tz=NY) is None


def test_a_study_window_narrows_the_hours_but_never_widens_them() -> None:
    assert problem(local(2026, 11, 24, 9, 30), s=study("10:00", "18:00")) is not None
    assert problem(local(2026, 11, 24, 17, 59), s=study("10:00", "18:00")) is None
    assert problem(local(2026, 11, 24, 7, 0), s=study("06:00", "23:00")) is not None  # federal still applies
    assert problem(local(2026, 11, 24, 22, 0), s=study("06:00", "23:00")) is not None


def test_florida_ends_at_eight_and_allows_three_calls_a_day() -> None:
    msg = problem(local(2026, 11, 24, 20, 30), region="FL")
    assert msg is not None and "(Florida rules): 08:00–20:00" in msg
    assert "Nearest allowed: Tue 19:45 or Wed 08:00." in msg
    due = local(2026, 11, 24, 15, 0)
    two = [due - dt.timedelta(hours=h) for h in (5, 3)]
    assert problem(due, region="FL", calls=two) is None
    three = [*two, due - dt.timedelta(hours=23)]
    msg = problem(due, region="FL", calls=three)
    assert msg is not None and "call 4 in 24 hours" in msg and "at most 3" in msg
    # the oldest of the three drops out of the 24 hours at Tue 16:00
    assert msg.endswith("Earliest: Tue 16:00.")
    # calls more than 24 hours before do not count; other states have no limit
    assert problem(due, region="FL", calls=[*two, due - dt.timedelta(hours=25)]) is None
    assert problem(due, region="MA", calls=three * 3) is None


def test_no_sunday_calls_where_state_law_says_so() -> None:
    sunday = local(2026, 11, 29, 14, 0, tz="America/Chicago")
    msg = problem(sunday, region="LA", tz="America/Chicago")
    assert msg is not None and "no calls on Sundays" in msg
    assert "Sat 19:45 or Mon 08:00" in msg
    assert problem(sunday, region="IL", tz="America/Chicago") is None
    # Texas: Sundays only from noon
    assert problem(local(2026, 11, 29, 11, 0, tz="America/Chicago"), region="TX", tz="America/Chicago")
    assert problem(local(2026, 11, 29, 12, 30, tz="America/Chicago"), region="TX",
                   tz="America/Chicago") is None


def test_rules_are_data_with_a_source_for_each_state() -> None:
    rules = windows._rules()
    assert rules["federal"]["start"] == "08:00" and rules["federal"]["end"] == "21:00"
    assert rules["states"]["FL"]["max_calls_24h"] == 3
    assert all(spec.get("source") for spec in rules["states"].values())


def test_next_allowed_is_stable_across_daylight_saving_changes() -> None:
    rule = windows.rule_for(None, None)
    # the night clocks spring forward (Sun 8 Mar 2026, 02:00 → 03:00): the next allowed is 08:00 EDT
    after = windows.next_allowed(rule, NY, local(2026, 3, 8, 1, 0).astimezone(dt.UTC))
    assert after == dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC)
    # the night clocks fall back (Sun 1 Nov 2026): 08:00 EST
    after = windows.next_allowed(rule, NY, local(2026, 11, 1, 1, 30).astimezone(dt.UTC))
    assert after == dt.datetime(2026, 11, 1, 13, 0, tzinfo=dt.UTC)


# ----- through the app -----

@pytest.fixture
def monday(bot: Bot) -> Iterator[Any]:
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def _submit(bot: Bot, day: dt.date, hhmm: str, **fields: Any) -> Any:
    values = new_candidate(**{ids.OUTCOME_SELECT: "callback_requested", ids.CB_DATE_INPUT: day,
                              ids.CB_TIME_INPUT: hhmm, **fields})
    return submit(bot, CASEY, bot.open_modal(CASEY), values)


def test_modal_refuses_a_florida_evening_callback_inline(bot: Bot, monday: Any) -> None:
    resp = _submit(bot, dt.date(2026, 11, 24), "20:30", **{ids.REGION_INPUT: "FL"})
    error = resp.json()["errors"][ids.CB_TIME_BLOCK]
    assert "outside calling hours" in error and "Florida" in error and "Tue 19:45 or Wed 08:00" in error
    with bot.db.session() as s:
        assert s.scalars(select(Callback)).all() == []
    resp = _submit(bot, dt.date(2026, 11, 24), "19:30", **{ids.REGION_INPUT: "FL"})
    assert resp.status_code == 200 and "response_action" not in resp.text


def test_spring_forward_and_fall_back_callbacks_are_read_one_way_and_explained(bot: Bot, monday: Any) -> None:
    # 2027-03-14: 02:30 does not exist in New York; it is read as 03:30 and refused with that time
    resp = _submit(bot, dt.date(2027, 3, 14), "02:30")
    error = resp.json()["errors"][ids.CB_TIME_BLOCK]
    assert "02:30 does not exist that day" in error and "Sun 03:30 is outside calling hours" in error
    # 2026-11-01 is in the past here; a fall-back day a year on: 2027-11-07 01:30 happens twice
    resp = _submit(bot, dt.date(2027, 11, 7), "01:30")
    error = resp.json()["errors"][ids.CB_TIME_BLOCK]
    assert "happens twice" in error and "outside calling hours" in error
    # inside the window on the spring-forward day: 09:00 EDT is 13:00 UTC, not 14:00
    resp = _submit(bot, dt.date(2027, 3, 14), "09:00")
    assert resp.status_code == 200 and "response_action" not in resp.text
    with bot.db.session() as s:
        cb = s.scalars(select(Callback)).one()
    assert cb.due_at == dt.datetime(2027, 3, 14, 13, 0, tzinfo=dt.UTC)
    assert cb.remind_at == dt.datetime(2027, 3, 14, 12, 50, tzinfo=dt.UTC)
