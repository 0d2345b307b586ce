"""Story: an admin imports studies and members from a YAML file. A good file is applied (and can
be re-applied without duplicates); a bad file is refused with every problem named by study key
and field, exit code 2, and nothing written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from app import cli
from storage.db import Database
from storage.models import AuditEvent, Member, Membership, Question, Site, Study
from tests.conftest import FIXTURES

GOOD = FIXTURES / "studies.yaml"


def counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {
            m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Study, Site, Question, Member, Membership, AuditEvent)
        }


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def test_import_then_reimport_updates_without_duplicates(env: None, db: Database) -> None:
    code, out = run("studies", "import", str(GOOD))
    assert code == 0, out
    assert "created ALZ, MDD" in out
    first = counts(db)
    assert first["studies"] == 2 and first["sites"] == 2 and first["questions"] == 4
    assert first["members"] == 4 and first["memberships"] == 5

    data = yaml.safe_load(GOOD.read_text())
    data["studies"][0]["title"] = "Early AD prevention (v2)"
    data["studies"][0]["questions"][0]["eligible"] = {"min": 60, "max": 80}
    data["members"][1]["roles"] = {"MDD": "approver"}
    changed = GOOD.parent.parent / "tmp_changed.yaml"
    try:
        changed.write_text(yaml.safe_dump(data))
        code, out = run("studies", "import", str(changed))
    finally:
        changed.unlink()
    assert code == 0
    assert "updated ALZ, MDD" in out
    again = counts(db)
    for table in ("studies", "sites", "questions", "members"):
        assert again[table] == first[table], table
    assert again["memberships"] == 4  # sam lost ALZ, MDD role changed
    assert again["audit_events"] > first["audit_events"]  # every import is on the record
    with db.session() as s:
        alz = s.scalars(select(Study).where(Study.key == "ALZ")).one()
        assert alz.title == "Early AD prevention (v2)"
        age = s.scalars(select(Question).where(Question.study_id == alz.id,
                                               Question.qid == "age")).one()
        assert age.rule == {"min": 60, "max": 80}


def test_list_shows_studies_sites_questions_and_members(env: None) -> None:
    assert run("studies", "import", str(GOOD))[0] == 0
    code, out = run("studies", "list")
    assert code == 0
    assert "ALZ  Early Alzheimer's prevention" in out
    assert "BOS Boston Memory Clinic" in out
    assert "age (number), dx (yes_no), region (choice)" in out
    assert "approver: U0LEAD001" in out


def _mutate(path: Path, fn) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(GOOD.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data))
    return path


BAD_CASES = {
    "unknown question kind": (
        lambda d: d["studies"][0]["questions"][0].update(kind="slider"),
        "study ALZ: questions.age.kind: unknown question kind 'slider'",
    ),
    "bad timezone": (
        lambda d: d["studies"][1].update(timezone="America/Springfield"),
        "study MDD: timezone: 'America/Springfield' is not an IANA timezone",
    ),
    "duplicate site key": (
        lambda d: d["studies"][0]["sites"].append(dict(d["studies"][0]["sites"][0])),
        "study ALZ: sites[1].key: duplicate site key 'BOS'",
    ),
    "duplicate question id": (
        lambda d: d["studies"][0]["questions"].append(dict(d["studies"][0]["questions"][1])),
        "study ALZ: questions.dx.id: duplicate question id 'dx'",
    ),
    "rule that does not fit the kind": (
        lambda d: d["studies"][0]["questions"][1].update(eligible={"min": 3}),
        "study ALZ: questions.dx.eligible: min not valid for a yes_no question",
    ),
    "choice rule outside options": (
        lambda d: d["studies"][0]["questions"][2].update(eligible={"in": ["XX"]}),
        "study ALZ: questions.region.eligible.in: lists values that are not options",
    ),
    "bad channel id": (
        lambda d: d["studies"][0].update(channel="#alz"),
        "study ALZ: channel: must be a Slack channel id",
    ),
    "bad digest time": (
        lambda d: d["studies"][0].update(digest_time="8.30"),
        "study ALZ: digest_time: must be HH:MM",
    ),
    "duplicate study key": (
        lambda d: d["studies"].append(dict(d["studies"][0])),
        "study ALZ: key: duplicate study key 'ALZ'",
    ),
    "member role in unknown study": (
        lambda d: d["members"][0].update(roles={"XYZ": "coordinator"}),
        "member U0COORD01: roles.XYZ: unknown study 'XYZ'",
    ),
    "unknown role": (
        lambda d: d["members"][0].update(roles={"ALZ": "boss"}),
        "member U0COORD01: roles.ALZ: role must be one of",
    ),
    "missing title": (
        lambda d: d["studies"][1].pop("title"),
        "study MDD: title: is required",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_invalid_file_exits_2_names_the_problem_and_writes_nothing(
    env: None, db: Database, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("studies", "import", str(GOOD))[0] == 0
    before = counts(db)
    mutate, expected = BAD_CASES[case]
    bad = _mutate(tmp_path / "bad.yaml", mutate)
    capsys.readouterr()

    code, _ = run("studies", "import", str(bad))

    err = capsys.readouterr().err
    assert code == 2
    assert "nothing was changed" in err
    assert expected in err
    assert counts(db) == before


def test_unreadable_and_malformed_files(env: None, db: Database, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert run("studies", "import", str(missing))[0] == 2
    assert "file not found" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("studies:\n  - key: ALZ\n    title: [unclosed\n")
    assert run("studies", "import", str(broken))[0] == 2
    assert "not valid YAML at line" in capsys.readouterr().err
    assert counts(db)["studies"] == 0


def test_cadence_is_checked() -> None:
    from bot.studies.importer import validate

    doc = {"studies": [{"key": "ALZ", "title": "t", "channel": "C0ALZ0001", "timezone": "America/New_York",
                        "cadence": {"times": ["25:00"], "gap_business_days": 0}}], "members": []}
    errors = " ".join(validate(doc, set()))
    assert "study ALZ: cadence.times: one to six times" in errors
    assert "study ALZ: cadence.gap_business_days: a whole number from 1 to 10" in errors
    doc["studies"][0]["cadence"] = {"times": ["09:30", "17:00"], "gap_business_days": 2}
    assert not [e for e in validate(doc, set()) if "cadence" in e]


def test_weekly_update_options_are_checked() -> None:
    from bot.studies.importer import validate

    doc: dict = {"studies": [{"key": "ALZ", "title": "t", "channel": "C0ALZ0001",
                                        "timezone": "America/New_York",
                                        "weekly_update": {"day": "funday", "time": "9am",
                                                          "channel": "#alz"}}], "members": []}
    errors = validate(doc, set())
    assert "study ALZ: weekly_update.day: one of mon, tue, wed, thu, fri, sat, sun" in errors
    assert 'study ALZ: weekly_update.time: must be HH:MM in quotes, like "09:00"' in errors
    assert ("study ALZ: weekly_update.channel: must be a Slack channel id like C0123ABCD"
            in errors)
    doc["studies"][0]["weekly_update"] = {"when": "monday"}
    assert [e for e in validate(doc, set()) if "weekly_update" in e] == [
        'study ALZ: weekly_update: use day (mon…sun), time ("HH:MM") and channel (a channel id); '
        "all optional"]
    doc["studies"][0]["weekly_update"] = {"day": "fri", "time": "16:30", "channel": "C0SPONSOR"}
    assert not [e for e in validate(doc, set()) if "weekly_update" in e]


def test_approval_settings_are_checked() -> None:
    from bot.studies.importer import validate

    doc: dict = {"studies": [{"key": "ALZ", "title": "t", "channel": "C0ALZ0001",
                              "timezone": "America/New_York", "approval_signature": "yes",
                              "signature_meaning": "", "approvals_needed": 3,
                              "approval_sla_hours": 0}], "members": []}
    errors = validate(doc, set())
    assert "study ALZ: approval_signature: must be required or none" in errors
    assert any(e.startswith("study ALZ: signature_meaning: must be text") for e in errors)
    assert "study ALZ: approvals_needed: must be 1 or 2" in errors
    assert "study ALZ: approval_sla_hours: must be a whole number of hours from 1 to 720" in errors
    doc["studies"][0].update(approval_signature="required", approvals_needed=2,
                             signature_meaning="Approved as sub-investigator",
                             approval_sla_hours=8)
    assert validate(doc, set()) == []
