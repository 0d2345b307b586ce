"""Story: a QA lead exports a study for the sponsor, and the hospital's security review checks
the file. Whatever a coordinator typed (a name, a note, a reject reason), no cell opens as a
formula in a spreadsheet: OWASP's CSV-injection rule puts an apostrophe before a cell starting
with = + - @ tab or carriage return (full-width forms and leading blanks included) and quotes
every cell. The file is readable by its owner only (0600) and is not replaced unless asked. An
export with patient identity needs `--reason`, and the audit trail keeps that reason with the
operating-system account and the host — which setting $USER cannot change."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import pwd
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from app import cli
from storage import audit
from storage.crypto import PHICipher
from storage.db import Database
from storage.models import (
    AuditEvent,
    Callback,
    Candidate,
    Member,
    PrescreenCall,
    Referral,
    ReferralEvent,
    Study,
)
from tests.conftest import ENCRYPTION_KEY

CIPHER = PHICipher([ENCRYPTION_KEY])
AT = dt.datetime(2026, 11, 3, 15, 0, tzinfo=dt.UTC)  # 10:00 in New York
FROM, TO = "2026-11-01", "2026-11-07"
HOSTILE = {
    "equals sign": '=HYPERLINK("http://x.example","Hi")',
    "plus sign": "+1+cmd|' /C calc'!A0",
    "minus sign": "-2+3+cmd|' /C calc'!A0",
    "at sign": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "carriage return": "\r=1+1",
    "full-width equals": "\uff1d1+1",
    "full-width plus": "\uff0b1+1",
    "full-width minus": "\uff0d1+1",
    "full-width at": "\uff20SUM(1)",
    "leading blanks": "   =1+1",
}
# what a spreadsheet reads as the start of a formula (checked independently of the app's list)
FORMULA = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
PHONE = "+16175550100"
# where each export shows what a coordinator typed (the audit export has no patient identity)
TYPED_COLUMNS = {"calls": ["name", "notes", "source"], "referrals": ["reason", "name", "notes"],
                 "callbacks": ["name"], "audit": ["actor", "reason"]}


def opens_as_formula(cell: str) -> bool:
    return cell.startswith(FORMULA) or cell.lstrip().startswith(FORMULA)


@pytest.fixture
def env(studies: Database, database_url: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Iterator[Database]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PRESCREEN_ENCRYPTION_KEYS", ENCRYPTION_KEY)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    old = os.umask(0o022)  # the usual default, under which files come out world-readable
    yield studies
    os.umask(old)


@pytest.fixture
def typed(env: Database) -> Database:
    """One candidate per hostile text, used as name, note, lead source, reject reason and in
    the audit trail; plus one ordinary candidate whose values must come out unchanged."""
    values = {"ordinary": "Ada O'Brien, a=b"} | HOSTILE
    with env.session() as s:
        study = s.scalars(select(Study).where(Study.key == "ALZ")).one()
        coord = s.scalars(select(Member).where(Member.slack_user_id == "U0COORD01")).one()
        for seq, text in enumerate(values.values(), start=1):
            c = Candidate(study_id=study.id, seq=seq, ref_code=f"ALZ-{seq:04d}",
                          name_enc=CIPHER.encrypt(text), phone_enc=CIPHER.encrypt(PHONE),
                          phone_index=CIPHER.index(PHONE), timezone="America/New_York",
                          source=text[:40], created_at=AT)
            s.add(c)
            s.flush()
            s.add(PrescreenCall(candidate_id=c.id, study_id=study.id, coordinator_id=coord.id,
                                attempt_no=1, outcome="pre_qualified", called_at=AT,
                                notes_enc=CIPHER.encrypt(text)))
            r = Referral(candidate_id=c.id, study_id=study.id, state="rejected", reason=text,
                         reason_note_enc=CIPHER.encrypt(text), created_at=AT)
            s.add(r)
            s.flush()
            s.add(ReferralEvent(referral_id=r.id, from_state="pending_approval",
                                to_state="rejected", actor="U0LEAD001", reason=text, at=AT))
            s.add(Callback(candidate_id=c.id, study_id=study.id, owner_id=coord.id, due_at=AT,
                           remind_at=AT, status="scheduled"))
            with time_machine.travel(AT, tick=False):  # the event's time is its writing time
                audit.record(s, actor=text[:64], action="referral.rejected", entity="referral",
                             entity_id=r.id, reason=text, after={"reason": text})
    return env


def export(tmp_path: Path, kind: str, *extra: str, name: str | None = None) -> tuple[int, Path]:
    out_file = tmp_path / (name or f"{kind}.csv")
    code = cli.main(["export", kind, "--study", "ALZ", "--from", FROM, "--to", TO,
                     "--out", str(out_file), *extra], out=io.StringIO())
    return code, out_file


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def phi_export_events(db: Database) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "export_phi")))


@pytest.mark.parametrize("kind", ["calls", "referrals", "callbacks", "audit"])
def test_no_cell_of_any_export_opens_as_a_formula(typed: Database, tmp_path: Path,
                                                  kind: str) -> None:
    extra = () if kind == "audit" else ("--include-phi", "--reason", "sponsor QA, ticket 7")
    code, path = export(tmp_path, kind, *extra)
    assert code == 0
    rows = rows_of(path)
    for row in rows:
        for column, cell in row.items():
            assert not opens_as_formula(cell), f"{kind}.{column} opens as a formula: {cell!r}"
    raw = path.read_bytes().decode("utf-8")  # as written: a carriage return stays one
    rows = [r for r in rows if kind != "audit" or r["action"] == "referral.rejected"]
    assert len(rows) == len(HOSTILE) + 1
    for column in TYPED_COLUMNS[kind]:
        found = {row[column] for row in rows}
        for label, text in HOSTILE.items():
            shown = "'" + text[:40 if column == "source" else 64 if column == "actor" else None]
            assert shown in found, f"{kind}.{column}: {label} is not shown as {shown!r}"
            quoted = '"' + shown.replace('"', '""') + '"'
            assert quoted in raw, f"{kind}.{column}: {label} is not between quotes"
        assert "Ada O'Brien, a=b"[:40] in found, "an ordinary value is changed"
    if kind in ("calls", "callbacks"):  # a phone number stays readable: one apostrophe in front
        assert {row["phone"] for row in rows} == {"'" + PHONE}


def test_the_lead_import_report_is_quoted_the_same_way(env: Database, tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("name,phone\nAda,\nBo,3125550102\n", encoding="utf-8")
    out = io.StringIO()
    code = cli.main(["leads", "import", str(leads), "--study", "MDD", "--source", "physician",
                     "--report", "report.csv"], out=out)
    assert code == 2
    with (tmp_path / "report.csv").open(newline="", encoding="utf-8") as fh:
        report = list(csv.reader(fh))
    assert report[0] == ["line", "result", "reason"] and report[1][0] == "2"
    assert (tmp_path / "report.csv").read_text().startswith('"line","result","reason"')


def test_export_files_are_readable_by_their_owner_only(typed: Database, tmp_path: Path) -> None:
    assert export(tmp_path, "calls")[0] == 0
    assert export(tmp_path, "callbacks", "--include-phi", "--reason", "sponsor QA")[0] == 0
    for name in ("calls.csv", "callbacks.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert not list(tmp_path.glob("*partial*"))


def test_an_existing_file_is_replaced_only_with_force(typed: Database, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "calls.csv"
    old.write_text("somebody else's file\n")
    old.chmod(0o644)
    code, _ = export(tmp_path, "calls", "--include-phi", "--reason", "sponsor QA")
    assert code == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert old.read_text() == "somebody else's file\n"
    assert not phi_export_events(typed)  # nothing exported, nothing to audit

    code, _ = export(tmp_path, "calls", "--include-phi", "--reason", "sponsor QA", "--force")
    assert code == 0
    assert len(rows_of(old)) == len(HOSTILE) + 1
    assert stat.S_IMODE(old.stat().st_mode) == 0o600  # a new file, not the old one's mode
    assert not list(tmp_path.glob("*partial*"))


@pytest.mark.parametrize("reason", [None, "", "   \t "])
def test_a_phi_export_without_a_reason_is_refused(typed: Database, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  reason: str | None) -> None:
    extra = () if reason is None else ("--reason", reason)
    code, path = export(tmp_path, "calls", "--include-phi", *extra)
    assert code == 2
    err = capsys.readouterr().err
    assert '--include-phi needs --reason "why"' in err
    assert not path.exists()
    assert not phi_export_events(typed)


def test_a_reason_is_one_short_line(typed: Database, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, path = export(tmp_path, "calls", "--include-phi", "--reason", "x" * 201)
    assert code == 2 and "keep it under 200" in capsys.readouterr().err
    assert not path.exists() and not phi_export_events(typed)


def test_a_reason_without_phi_is_refused_rather_than_ignored(
        typed: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, path = export(tmp_path, "calls", "--reason", "sponsor QA")
    assert code == 2 and "only for --include-phi" in capsys.readouterr().err
    assert not path.exists()


def test_the_audit_keeps_the_reason_the_os_account_and_the_host(
        typed: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "mallory")  # anyone can set these
    code, _ = export(tmp_path, "referrals", "--include-phi", "--reason",
                     "  sponsor audit,\n ticket 123 ")
    assert code == 0
    account = pwd.getpwuid(os.getuid()).pw_name
    (event,) = phi_export_events(typed)
    assert event.actor == f"cli:{account}@{socket.gethostname()}"[:64] and "mallory" not in event.actor
    assert event.reason == "sponsor audit, ticket 123"
    after = event.after or {}
    assert after["os_user"] == account and after["uid"] == os.getuid()
    assert after["host"] == socket.gethostname()
    assert after["kind"] == "referrals" and after["rows"] == len(HOSTILE) + 1
