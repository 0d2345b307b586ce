"""Story: CI runs the suite as if the wall clock read a given instant (`pytest --now …` or
PRESCREEN_TEST_NOW), so a test that reads the real date or hour shows up before the day it
would fail. The whole session moves, child processes included; a test's own clock still wins;
the sandbox's clock can start at a chosen instant."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine

from bot.clock import OffsetClock
from tests.conftest import NOW_ENV, parse_instant, python_argv

ROOT = Path(__file__).resolve().parent.parent
SUNDAY_EVENING_DENVER = "2026-12-06T23:30:00-07:00"

INNER_TEST = '''
import datetime as dt, subprocess, time
from tests.conftest import python_argv

def test_the_clock_reads_the_instant():
    want = dt.datetime(2026, 12, 7, 6, 30, tzinfo=dt.UTC)
    assert dt.timedelta(0) <= dt.datetime.now(dt.UTC) - want < dt.timedelta(minutes=2)
    assert dt.datetime.now().strftime("%a %H") == "Sun 23"  # local time, TZ=America/Denver
    child = subprocess.run(python_argv("-c", "import time; print(time.time())"),
                           capture_output=True, text=True, check=True)
    assert 0 <= float(child.stdout) - want.timestamp() < 120
'''


def run_inner(tmp_path: Path, *args: str,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    base = {k: v for k, v in os.environ.items() if k != NOW_ENV}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py"), *args],
        cwd=ROOT, env={**base, "TZ": "America/Denver", **(env or {})},
        capture_output=True, text=True, timeout=120)


def test_now_option_runs_the_session_and_its_children_at_that_instant(tmp_path: Path) -> None:
    res = run_inner(tmp_path, "--now", SUNDAY_EVENING_DENVER)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 passed" in res.stdout


def test_the_environment_variable_does_the_same(tmp_path: Path) -> None:
    res = run_inner(tmp_path, env={NOW_ENV: SUNDAY_EVENING_DENVER})
    assert res.returncode == 0, res.stdout + res.stderr


def test_without_it_the_session_reads_the_real_clock(tmp_path: Path) -> None:
    hatch = time_machine.escape_hatch
    real = hatch.datetime.datetime.now(dt.UTC) if hatch.is_travelling() else dt.datetime.now(dt.UTC)
    res = run_inner(tmp_path)
    if abs(real - parse_instant(SUNDAY_EVENING_DENVER)) > dt.timedelta(minutes=5):
        assert res.returncode == 1 and "1 failed" in res.stdout, res.stdout + res.stderr


@pytest.mark.parametrize("text", ["2026-12-06T23:30:00", "yesterday", ""])
def test_an_instant_needs_a_date_time_and_an_offset(text: str) -> None:
    with pytest.raises(pytest.UsageError):
        parse_instant(text)


def test_a_child_process_shares_a_tests_own_clock() -> None:
    with time_machine.travel(dt.datetime(2026, 3, 8, 6, 59, tzinfo=dt.UTC), tick=False):
        argv = python_argv("-c", "import datetime as d; print(d.datetime.now(d.UTC).isoformat())")
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    child = dt.datetime.fromisoformat(out.strip())
    assert dt.timedelta(0) <= child - dt.datetime(2026, 3, 8, 6, 59, tzinfo=dt.UTC) < dt.timedelta(minutes=1)


def test_the_sandbox_clock_can_start_at_a_chosen_instant() -> None:
    start = dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.UTC)
    clock = OffsetClock(start=start)
    assert dt.timedelta(0) <= clock.now() - start < dt.timedelta(seconds=5)
    clock.advance(dt.timedelta(minutes=15))
    assert dt.timedelta(minutes=15) <= clock.now() - start < dt.timedelta(minutes=15, seconds=5)
    clock.reset()
    assert clock.now() - start < dt.timedelta(seconds=5)
    with pytest.raises(ValueError):
        OffsetClock(start=dt.datetime(2026, 11, 23, 12, 30))
