"""Story: a coordinator imports a file of leads from an ad campaign or pre-screener. New leads
become candidates in needs_call, duplicates are skipped, bad rows are listed by line, and a bad
file changes nothing unless --skip-invalid."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app import cli
from app.factory import create_context
from bot.config import Settings
from bot.context import AppContext
from bot.leads.intake import ImportResult, LeadFileError, import_leads
from storage import audit
from storage.db import Database
from storage.models import AuditEvent, Candidate
from tests.conftest import ENCRYPTION_KEY

GENERIC = ["name", "phone", "dob", "state", "zip", "email", "consent"]
WEB_ADS = ["Full Name", "Phone", "DOB", "State", "Zip", "Email", "Consent"]


@pytest.fixture
def ctx(settings: Settings, studies: Database) -> AppContext:
    return create_context(settings, db=studies)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def candidates(db: Database, study_key: str = "MDD") -> list[Candidate]:
    with db.session() as s:
        return list(s.scalars(select(Candidate).where(Candidate.ref_code.like(f"{study_key}-%"))
                              .order_by(Candidate.seq)))


def count(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Candidate.id))) or 0


def run(ctx: AppContext, path: Path, source: str = "physician", **kw: Any) -> ImportResult:
    return import_leads(ctx, path, study_key="MDD", source=source, **kw)


def test_a_valid_file_creates_unassigned_needs_call_candidates(ctx: AppContext,
                                                               tmp_path: Path) -> None:
    path = write_csv(tmp_path / "leads.csv", GENERIC, [
        ["Ada Lovelace", "(312) 555-0101", "1980-04-02", "IL", "60601", "ada@example.org", "yes"],
        ["Grace Hopper", "312.555.0102", "12/09/1976", "Texas", "", "", ""],
        ["Alan Turing", "+1 415 555 0103", "", "", "", "", "Y"],
    ])
    result = run(ctx, path)
    assert (result.created, result.duplicates, result.rejected) == (3, 0, 0)
    assert result.written and result.first_ref == "MDD-0001" and result.last_ref == "MDD-0003"

    rows = candidates(ctx.db)
    assert [c.ref_code for c in rows] == ["MDD-0001", "MDD-0002", "MDD-0003"]
    assert {c.status for c in rows} == {"needs_call"}
    assert {c.source for c in rows} == {"physician"}
    assert all(c.owner_id is None and c.attempts == 0 and c.consent_to_contact for c in rows)
    ada, grace, alan = rows
    assert ctx.cipher.decrypt(ada.phone_enc) == "+13125550101"
    assert ctx.cipher.decrypt(grace.dob_enc or "") == "1976-12-09"
    assert alan.dob_enc is None
    # the same blind indexes the log-call form uses, so a later call finds the lead
    assert ada.phone_index == ctx.cipher.index("+13125550101")
    assert ada.dedupe_index == ctx.cipher.index("MDD", "+13125550101", "1980-04-02")
    assert (ada.region, ada.timezone) == ("IL", "America/Chicago")
    assert (grace.region, grace.timezone) == ("TX", "America/Chicago")
    assert (alan.region, alan.timezone) == (None, "America/Chicago")  # MDD's time zone, assumed
    assert result.timezone_assumed == 1

    with ctx.db.session() as s:
        events = [e for e in audit.history(s, "study", "MDD") if e.action == "leads.imported"]
    assert len(events) == 1
    after = events[0].after or {}
    assert after["created"] == 3 and after["file"] == "leads.csv" and after["source"] == "physician"
    assert "Ada" not in str(after) and "555" not in str(after)


def test_time_zone_from_state_or_zip(ctx: AppContext, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tz.csv", ["name", "phone", "state", "zip"], [
        ["East", "6175550111", "MA", ""],
        ["Panhandle", "8505550112", "FL", "32501"],   # Pensacola: Central, not Florida's Eastern
        ["El Paso", "9155550113", "TX", "79901"],     # Mountain
        ["Zip only", "2065550114", "", "98101"],      # Seattle → WA
        ["Excel zip", "6175550115", "", "2134"],      # 02134 lost its leading zero
        ["Phoenix", "6025550116", "az", ""],
    ])
    assert run(ctx, path).created == 6
    got = [(c.region, c.timezone) for c in candidates(ctx.db)]
    assert got == [("MA", "America/New_York"), ("FL", "America/Chicago"),
                   ("TX", "America/Denver"), ("WA", "America/Los_Angeles"),
                   ("MA", "America/New_York"), ("AZ", "America/Phoenix")]


def test_duplicates_in_the_file_and_against_existing_candidates(ctx: AppContext,
                                                                tmp_path: Path) -> None:
    first = write_csv(tmp_path / "first.csv", GENERIC, [
        ["Ada Lovelace", "3125550101", "1980-04-02", "IL", "", "", ""],
    ])
    assert run(ctx, first).created == 1

    path = write_csv(tmp_path / "second.csv", GENERIC, [
        ["Ada L.", "(312) 555-0101", "1980-04-02", "IL", "", "", ""],   # line 2: in the DB
        ["Bob Builder", "3125550202", "", "IL", "", "", ""],            # line 3: new
        ["Robert Builder", "312-555-0202", "", "IL", "", "", ""],       # line 4: same as line 3
        ["Ada again", "+13125550101", "", "", "", "", ""],              # line 5: in the DB
    ])
    result = run(ctx, path, batch_size=2)  # line 4 is found across batches, in the database
    assert (result.created, result.duplicates, result.rejected) == (1, 3, 0)
    reasons = {p.line: p.reason for p in result.problems}
    assert reasons == {2: "same phone and date of birth as MDD-0001",
                       4: "same phone as line 3",
                       5: "same phone as MDD-0001"}
    assert count(ctx.db) == 2

    same_batch = write_csv(tmp_path / "third.csv", GENERIC, [
        ["Cy", "3125550303", "", "", "", "", ""], ["Cy", "3125550303", "", "", "", "", ""]])
    result = run(ctx, same_batch)
    assert result.created == 1 and [str(p) for p in result.problems] == [
        "line 3: duplicate: same phone as line 2"]


def test_the_same_phone_in_another_study_is_not_a_duplicate(ctx: AppContext,
                                                            tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", GENERIC, [["Ada", "3125550101", "", "", "", "", ""]])
    assert run(ctx, path).created == 1
    result = import_leads(ctx, path, study_key="ALZ", source="web")
    assert result.created == 1 and candidates(ctx.db, "ALZ")[0].ref_code == "ALZ-0001"


BAD_ROWS = [
    ["Ada Lovelace", "3125550101", "1980-04-02", "IL", "", "", ""],   # 2 ok
    ["No Phone", "", "", "", "", "", ""],                              # 3
    ["", "3125550103", "", "", "", "", ""],                            # 4
    ["Bad Phone", "555-12", "", "", "", "", ""],                       # 5
    ["Bad Date", "3125550105", "1980-13-40", "", "", "", ""],          # 6
    ["Future", "3125550106", "2999-01-01", "", "", "", ""],            # 7
    ["Bad State", "3125550107", "", "Narnia", "", "", ""],             # 8
    ["Said No", "3125550108", "", "", "", "", "no"],                   # 9
    ["Fine Too", "3125550109", "", "NY", "10001", "", ""],             # 10 ok
    ["Bad Zip", "3125550110", "", "", "ABCDE", "", ""],                # 11
]
EXPECTED_REJECTS = {
    3: "phone missing", 4: "name missing", 5: "phone not valid",
    6: "date of birth is not a date (use YYYY-MM-DD or MM/DD/YYYY)",
    7: "date of birth is in the future", 8: "state is not a US state or territory",
    9: "consent is 'no': this lead may not be called", 11: "ZIP is not a 5-digit ZIP code",
}


def test_bad_rows_are_listed_by_line_and_nothing_is_written(ctx: AppContext,
                                                            tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", GENERIC, BAD_ROWS)
    result = run(ctx, path)
    assert not result.written
    assert result.rejected == len(EXPECTED_REJECTS) and result.created == 0
    assert {p.line: p.reason for p in result.problems} == EXPECTED_REJECTS
    assert count(ctx.db) == 0
    with ctx.db.session() as s:
        assert s.scalar(select(func.count(AuditEvent.id))
                        .where(AuditEvent.action == "leads.imported")) == 0
    # the report has no names or phone numbers
    text = "\n".join(str(p) for p in result.problems)
    assert "Narnia" not in text and "555" not in text and "Bad" not in text


def test_skip_invalid_imports_the_good_rows(ctx: AppContext, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", GENERIC, BAD_ROWS)
    result = run(ctx, path, skip_invalid=True)
    assert result.written and (result.created, result.rejected) == (2, len(EXPECTED_REJECTS))
    assert [c.ref_code for c in candidates(ctx.db)] == ["MDD-0001", "MDD-0002"]


def test_a_failure_while_writing_rolls_back_the_whole_import(ctx: AppContext, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.leads import intake

    path = write_csv(tmp_path / "ok.csv", GENERIC,
                     [[f"Lead {i}", f"312555{i:04d}", "", "", "", "", ""] for i in range(100, 130)])
    real = intake._Writer.write
    calls = {"n": 0}

    def failing(self: Any, session: Any, leads: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("database went away")
        real(self, session, leads)

    monkeypatch.setattr(intake._Writer, "write", failing)
    with pytest.raises(RuntimeError):
        run(ctx, path, batch_size=10)
    assert calls["n"] == 3 and count(ctx.db) == 0


def test_dry_run_counts_everything_and_writes_nothing(ctx: AppContext, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ok.csv", GENERIC, [
        ["Ada", "3125550101", "", "", "", "", ""], ["Ada", "3125550101", "", "", "", "", ""]])
    result = run(ctx, path, dry_run=True)
    assert (result.created, result.duplicates, result.written) == (1, 1, False)
    assert count(ctx.db) == 0


def test_column_mapping_per_source(ctx: AppContext, tmp_path: Path) -> None:
    # MDD's web-ads source maps "Full Name", "Phone", "DOB"… (headers in any case)
    path = write_csv(tmp_path / "ads.csv", ["FULL NAME", "phone", "DOB", "State", "Zip",
                                            "Email", "Consent", "utm_campaign"], [
        ["Ada Lovelace", "3125550101", "04/02/1980", "IL", "60601", "a@example.org", "Yes", "x"]])
    result = run(ctx, path, source="web-ads")
    assert result.created == 1
    cand = candidates(ctx.db)[0]
    assert cand.source == "web-ads" and ctx.cipher.decrypt(cand.name_enc) == "Ada Lovelace"
    assert ctx.cipher.decrypt(cand.dob_enc or "") == "1980-04-02"

    # the generic header does not fit web-ads: the whole file is refused, naming the column
    generic = write_csv(tmp_path / "generic.csv", GENERIC, [["Bo", "3125550102", "", "", "", "", ""]])
    with pytest.raises(LeadFileError, match="'Full Name' column"):
        run(ctx, generic, source="web-ads")


def test_unknown_source_or_study_is_refused(ctx: AppContext, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", GENERIC, [["Bo", "3125550102", "", "", "", "", ""]])
    with pytest.raises(LeadFileError, match="use one of physician, web-ads"):
        run(ctx, path, source="radio")
    with pytest.raises(LeadFileError, match="no study 'XYZ'"):
        import_leads(ctx, path, study_key="XYZ", source="web")
    with pytest.raises(LeadFileError, match="slug"):
        import_leads(ctx, path, study_key="ALZ", source="Radio Ads!")  # ALZ has no lead_sources
    assert count(ctx.db) == 0


def _generate(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(GENERIC)
        for i in range(n):
            w.writerow([f"Lead Number {i}", f"(312) {200 + i // 10000:03d}-{i % 10000:04d}",
                        f"{1940 + i % 60}-{1 + i % 12:02d}-{1 + i % 28:02d}", "IL", "60601",
                        f"lead{i}@example.org", "yes"])


@pytest.mark.no_phi_scan("sends nothing to Slack; measures the import's memory")
def test_a_100k_row_file_is_streamed(ctx: AppContext, tmp_path: Path) -> None:
    n = 100_000
    path = tmp_path / "big.csv"
    _generate(path, n)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        result = run(ctx, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.created == n and result.rejected == 0 and result.duplicates == 0
    assert count(ctx.db) == n
    # bounded by the batch (500 rows) plus 12 bytes a row, not by the file: the file read into
    # a list of rows would take about 7 times its size
    assert peak < size * 0.75, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
    print(f"\n100k leads: {result.rows_per_second:,.0f} rows/s, peak {peak / 1e6:.1f} MB, "
          f"file {size / 1e6:.1f} MB")


# ----- the command -----

@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, ctx: AppContext, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("PRESCREEN_ENCRYPTION_KEYS", ENCRYPTION_KEY)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    yield


def prescreen_bot(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_cli_reports_and_exit_codes(env: None, ctx: AppContext, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_csv(tmp_path / "bad.csv", GENERIC, BAD_ROWS)
    code, out = prescreen_bot("leads", "import", str(bad), "--study", "MDD", "--source", "physician")
    assert code == 2 and count(ctx.db) == 0
    assert "rejected 8 of 10 rows; nothing was imported" in out
    assert "  line 3: rejected: phone missing" in out and "line 11: rejected: ZIP" in out

    code, out = prescreen_bot("leads", "import", str(bad), "--study", "MDD", "--source",
                              "physician", "--skip-invalid", "--report", "report.csv")
    assert code == 0 and count(ctx.db) == 2
    assert "created 2, duplicates 0, rejected 8" in out and "MDD-0001 … MDD-0002" in out
    report = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert [r["line"] for r in report] == ["3", "4", "5", "6", "7", "8", "9", "11"]

    code, out = prescreen_bot("leads", "import", str(bad), "--study", "MDD", "--source",
                              "physician", "--skip-invalid", "--dry-run")
    assert code == 0 and "created 0, duplicates 2, rejected 8" in out and "dry run" in out

    code, _ = prescreen_bot("leads", "import", str(tmp_path / "missing.csv"), "--study", "MDD",
                            "--source", "physician")
    assert code == 2 and "file not found" in capsys.readouterr().err
    code, _ = prescreen_bot("leads", "import", str(bad), "--study", "MDD", "--source", "radio")
    assert code == 2 and "no lead source 'radio'" in capsys.readouterr().err
    assert count(ctx.db) == 2


def test_cli_caps_the_printed_list(env: None, ctx: AppContext, tmp_path: Path) -> None:
    rows = [[f"Lead {i}", "", "", "", "", "", ""] for i in range(120)]
    path = write_csv(tmp_path / "many.csv", GENERIC, rows)
    code, out = prescreen_bot("leads", "import", str(path), "--study", "MDD", "--source", "physician")
    assert code == 2
    assert sum(1 for line in out.splitlines() if line.startswith("  line ")) == 50
    assert "… and 70 more (--report FILE.csv lists all)" in out


def test_lead_sources_in_the_studies_file_are_checked() -> None:
    from bot.studies.importer import validate

    def errors(sources: Any) -> str:
        doc = {"studies": [{"key": "MDD", "title": "t", "channel": "C0MDD0001",
                            "timezone": "America/Chicago", "lead_sources": sources}]}
        return "\n".join(validate(doc, set()))

    assert errors({"web-ads": {"label": "Web ads", "cost_per_lead": 35.0,
                               "columns": {"name": "Full Name", "phone": "Phone"}},
                   "physician": {"label": "Physician referral"}, "walk-in": None}) == ""
    bad = errors({"Web Ads": {"label": "x"},
                  "radio": {"cost_per_lead": -5, "colour": "red",
                            "columns": {"phone": "Phone", "mobile": "Cell", "name": "phone"}}})
    assert "study MDD: lead_sources.Web Ads: the source must be a slug" in bad
    assert "study MDD: lead_sources.radio.cost_per_lead: a number of dollars" in bad
    assert "study MDD: lead_sources.radio.colour: unknown setting" in bad
    assert "study MDD: lead_sources.radio.columns.mobile: unknown field" in bad
    assert "study MDD: lead_sources.radio.columns.name: header 'phone' is already used for phone" in bad
    assert "lead_sources: a mapping" in errors(["web-ads"])


def test_the_documented_sample_file(env: None, ctx: AppContext) -> None:
    from tests.conftest import FIXTURES

    sample = FIXTURES / "leads_web-ads.csv"
    code, out = prescreen_bot("leads", "import", str(sample), "--study", "MDD", "--source",
                              "web-ads", "--skip-invalid")
    assert code == 0, out
    assert "created 3, duplicates 1, rejected 1" in out
    assert "line 5: duplicate: same phone and date of birth as line 2" in out
    assert "line 6: rejected: phone missing" in out
    assert "Harriet" not in out and "0141" not in out
    got = {c.ref_code: (c.region, c.timezone) for c in candidates(ctx.db)}
    assert got == {"MDD-0001": ("IL", "America/Chicago"), "MDD-0002": ("FL", "America/Chicago"),
                   "MDD-0003": ("CA", "America/Los_Angeles")}


def test_a_lead_added_while_an_import_runs_keeps_its_ref_code(ctx: AppContext,
                                                              tmp_path: Path) -> None:
    """Reference codes are allocated in blocks after the study is locked; a lead being created
    in another transaction makes the import wait for it, then continue after its number."""
    import threading
    import time

    from storage.models import Study
    from storage.repositories import candidates as cand_repo

    path = write_csv(tmp_path / "three.csv", GENERIC,
                     [[f"Lead {i}", f"312555{i:04d}", "", "", "", "", ""] for i in range(201, 204)])
    single_started, release = threading.Event(), threading.Event()
    got: dict[str, Any] = {}

    def single_lead() -> None:
        c = ctx.cipher
        with ctx.db.session() as s:
            study = s.scalars(select(Study).where(Study.key == "MDD")).one()
            cand = cand_repo.create(s, study.id, "MDD", {
                "name_enc": c.encrypt("Walk In"), "phone_enc": c.encrypt("+13125559999"),
                "phone_index": c.index("+13125559999"), "timezone": "America/Chicago",
                "status": "needs_call", "source": "other"})
            got["single"] = cand.ref_code
            single_started.set()
            release.wait(10)

    def importer() -> None:
        single_started.wait(10)
        got["import"] = run(ctx, path)

    threads = [threading.Thread(target=single_lead), threading.Thread(target=importer)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the import is now waiting for the single create's transaction
    release.set()
    for t in threads:
        t.join(30)
    result = got["import"]
    assert got["single"] == "MDD-0001"
    assert (result.created, result.first_ref, result.last_ref) == (3, "MDD-0002", "MDD-0004")
    assert [c.ref_code for c in candidates(ctx.db)] == ["MDD-0001", "MDD-0002", "MDD-0003",
                                                        "MDD-0004"]


def test_forty_coordinators_adding_leads_at_once_each_get_a_reference_code(
        ctx: AppContext) -> None:
    """Everyone reads the same highest number at the same instant; the study's sequence is taken
    one creator at a time, so nobody runs out of retries and no number is given twice."""
    import threading

    from storage.models import Study
    from storage.repositories import candidates as cand_repo

    start = threading.Barrier(40)
    failures: list[BaseException] = []

    def add(n: int) -> None:
        c = ctx.cipher
        phone = f"+1312556{n:04d}"
        try:
            start.wait(10)
            with ctx.db.session() as s:
                study = s.scalars(select(Study).where(Study.key == "MDD")).one()
                cand_repo.create(s, study.id, "MDD", {
                    "name_enc": c.encrypt(f"Walk In {n}"), "phone_enc": c.encrypt(phone),
                    "phone_index": c.index(phone), "timezone": "America/Chicago",
                    "status": "needs_call", "source": "other"})
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    assert [c.ref_code for c in candidates(ctx.db)] == [f"MDD-{i:04d}" for i in range(1, 41)]


def test_imported_leads_are_picked_up_by_the_assignment_job(ctx: AppContext, tmp_path: Path) -> None:
    from bot.leads.assignment import assignment_job

    path = write_csv(tmp_path / "two.csv", GENERIC, [["Ada", "3125550101", "", "IL", "", "", ""],
                                                     ["Bo", "3125550102", "", "IL", "", "", ""]])
    assert run(ctx, path).created == 2
    assert all(c.owner_id is None for c in candidates(ctx.db))
    assignment_job(ctx)
    owners = {c.owner_id for c in candidates(ctx.db)}
    assert None not in owners and len(owners) == 1  # MDD has one coordinator (sam)


def test_a_file_changed_between_the_passes_is_refused(ctx: AppContext, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.leads import intake

    path = write_csv(tmp_path / "moving.csv", GENERIC, [["Ada", "3125550101", "", "", "", "", ""],
                                                        ["Bo", "3125550102", "", "", "", "", ""]])
    real_rows = intake._rows
    reads = {"n": 0}

    def rows(p: Path, cfg: Any, *encoding: Any) -> Any:
        reads["n"] += 1
        if reads["n"] == 2:  # someone saves the file again while it is imported
            write_csv(p, GENERIC, [["Ada", "3125550101", "", "", "", "", ""],
                                   ["Bo", "nope", "", "", "", "", ""]])
        return real_rows(p, cfg, *encoding)

    monkeypatch.setattr(intake, "_rows", rows)
    with pytest.raises(LeadFileError, match="changed while it was being imported"):
        run(ctx, path, batch_size=1)
    assert count(ctx.db) == 0


def test_a_person_who_asked_not_to_be_called_is_not_imported(ctx: AppContext,
                                                             tmp_path: Path) -> None:
    from sqlalchemy import update

    alz = write_csv(tmp_path / "alz.csv", GENERIC, [["Ada", "3125550101", "", "", "", "", ""]])
    assert import_leads(ctx, alz, study_key="ALZ", source="web").created == 1
    with ctx.db.session() as s:
        s.execute(update(Candidate).where(Candidate.ref_code == "ALZ-0001").values(do_not_call=True))

    path = write_csv(tmp_path / "mdd.csv", GENERIC, [["Ada L", "(312) 555-0101", "", "", "", "", ""],
                                                     ["Bo", "3125550102", "", "", "", "", ""]])
    result = run(ctx, path)
    assert (result.created, result.duplicates) == (1, 1)
    assert [str(p) for p in result.problems] == [
        "line 2: duplicate: same phone as ALZ-0001, who asked not to be called"]
    assert [c.ref_code for c in candidates(ctx.db)] == ["MDD-0001"]


# ----- files as spreadsheets save them -----

SPREADSHEET = "name,phone,state\r\nJosé Núñez,3125550101,IL\r\nMary O’Brien,3125550102,IL\r\n"


def nothing_imported(db: Database) -> bool:
    with db.session() as s:
        events = [e for e in audit.history(s, "study", "MDD") if e.action == "leads.imported"]
    return count(db) == 0 and not events


def test_a_windows_1252_file_is_refused_naming_the_spot_and_the_fix(
        env: None, ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "from-excel.csv"
    path.write_bytes(SPREADSHEET.encode("cp1252"))  # Excel's plain "CSV" on Windows
    code, _ = prescreen_bot("leads", "import", str(path), "--study", "MDD", "--source", "physician")
    err = capsys.readouterr().err
    assert code == 2, err
    assert ("from-excel.csv not imported; nothing was changed: from-excel.csv is not UTF-8 text: "
            "line 2, column 4 (byte 22 of the file, 0xE9)") in err
    assert '"CSV UTF-8 (Comma delimited)"' in err and "--encoding cp1252" in err
    assert nothing_imported(ctx.db)

    code, out = prescreen_bot("leads", "import", str(path), "--study", "MDD", "--source",
                              "physician", "--encoding", "cp1252")
    assert code == 0 and "created 2, duplicates 0, rejected 0" in out
    assert [ctx.cipher.decrypt(c.name_enc) for c in candidates(ctx.db)] == [
        "José Núñez", "Mary O’Brien"]


def test_a_bad_byte_deep_in_a_large_file_is_found_exactly(
        env: None, ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [b"name,phone"] + [f"Lead {i},312555{i:04d}".encode() for i in range(1, 2000)]
    lines[1500] = "Zoë Quinn,3125559999".encode("cp1252")  # line 1501, far past the first read
    path = tmp_path / "big.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, _ = prescreen_bot("leads", "import", str(path), "--study", "MDD", "--source", "physician",
                            "--skip-invalid")
    err = capsys.readouterr().err
    assert code == 2 and "is not UTF-8 text: line 1501, column 3 (byte " in err, err
    assert nothing_imported(ctx.db)


@pytest.mark.parametrize("content, encoding, code, message", [
    ("\ufeff" + SPREADSHEET, "utf-8", 0, "created 2, duplicates 0, rejected 0"),  # CSV UTF-8
    ("\ufeff" + SPREADSHEET, "cp1252", 0, "created 2, duplicates 0, rejected 0"),  # BOM wins
    ("", "utf-8", 2, "leads.csv is empty: line 1 must be the header row"),
    ("\ufeff", "utf-8", 2, "leads.csv is empty: line 1 must be the header row"),
    ("\r\n\r\n", "utf-8", 2, "leads.csv is empty: line 1 must be the header row"),
    ("\ufeffname,phone,state\r\n", "utf-8", 0, "no leads in the file, only the header row"),
], ids=["excel-csv-utf-8", "bom-with-cp1252", "empty", "only-bom", "blank-lines", "only-header"])
def test_files_excel_writes_are_read_or_refused_clearly(
        env: None, ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        content: str, encoding: str, code: int, message: str) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(content.encode("utf-8"))
    chosen = () if encoding == "utf-8" else ("--encoding", encoding)
    got, out = prescreen_bot("leads", "import", str(path), "--study", "MDD", "--source",
                             "physician", *chosen)
    err = capsys.readouterr().err
    assert got == code and message in out + err  # an exit code, not an exception
    if code == 0 and "created 2" in message:
        assert [ctx.cipher.decrypt(c.name_enc) for c in candidates(ctx.db)] == [
            "José Núñez", "Mary O’Brien"]
    else:
        assert nothing_imported(ctx.db)


@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "is an Excel workbook, not a CSV file"),
    ("name,phone\r\nAda,3125550101\r\n".encode("utf-16"), "is UTF-16"),
    (bytes(range(32, 256)), "is not UTF-8 text: line 1, column 97 (byte 97 of the file, 0x80)"),
], ids=["xlsx", "utf-16", "binary"])
def test_a_file_that_is_not_csv_text_is_refused(
        env: None, ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        content: bytes, message: str) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    code, _ = prescreen_bot("leads", "import", str(path), "--study", "MDD", "--source", "physician")
    err = capsys.readouterr().err
    assert code == 2 and message in err and "CSV UTF-8" in err
    assert nothing_imported(ctx.db)
