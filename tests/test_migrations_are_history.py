"""Story: a site that installed an earlier release, and has been working in it since, runs
`prescreen-bot migrate`. Its database ends up with exactly the schema a fresh install gets, and
nothing it held is lost: patients still decrypt, referrals keep their history, queued Slack
messages still go out, and `prescreen-bot audit verify` passes on the trail it wrote before the
trail was chained.

That only holds if a released migration is never edited (a database created by the old file never
sees the edit), so each released migration's checksum is kept in
storage/migrations/released.txt and checked here."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DatabaseError

from app import cli
from storage import audit, migrate
from storage.crypto import PHICipher
from storage.db import Database, make_engine
from storage.models import Base
from tests.conftest import BOT_TOKEN, ENCRYPTION_KEY, PORTAL_ENV, SIGNING_SECRET

VERSIONS = migrate.MIGRATIONS / "versions"
RELEASED = migrate.MIGRATIONS / "released.txt"
EARLIER = ("0001", "0002", "0003")  # the releases before the audit chain, whose data the story seeds
AUDIT_EVENTS = 5_003  # more than one of 0004's 5,000-row chaining batches
T0 = dt.datetime(2026, 11, 2, 14, 5, 7, 123456)  # naive UTC, as the app stores instants
CIPHER = PHICipher([ENCRYPTION_KEY])
PATIENTS = (("María Gómez-Núñez", "+16175550101", "1948-03-09"),
            ("John O'Brien", "+16175550102", None),
            ("李伟", "+16175550103", "1961-12-30"))


# ----- databases -----------------------------------------------------------------------------

@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    monkeypatch.chdir(tmp_path)
    for name, value in (("SLACK_BOT_TOKEN", BOT_TOKEN), ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
                        ("PRESCREEN_ENCRYPTION_KEYS", ENCRYPTION_KEY), *PORTAL_ENV.items()):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PRESCREEN_REQUIRE_SEPARATE_DB_ROLE", raising=False)
    return lambda url: monkeypatch.setenv("DATABASE_URL", url)


def audit_verify() -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(["audit", "verify"], out=out)
    return code, out.getvalue()


def fresh(new_database: Callable[[], str], revision: str = "head") -> str:
    url = new_database()
    migrate.upgrade(url, revision)
    return url


# ----- the schema, as the database itself reports it -----------------------------------------

def schema(url: str) -> dict[str, Any]:
    """Tables, columns (type, nullability, default), primary keys, indexes, unique constraints,
    foreign keys, check constraints; triggers (and on PostgreSQL functions and sequences)."""
    engine = make_engine(url)
    try:
        insp = sa.inspect(engine)
        tables: dict[str, Any] = {}
        for t in insp.get_table_names():
            tables[t] = {
                "columns": {c["name"]: {"type": str(c["type"]), "nullable": c["nullable"],
                                        "default": c.get("default")}
                            for c in insp.get_columns(t)},
                "primary_key": insp.get_pk_constraint(t),
                "indexes": {i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
                            for i in insp.get_indexes(t)},
                "unique": {u["name"]: tuple(u["column_names"])
                           for u in insp.get_unique_constraints(t)},
                "foreign_keys": {f["name"]: (tuple(f["constrained_columns"]), f["referred_table"],
                                             tuple(f["referred_columns"]), f["options"])
                                 for f in insp.get_foreign_keys(t)},
                "checks": {c["name"]: c["sqltext"] for c in insp.get_check_constraints(t)},
            }
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                extra = {
                    "triggers": {f"{r[0]}.{r[1]}": (r[2], r[3]) for r in conn.execute(sa.text(
                        "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled "
                        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"))},
                    "functions": {r[0]: r[1] for r in conn.execute(sa.text(
                        "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
                        "JOIN pg_namespace n ON n.oid = p.pronamespace "
                        "WHERE n.nspname = current_schema()"))},
                    "sequences": sorted(r[0] for r in conn.execute(sa.text(
                        "SELECT sequence_name FROM information_schema.sequences "
                        "WHERE sequence_schema = current_schema()"))),
                }
            else:
                extra = {"triggers": {r[0]: (r[1], " ".join(r[2].split())) for r in conn.execute(
                    sa.text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"))}}
    finally:
        engine.dispose()
    return {"tables": tables, **extra}


def differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Where two schema snapshots differ, one line each (path: migrated vs fresh)."""
    if isinstance(got, dict) and isinstance(want, dict):
        out: list[str] = []
        for key in sorted(set(got) | set(want), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in want:
                out.append(f"{sub}: only in the migrated database")
            elif key not in got:
                out.append(f"{sub}: missing from the migrated database")
            else:
                out += differences(got[key], want[key], sub)
        return out
    return [] if got == want else [f"{path}: migrated {got!r}, fresh {want!r}"]


def assert_same_schema(url: str, fresh_url: str) -> None:
    diff = differences(schema(url), schema(fresh_url))
    assert not diff, "schema differs from a fresh database at the same revision:\n  " + "\n  ".join(diff)


def assert_models_match(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"upgraded schema differs from storage/models.py: {diff}"


# ----- a working database at an earlier revision ---------------------------------------------

def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _patients() -> list[dict[str, Any]]:
    rows = []
    for n, (name, phone, dob) in enumerate(PATIENTS, start=1):
        rows.append({
            "study_id": 1, "seq": n, "ref_code": f"ALZ-{n:04d}", "name_enc": CIPHER.encrypt(name),
            "phone_enc": CIPHER.encrypt(phone), "dob_enc": CIPHER.encrypt_optional(dob),
            "phone_index": CIPHER.index(phone), "name_index": CIPHER.index(name),
            "dedupe_index": CIPHER.index(name, dob or ""), "region": "MA",
            "timezone": "America/New_York", "consent_to_contact": True, "do_not_call": n == 3,
            "status": ("referred", "attempting", "do_not_call")[n - 1], "attempts": (1, 2, 0)[n - 1],
            "last_outcome": ("eligible", "no_answer", None)[n - 1],
            "last_called_at": at(60 * n) if n < 3 else None,
            "first_called_at": at(60) if n < 3 else None, "unreachable_at": None,
            "source": "web", "owner_id": 1, "assigned_at": at(1), "wait_reason": None,
            "created_at": at(n), "updated_at": at(60 * n)})
    return rows


def _audit(n: int) -> dict[str, Any]:
    """The app before 0004 wrote events without seq or hash; `before`/`after` are JSON."""
    kinds = (("candidate.created", "candidate", None, {"ref": "ALZ-0001", "status": "new"}),
             ("call.logged", "candidate", {"status": "new"}, {"status": "attempting",
                                                             "answers": {"age": 72, "mci": True}}),
             ("referral.decided", "referral", {"state": "pending"},
              {"state": "approved", "reason": "Überweisung – ok ✓"}),
             ("candidate.viewed", "candidate", None, None))
    action, entity, before, after = kinds[n % len(kinds)]
    return {"at": T0 + dt.timedelta(seconds=n, microseconds=n % 997), "actor": "U0COORD01",
            "action": action, "entity": entity, "entity_id": f"ALZ-{n % 3 + 1:04d}",
            "before": before, "after": after, "reason": "consent recorded" if n % 5 == 0 else None}


def rows_at(revision: str) -> dict[str, list[dict[str, Any]]]:
    """What a study that has been running a while holds, in that revision's columns."""
    def outbox_extra(n: int) -> dict[str, Any]:  # 0003: a send whose outcome was never learned
        return {} if revision < "0003" else {"unconfirmed_since": at(62) if n == 2 else None}

    return {
        "studies": [{"key": "ALZ", "title": "Early Alzheimer's", "sponsor": "Acme Bio",
                     "channel_id": "C0ALZ0001", "timezone": "America/New_York",
                     "approval_required": True, "max_attempts": 5, "min_attempt_days": 3,
                     "digest_time": "08:30", "calling_window_start": "09:00",
                     "calling_window_end": "19:00", "active": True, "created_at": at(0),
                     "updated_at": at(0), "options": {"sla": {"new": 2}, "reasons": ["moved"]}}],
        "sites": [{"study_id": 1, "key": "BOS", "name": "Boston Memory Clinic",
                   "mailbox": "bos@example.org", "timezone": "America/New_York",
                   "channel_id": "C0BOSSITE", "liaison_slack_id": "U0LEAD001", "active": True}],
        "questions": [{"study_id": 1, "qid": "age", "position": 1, "text": "Age?", "kind": "number",
                       "options": [], "rule": {"min": 50, "max": 85}, "required": True},
                      {"study_id": 1, "qid": "mci", "position": 2, "text": "MCI diagnosis?",
                       "kind": "yes_no", "options": [], "rule": {"equals": True},
                       "required": True}],
        "members": [{"slack_user_id": uid, "email": f"{name}@example.org", "display_name": name,
                     "timezone": "America/New_York", "mailbox": None, "active": True,
                     "created_at": at(0)}
                    for uid, name in (("U0COORD01", "casey"), ("U0LEAD001", "lee"),
                                      ("U0SPONS01", "pat"))],
        "memberships": [{"member_id": m, "study_id": 1, "role": role}
                        for m, role in ((1, "coordinator"), (2, "approver"), (3, "stakeholder"))],
        "candidates": _patients(),
        "prescreen_calls": [
            {"candidate_id": c, "study_id": 1, "coordinator_id": 1, "attempt_no": a,
             "outcome": outcome, "answers": answers, "eligible": eligible,
             "failed_criteria": [], "notes_enc": CIPHER.encrypt_optional(notes),
             "called_at": at(60 * c + a), "created_at": at(60 * c + a),
             "idempotency_key": f"call-{c}-{a}"}
            for c, a, outcome, answers, eligible, notes in (
                (1, 1, "eligible", {"age": 72, "mci": True}, True, "Daughter helps; call mornings"),
                (2, 1, "no_answer", {}, None, None), (2, 2, "no_answer", {}, None, None))],
        "callbacks": [
            {"candidate_id": 2, "study_id": 1, "owner_id": 1, "call_id": 3, "due_at": at(3000),
             "remind_at": at(2990), "window_check": {"ok": True}, "status": "scheduled",
             "kind": "cadence", "reminded_at": None, "reminded_late": False,
             "escalated_at": None, "completed_at": None, "created_at": at(130), "version": 1},
            {"candidate_id": 1, "study_id": 1, "owner_id": 1, "call_id": 1, "due_at": at(200),
             "remind_at": at(190), "window_check": {"ok": True}, "status": "done",
             "kind": "requested", "reminded_at": at(190), "reminded_late": False,
             "escalated_at": None, "completed_at": at(205), "created_at": at(61), "version": 2}],
        "referrals": [{"candidate_id": 1, "study_id": 1, "site_id": 1, "call_id": 1,
                       "state": "approved", "version": 2, "created_by_id": 1,
                       "decided_by": "U0LEAD001", "decided_at": at(90), "reason": None,
                       "reason_note_enc": None, "visit_date": dt.date(2026, 11, 20),
                       "card_channel": "C0ALZ0001", "card_ts": "1762092307.000100",
                       "created_at": at(61), "updated_at": at(90)}],
        "referral_events": [{"referral_id": 1, "from_state": f, "to_state": t, "actor": a,
                             "reason": None, "at": at(m)}
                            for f, t, a, m in ((None, "pending", "U0COORD01", 61),
                                               ("pending", "approved", "U0LEAD001", 90))],
        "sla_notices": [{"key": "ALZ:candidate:2:new:breach", "study_id": 1, "stage": "new",
                         "level": "breach", "entity": "candidate", "entity_id": 2, "at": at(2900)}],
        "outbox_messages": [
            {"idempotency_key": f"referral-card-1-{n}", "kind": "referral_card",
             "method": "chat.postMessage", "channel": "C0ALZ0001",
             "payload": {"text": f"Referral ALZ-0001 ({n})", "blocks": []}, "parent_key": None,
             "study_key": "ALZ", "status": status, "attempts": attempts,
             "next_attempt_at": at(61 + n), "claimed_until": None,
             "slack_ts": "1762092307.000100" if status == "sent" else None,
             "posted_channel": "C0ALZ0001" if status == "sent" else None,
             "last_error": "ratelimited" if attempts > 1 else None, "created_at": at(61),
             "sent_at": at(62) if status == "sent" else None, **outbox_extra(n)}
            for n, status, attempts in ((1, "sent", 1), (2, "pending", 2), (3, "pending", 0))],
        "outbox_channels": [{"channel": "C0ALZ0001", "next_at": at(63)}],
        "digest_runs": [{"scope": "study:ALZ", "period": "2026-11-02", "status": "sent",
                         "late": False, "created_at": at(0)}],
        "processed_requests": [{"key": "view:V0001:submit", "at": at(60), "result": {"ok": True}}],
        "calendar_events": [{"mailbox": "bos@example.org", "event_id": "AAMk-1",
                             "subject": "Screening visit", "start_at": at(4000),
                             "end_at": at(4060), "is_all_day": False, "start_date": None,
                             "end_date": None, "show_as": "busy", "sensitivity": "private",
                             "is_cancelled": False, "join_url": None, "updated_at": at(100)}],
        "graph_sync_state": [{"mailbox": "bos@example.org", "delta_link": "https://graph/delta",
                              "window_start": at(0), "window_end": at(20000),
                              "synced_at": at(100), "last_error": None}],
        "audit_events": [_audit(n) for n in range(AUDIT_EVENTS)],
    }


def _table(name: str, rows: list[dict[str, Any]]) -> sa.TableClause:
    """A bare table clause typed by the values (the revision's columns, not today's models)."""
    types: dict[str, Any] = {}
    for row in rows:
        for key, value in row.items():
            if value is None or key in types:
                continue
            types[key] = (sa.DateTime() if isinstance(value, dt.datetime) else
                          sa.Date() if isinstance(value, dt.date) else
                          sa.JSON() if isinstance(value, dict | list) else None)
    keys = list(rows[0])
    return sa.table(name, *(sa.column(k, types.get(k)) for k in keys))


def seed(url: str, revision: str) -> dict[str, int]:
    """Insert the rows, in order (ids 1, 2, 3… as on any fresh database); return the counts."""
    data = rows_at(revision)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for name, rows in data.items():
                conn.execute(sa.insert(_table(name, rows)), rows)
    finally:
        engine.dispose()
    return {name: len(rows) for name, rows in data.items()}


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            return {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                    for t in Base.metadata.tables if t in present}
    finally:
        engine.dispose()


def _naive(value: Any) -> dt.datetime:
    """A stored instant as read back by raw SQL (SQLite returns text)."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def working_database(new_database: Callable[[], str], revision: str) -> tuple[str, dict[str, int]]:
    url = new_database()
    migrate.upgrade(url, revision)
    engine = make_engine(url)
    try:
        assert migrate.current_revision(engine) == revision
    finally:
        engine.dispose()
    return url, seed(url, revision)


# ----- the stories ---------------------------------------------------------------------------

@pytest.mark.parametrize("revision", EARLIER)
def test_a_database_in_use_at_an_earlier_release_upgrades_to_the_fresh_schema_with_its_data(
    revision: str, new_database: Callable[[], str], cli_env: Callable[[str], None]
) -> None:
    url, before = working_database(new_database, revision)

    migrate.upgrade(url)

    # (1) the schema is the one a fresh install gets, and the one the code expects
    assert_same_schema(url, fresh(new_database))
    assert_models_match(url)

    # (2) nothing was lost
    assert counts(url) == {t: before.get(t, 0) for t in Base.metadata.tables}
    db = Database(url)
    try:
        assert migrate.current_revision(db.engine) == migrate.head_revision(url)
        with db.engine.connect() as conn:
            cand = conn.execute(sa.text("SELECT ref_code, name_enc, phone_enc, dob_enc, status, "
                                        "do_not_call FROM candidates ORDER BY id")).all()
            assert [CIPHER.decrypt(c.name_enc) for c in cand] == [p[0] for p in PATIENTS]
            assert CIPHER.decrypt(cand[0].phone_enc) == PATIENTS[0][1]
            assert [CIPHER.decrypt_optional(c.dob_enc) for c in cand] == [p[2] for p in PATIENTS]
            assert [(c.ref_code, c.status, bool(c.do_not_call)) for c in cand] == [
                ("ALZ-0001", "referred", False), ("ALZ-0002", "attempting", False),
                ("ALZ-0003", "do_not_call", True)]
            notes = conn.execute(sa.text("SELECT notes_enc FROM prescreen_calls WHERE id = 1"))
            assert CIPHER.decrypt(notes.scalar_one()) == "Daughter helps; call mornings"
            assert conn.execute(sa.text(
                "SELECT from_state, to_state FROM referral_events ORDER BY id")).all() == [
                (None, "pending"), ("pending", "approved")]
            state, visit = conn.execute(sa.text("SELECT state, visit_date FROM referrals")).one()
            assert (state, str(visit)) == ("approved", "2026-11-20")
            outbox = conn.execute(sa.text("SELECT status, attempts, unconfirmed_since "
                                          "FROM outbox_messages ORDER BY id")).all()
            unconfirmed = None if revision < "0003" else at(62)
            assert [(o.status, o.attempts, o.unconfirmed_since and _naive(o.unconfirmed_since))
                    for o in outbox] == [("sent", 1, None), ("pending", 2, unconfirmed),
                                         ("pending", 0, None)]
            # the events written before the chain existed were chained in id order
            chained = conn.execute(sa.text(
                "SELECT id, seq, prev_hash FROM audit_events ORDER BY id")).all()
            assert [(r.id, r.seq) for r in chained] == [(n, n) for n in range(1, AUDIT_EVENTS + 1)]
            assert chained[0].prev_hash == audit.GENESIS

        cli_env(url)
        code, out = audit_verify()
        assert (code, out.split(",")[0]) == (0, f"audit trail intact: {AUDIT_EVENTS} events")

        # the app goes on working on it: a new event joins the chain, the trail stays append-only
        with db.session() as s:
            audit.record(s, actor="U0COORD01", action="candidate.viewed", entity="candidate",
                         entity_id="ALZ-0002")
        code, out = audit_verify()
        assert (code, out.split(",")[0]) == (0, f"audit trail intact: {AUDIT_EVENTS + 1} events")
        with pytest.raises(DatabaseError), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_events SET actor = 'x' WHERE id = 1"))
    finally:
        db.dispose()


def test_each_migration_steps_back_one_revision_without_losing_the_rows_it_did_not_add(
    new_database: Callable[[], str], cli_env: Callable[[str], None]
) -> None:
    """Every migration has a downgrade: from head down to 0001 each step gives a fresh database's
    schema at that revision and keeps the rows; upgrading again rebuilds the same audit chain.
    (Below 0001 there is no schema: 0001's downgrade drops every table.)"""
    url, before = working_database(new_database, "0001")
    migrate.upgrade(url)
    cli_env(url)
    code, out = audit_verify()
    assert code == 0
    head_hash = re.search(r"last ([0-9a-f]{16})", out).group(1)  # type: ignore[union-attr]

    for revision in ("0004", "0003", "0002", "0001"):
        migrate.downgrade(url, revision)
        assert_same_schema(url, fresh(new_database, revision))
        kept = counts(url)  # the tables this revision has
        assert kept == {t: before.get(t, 0) for t in kept}

    migrate.upgrade(url)
    assert_same_schema(url, fresh(new_database))
    code, out = audit_verify()
    assert code == 0 and f"last {head_hash} " in out


# ----- released migrations are never edited --------------------------------------------------

def released() -> dict[str, str]:
    """file name -> sha256, from storage/migrations/released.txt (sha256sum's format)."""
    listed = {}
    for line in RELEASED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, path = line.split(maxsplit=1)
            listed[Path(path.lstrip("*")).name] = digest
    return listed


def test_a_released_migration_is_never_edited() -> None:
    listed = released()
    assert listed, "storage/migrations/released.txt lists no migration"
    problems = []
    for name, digest in listed.items():
        path = VERSIONS / name
        if not path.exists():
            problems.append(f"{name} was released but is gone; restore it (released migrations "
                            "are history)")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name} changed after release; add a new migration instead")
    assert not problems, "\n".join(problems)


def test_released_migrations_are_the_start_of_the_chain() -> None:
    """Only the newest migrations may be unreleased: a released one never follows an unreleased
    one, so every database that ran the released files can still reach head."""
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    chain = list(reversed(list(script.walk_revisions())))  # 0001 first
    files = [Path(s.path).name for s in chain]
    listed = set(released())
    assert listed <= set(files)
    unreleased_before_released = [f for i, f in enumerate(files)
                                  if f not in listed and set(files[i + 1:]) & listed]
    assert not unreleased_before_released, (
        f"{unreleased_before_released[0]} is not in storage/migrations/released.txt but a later "
        "migration is; list it (sha256sum FILE >> storage/migrations/released.txt)")
