"""Story: a hospital's security reviewer asks "can anyone rewrite the audit trail?". Every action
through the app writes audit events chained by hash; `prescreen-bot audit verify` says the trail
is intact. Someone with owner rights who edits, deletes or rewrites events is caught: verify names
the first broken event and exits 1. TRUNCATE is refused like UPDATE and DELETE. On PostgreSQL the
app runs as a role that may only INSERT and SELECT on the trail, and both `migrate` and the app's
start say so when it is not the case."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from app import cli
from bot.audit_trail.roles import check_running_role
from bot.config import Settings
from storage import audit, migrate
from storage.db import Database
from storage.models import AuditEvent
from tests.conftest import (
    BOT_TOKEN,
    ENCRYPTION_KEY,
    FIXTURES,
    PORTAL_ENV,
    SIGNING_SECRET,
    Bot,
    _pg_admin_url,
    is_postgres,
    phi_surface_env,
)
from tests.test_log_prescreen_call import CASEY, new_candidate, submit


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The CLI's environment: a production configuration on the test database."""
    monkeypatch.chdir(tmp_path)
    for name, value in (("DATABASE_URL", database_url), ("SLACK_BOT_TOKEN", BOT_TOKEN),
                        ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
                        ("PRESCREEN_ENCRYPTION_KEYS", ENCRYPTION_KEY), *PORTAL_ENV.items()):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PRESCREEN_REQUIRE_SEPARATE_DB_ROLE", raising=False)
    return database_url


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def verify(*extra: str) -> tuple[int, str]:
    return run("audit", "verify", *extra)


def chain(db: Database) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def as_owner(db: Database, sql: str, **params: Any) -> None:
    """What only the table's owner can do: switch the append-only triggers off, run `sql`, and
    switch them on again."""
    with db.engine.begin() as conn:
        if db.is_postgres:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        conn.execute(text(sql), params)
        if db.is_postgres:
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change"))
        else:
            for verb in ("UPDATE", "DELETE"):
                conn.execute(text(
                    f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"))


def work_through_the_app(bot: Bot) -> None:
    """A coordinator logs a pre-qualified call and looks the candidate up: several events."""
    resp = submit(bot, CASEY, bot.open_modal(CASEY), new_candidate())
    assert resp.status_code == 200
    bot.standin.wait_for(lambda s: s.ephemerals(CASEY), message="summary")
    assert bot.slack.slash_command(CASEY, text="status ALZ-0001").status_code == 200


def test_actions_through_the_app_write_a_chain_that_verifies(bot: Bot, env: str) -> None:
    work_through_the_app(bot)
    events = chain(bot.db)
    actions = {e.action for e in events}
    # with PHI_SURFACE=slack the status reply shows the name (a PHI view); in portal mode it
    # links to the contact card and records a plain view
    looked = "phi.viewed" if bot.ctx.settings.phi_surface == "slack" else "candidate.viewed"
    assert {"candidate.created", "call.logged", looked} <= actions
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert len({e.hash for e in events}) == len(events)

    code, out = verify()
    assert code == 0, out
    assert out.startswith(f"audit trail intact: {len(events)} events, last {events[-1].hash[:16]} at ")


def test_a_tick_of_hundreds_of_events_is_chained_like_single_ones(bot: Bot, env: str) -> None:
    """A scheduler tick writes its events in bulk (COPY on PostgreSQL): 150 callbacks reminded and
    then missed are each in the chain, in order, with their ids, and the trail verifies."""
    import time_machine

    from app.scheduler import run_job
    from tests.test_callback_reminders import seed_due_reminders

    start = dt.datetime(2026, 11, 24, 14, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        seed_due_reminders(bot, 150)
        run_job(bot.ctx, "callbacks")  # 150 reminders: one event for the batch
        traveller.move_to(start + dt.timedelta(hours=2), tick=False)
        run_job(bot.ctx, "callbacks")  # 150 now overdue: one `callback.missed` each
    events = chain(bot.db)
    missed = [e for e in events if e.action == "callback.missed"]
    [batch] = [e for e in events if e.action == "callback.reminded"]
    assert len(missed) == 150 and len({e.entity_id for e in missed}) == 150
    assert len(batch.after["reminded"]) == 150
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(e.id is not None for e in events)
    code, out = verify()
    assert code == 0, out
    assert out.startswith(f"audit trail intact: {len(events)} events")


def test_an_event_edited_by_the_owner_is_reported(bot: Bot, env: str) -> None:
    work_through_the_app(bot)
    victim = chain(bot.db)[3]
    as_owner(bot.db, "UPDATE audit_events SET actor = 'U0SOMEONE' WHERE id = :id", id=victim.id)

    code, out = verify()
    assert code == 1
    assert out.startswith(f"audit trail BROKEN at event {victim.id} (seq 4, ")
    assert "changed after it was written (hash mismatch). The 3 events before it are intact." in out


def test_an_edit_whose_hash_was_recomputed_breaks_the_next_link(bot: Bot, env: str) -> None:
    work_through_the_app(bot)
    events = chain(bot.db)
    victim, after = events[2], events[3]
    forged = {"at": victim.at, "actor": "U0SOMEONE", "action": victim.action,
              "entity": victim.entity, "entity_id": victim.entity_id, "before": victim.before,
              "after": victim.after, "reason": victim.reason}
    as_owner(bot.db, "UPDATE audit_events SET actor = 'U0SOMEONE', hash = :h WHERE id = :id",
             id=victim.id, h=audit.event_hash(victim.seq, victim.prev_hash, forged))

    code, out = verify()
    assert code == 1
    assert f"BROKEN at event {after.id} (seq 4, " in out and "does not follow" in out


def test_a_deleted_middle_event_is_reported(bot: Bot, env: str) -> None:
    work_through_the_app(bot)
    events = chain(bot.db)
    as_owner(bot.db, "DELETE FROM audit_events WHERE id = :id", id=events[4].id)

    code, out = verify()
    assert code == 1
    assert f"BROKEN at event {events[5].id} (seq 6, " in out
    assert "its predecessor (seq 5) is missing" in out


def test_a_rewritten_chain_is_caught_by_an_anchor_kept_outside_the_database(
    bot: Bot, env: str
) -> None:
    """Plain SHA-256 can be recomputed by whoever may write the table: the head hash that verify
    prints, kept elsewhere (ticket, log), is the anchor that a rewritten chain no longer has."""
    work_through_the_app(bot)
    code, out = verify()
    anchor = out.split(" last ")[1].split()[0]
    events = chain(bot.db)
    prev = events[1].hash
    for e in events[2:]:  # rewrite everything from the third event on, consistently
        values = {"at": e.at, "actor": "U0SOMEONE", "action": e.action, "entity": e.entity,
                  "entity_id": e.entity_id, "before": e.before, "after": e.after, "reason": e.reason}
        h = audit.event_hash(e.seq, prev, values)
        as_owner(bot.db, "UPDATE audit_events SET actor = 'U0SOMEONE', prev_hash = :p, hash = :h "
                         "WHERE id = :id", p=prev, h=h, id=e.id)
        prev = h

    assert verify()[0] == 0  # consistent on its own…
    code, out = verify("--anchor", anchor)
    assert code == 1  # …but not with what was recorded before
    assert f"anchor {anchor} is no longer in the chain" in out
    assert verify("--anchor", "not-a-hash")[0] == 2


def test_truncate_is_refused(db: Database) -> None:
    with db.session() as s:
        audit.record(s, actor="U0COORD01", action="candidate.viewed", entity="candidate",
                     entity_id="ALZ-0001")
    # SQLite has no TRUNCATE; a DELETE without WHERE is its equivalent, and its trigger fires
    wipe = "TRUNCATE audit_events" if db.is_postgres else "DELETE FROM audit_events"
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(wipe))
    assert len(chain(db)) == 1


def test_concurrent_writers_never_fork_the_chain(db: Database) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(15):
                with db.session() as s:
                    audit.record(s, actor=f"U{n}", action="x", entity="e", entity_id=i)
                    audit.record_many(s, [{"actor": f"U{n}", "action": "y", "entity": "e",
                                           "entity_id": i}])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.engine.connect() as conn:
        verdict, _ = audit.verify(audit.chain_rows(conn))
    assert verdict.intact and verdict.events == 6 * 15 * 2


def test_events_of_a_failed_unit_of_work_or_savepoint_are_not_written(db: Database) -> None:
    from storage.db import savepoint

    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.session() as s:
        audit.record(s, actor="U1", action="lost", entity="e", entity_id=1)
        raise Boom
    with db.session() as s:
        audit.record(s, actor="U1", action="kept", entity="e", entity_id=1)
        try:
            with savepoint(s):
                audit.record(s, actor="U1", action="rolled-back", entity="e", entity_id=1)
                raise Boom
        except Boom:
            pass
        with savepoint(s):
            audit.record(s, actor="U1", action="released", entity="e", entity_id=1)
    events = chain(db)
    assert [(e.seq, e.action) for e in events] == [(1, "kept"), (2, "released")]


def test_events_written_before_the_upgrade_are_chained_by_the_migration(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0002")
    t0 = dt.datetime(2026, 3, 8, 6, 59, 59, 123456)  # naive UTC, as stored
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        for i, (before, after) in enumerate([(None, {"status": "new", "n": 1}),
                                             ({"b": [1, 2.5, None]}, {"é": "ü"}), (None, None)]):
            conn.execute(text(
                "INSERT INTO audit_events (at, actor, action, entity, entity_id, before, after, "
                "reason) VALUES (:at, 'U1', 'old', 'candidate', 'ALZ-0001', :b, :a, :r)"),
                {"at": t0 + dt.timedelta(seconds=i), "r": None if i else "first",
                 "b": None if before is None else json.dumps(before),
                 "a": None if after is None else json.dumps(after)})
    engine.dispose()
    migrate.upgrade(empty_url)
    db = Database(empty_url)
    try:
        with db.session() as s:
            audit.record(s, actor="U2", action="new", entity="candidate", entity_id="ALZ-0001")
        events = chain(db)
        assert [(e.seq, e.action) for e in events] == [(1, "old"), (2, "old"), (3, "old"), (4, "new")]
        with db.engine.connect() as conn:
            verdict, _ = audit.verify(audit.chain_rows(conn))
        assert verdict.intact and verdict.events == 4
    finally:
        db.dispose()


# ----- PostgreSQL: the app's role cannot rewrite the trail -----

@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
          phi_surface: str) -> Iterator[tuple[str, str, str, str]]:
    """An owner role with its own database (it migrates) and a login role for the app."""
    admin = _pg_admin_url()
    assert admin is not None
    tag = uuid.uuid4().hex[:8]
    owner, app, name = f"audit_owner_{tag}", f"audit_app_{tag}", f"audit_roles_{tag}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{owner}" LOGIN'))
        conn.execute(text(f'CREATE ROLE "{app}" LOGIN'))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))
    base = admin.split("://", 1)[0] + "://{}@" + admin.split("@", 1)[1].rsplit("/", 1)[0] + "/" + name
    monkeypatch.chdir(tmp_path)
    for var, value in (("SLACK_BOT_TOKEN", BOT_TOKEN), ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
                       ("PRESCREEN_ENCRYPTION_KEYS", ENCRYPTION_KEY),
                       *phi_surface_env(phi_surface).items()):
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("PRESCREEN_REQUIRE_SEPARATE_DB_ROLE", raising=False)
    yield owner, app, base.format(owner), base.format(app)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'DROP ROLE IF EXISTS "{app}"'))
        conn.execute(text(f'DROP ROLE IF EXISTS "{owner}"'))
    engine.dispose()


def settings_for(url: str, **kw: Any) -> Settings:
    return Settings(_env_file=None, slack_bot_token=BOT_TOKEN,  # type: ignore[call-arg]
                    slack_signing_secret=SIGNING_SECRET, database_url=url,
                    prescreen_encryption_keys=ENCRYPTION_KEY, **kw)


@pytest.mark.postgres_only
@pytest.mark.skipif(not is_postgres(), reason="needs a PostgreSQL DATABASE_URL")
def test_the_app_role_may_only_insert_and_select_on_the_trail(
    roles: tuple[str, str, str, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner, app, owner_url, app_url = roles
    # the owner migrates; nobody else may write the trail yet, and migrate says so
    monkeypatch.setenv("DATABASE_URL", owner_url)
    code, out = run("migrate")
    assert code == 0, out
    assert f"note: no role but {owner} may write the audit trail" in out
    code, out = run("db", "grant-app-role", app)
    assert code == 0 and f'GRANT SELECT, INSERT ON "audit_events" TO "{app}";' in out
    assert run("db", "grant-app-role", f"{app}; DROP TABLE x")[0] == 2
    assert run("db", "grant-app-role", app, "--apply")[0] == 0
    code, out = run("migrate")
    assert f"app role {app} may only INSERT and SELECT on the audit trail" in out

    # the app, as its role, does its work and writes the trail
    monkeypatch.setenv("DATABASE_URL", app_url)
    code, out = run("studies", "import", str(FIXTURES / "studies.yaml"))
    assert code == 0, out
    app_db, owner_db = Database(app_url), Database(owner_url)
    try:
        n = len(chain(app_db))
        assert n > 0
        # …but cannot change, remove, empty or unprotect it
        for sql in ("UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events",
                    "TRUNCATE audit_events", "DROP TRIGGER audit_events_no_change ON audit_events",
                    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change",
                    "DROP TABLE audit_events"):
            with pytest.raises(DatabaseError, match=r"permission denied|must be owner"), \
                    app_db.engine.begin() as conn:
                conn.execute(text(sql))
        assert run("audit", "verify")[1].startswith(f"audit trail intact: {n} events")

        # the start-up check: quiet for the app role, a warning (or refusal) for the owner
        assert check_running_role(settings_for(app_url), app_db).message is None
        warn = check_running_role(settings_for(owner_url), owner_db)
        assert not warn.refuse and warn.message is not None
        assert warn.message.startswith(f"database role {owner} can rewrite the audit trail (owner)")
        monkeypatch.setenv("DATABASE_URL", owner_url)
        monkeypatch.setenv("PRESCREEN_REQUIRE_SEPARATE_DB_ROLE", "true")
        capsys.readouterr()
        assert run("worker")[0] == 1
        assert f"database role {owner} can rewrite the audit trail (owner)" in capsys.readouterr().err

        # an UPDATE grant given by mistake is named at migrate and at start
        with owner_db.engine.begin() as conn:
            conn.execute(text(f'GRANT UPDATE ON audit_events TO "{app}"'))
        code, out = run("migrate")
        assert f"warning: app role {app} can rewrite the audit trail (UPDATE)" in out
        check = check_running_role(settings_for(app_url, prescreen_require_separate_db_role=True),
                                   app_db)
        assert check.refuse and check.message is not None and "(UPDATE)" in check.message
    finally:
        app_db.dispose()
        owner_db.dispose()


def test_a_second_writer_with_the_same_seq_is_refused(db: Database) -> None:
    """The unique seq is the last line of defence if the lock were ever bypassed."""
    with db.session() as s:
        audit.record(s, actor="U1", action="a", entity="e", entity_id=1)
    (first,) = chain(db)
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_events (at, actor, action, entity, entity_id, seq, "
                          "prev_hash, hash) VALUES (:at, 'U2', 'b', 'e', '1', 1, :p, :h)"),
                     {"at": dt.datetime(2026, 1, 1), "p": audit.GENESIS, "h": first.hash})
