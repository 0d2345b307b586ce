"""Story: QA exports a study's calls, referrals, callbacks and audit trail to CSV for the
sponsor: `prescreen-bot export calls --study ALZ --from 2026-10-25 --to 2026-11-08 --out
calls.csv`. Patients appear only as ref codes; `--include-phi` adds name, phone, dob and notes
and leaves an `export_phi` entry in the audit log (who, what, how many rows — no patient data).
The rows add up to the same figures as the KPIs. Bad input exits with 2 and writes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from app import cli
from bot import kpis
from storage.db import Database
from storage.models import AuditEvent
from tests.conftest import ENCRYPTION_KEY
from tests.test_kpis import NY, generate, make_ctx

FROM, TO = "2026-10-25", "2026-11-08"
EXPORTED_AT = dt.datetime(2026, 11, 9, 15, 0, tzinfo=dt.UTC)  # Monday 10:00 in New York


@pytest.fixture
def env(studies: Database, database_url: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Database:
    generate(studies)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PRESCREEN_ENCRYPTION_KEYS", ENCRYPTION_KEY)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    return studies


def export(tmp_path: Path, kind: str, *extra: str, dates: tuple[str, str] = (FROM, TO),
           name: str | None = None) -> tuple[int, Path, str]:
    out_file = tmp_path / (name or f"{kind}.csv")
    out = io.StringIO()
    code = cli.main(["export", kind, "--study", "ALZ", "--from", dates[0], "--to", dates[1],
                     "--out", str(out_file), *extra], out=out)
    return code, out_file, out.getvalue()


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def period() -> kpis.Period:
    return kpis.range_period(dt.date.fromisoformat(FROM), dt.date.fromisoformat(TO), NY)


def test_calls_csv_has_ref_codes_only_and_adds_up_to_the_kpis(env: Database, tmp_path: Path) -> None:
    code, path, msg = export(tmp_path, "calls")
    assert code == 0, msg
    cols, rows = read(path)
    assert cols == ["call_id", "called_at_utc", "called_at_local", "ref_code", "coordinator",
                    "attempt", "outcome", "reached", "eligible", "failed_criteria", "source"]
    k = kpis.study_kpis(make_ctx(env), "ALZ", period())
    assert len(rows) == k.calls > 0 and f"{k.calls} calls rows of ALZ" in msg
    assert sum(r["reached"] == "true" for r in rows) == k.reached
    assert sum(r["outcome"] == "pre_qualified" for r in rows) == k.prequalified
    assert all(r["ref_code"].startswith("ALZ-") for r in rows)
    text = path.read_text()
    assert "Patient Name" not in text and "+1617555" not in text and "secret note" not in text
    assert not list(tmp_path.glob("*.partial"))
    with env.session() as s:
        assert not s.scalars(select(AuditEvent).where(AuditEvent.action == "export_phi")).all()


def test_referrals_and_callbacks_csv_match_the_kpis(env: Database, tmp_path: Path) -> None:
    k = kpis.study_kpis(make_ctx(env), "ALZ", period())
    assert export(tmp_path, "referrals")[0] == 0
    cols, rows = read(tmp_path / "referrals.csv")
    assert "to_state" in cols and "name" not in cols and "notes" not in cols
    assert Counter(r["to_state"] for r in rows) == Counter(k.referrals)
    assert export(tmp_path, "callbacks")[0] == 0
    cols, rows = read(tmp_path / "callbacks.csv")
    assert cols[:4] == ["callback_id", "due_at_utc", "due_at_local", "ref_code"] and "phone" not in cols
    due = [r for r in rows if r["status"] != "cancelled"]
    assert len(due) == k.callbacks_due
    settled = [r for r in due if r["on_time"]]
    assert k.callbacks_on_time_pct == round(
        100 * sum(r["on_time"] == "true" for r in settled) / len(settled), 1)


@time_machine.travel(EXPORTED_AT, tick=True)
def test_include_phi_adds_identity_and_is_audited(env: Database, tmp_path: Path) -> None:
    code, path, msg = export(tmp_path, "calls", "--include-phi", "--reason", "sponsor QA")
    assert code == 0, msg
    assert "with patient identity (audited)" in msg
    cols, rows = read(path)
    assert cols[-4:] == ["name", "phone", "dob", "notes"]
    assert all(r["name"].startswith("Patient Name") and r["phone"].startswith("'+1617555")
               for r in rows)  # the apostrophe keeps a spreadsheet from reading a formula
    assert any(r["notes"].startswith("secret note") for r in rows)
    with env.session() as s:
        (ev,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "export_phi")).all()
        assert ev.actor.startswith("cli") and ev.entity == "export" and ev.entity_id == "ALZ"
        assert ev.after is not None
        assert ev.after["rows"] == len(rows) and ev.after["kind"] == "calls"
        assert ev.after["phi_columns"] == ["name", "phone", "dob", "notes"]
        blob = json.dumps(ev.after)
        assert "Patient Name" not in blob and "+1617555" not in blob
    # the audit export shows the PHI export (the day it was made), without PHI itself
    code, path, _ = export(tmp_path, "audit", dates=("2026-11-09", "2026-11-09"))
    assert code == 0
    cols, rows = read(path)
    assert cols == ["at_utc", "actor", "action", "entity", "entity_id", "reason", "before", "after",
                    "seq", "prev_hash", "hash"]  # each row can be checked against `audit verify`
    assert [r["action"] for r in rows if r["entity"] == "export"] == ["export_phi"]
    assert "Patient Name" not in path.read_text()


@pytest.mark.parametrize("dates, message", [
    (("2026-11-31", TO), "YYYY-MM-DD"),
    (("yesterday", TO), "YYYY-MM-DD"),
    ((TO, FROM), "before --from"),
])
def test_bad_dates_exit_2_and_write_nothing(env: Database, tmp_path: Path, dates: tuple[str, str],
                                            message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, path, _ = export(tmp_path, "calls", "--include-phi", dates=dates)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not path.exists()
    with env.session() as s:
        assert not s.scalars(select(AuditEvent).where(AuditEvent.action == "export_phi")).all()


def test_unknown_study_or_kind_exit_2(env: Database, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.csv"
    assert cli.main(["export", "calls", "--study", "NOPE", "--from", FROM, "--to", TO,
                     "--out", str(out)], out=io.StringIO()) == 2
    assert "no study 'NOPE'" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit) as exc:
        cli.main(["export", "patients", "--study", "ALZ", "--from", FROM, "--to", TO,
                  "--out", str(out)])
    assert exc.value.code == 2
