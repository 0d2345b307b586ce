"""Shared fixtures: a real database (SQLite, or PostgreSQL when DATABASE_URL says so), the local
Slack stand-in, and the app served over HTTP so tests talk to it exactly as Slack does."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
import time_machine
from sqlalchemy import create_engine, text

from app.runtime import Runtime, build_runtime
from bot.clock import OffsetClock
from bot.config import Settings
from bot.secure_links import CALLBACK, login_path
from bot.studies.importer import import_studies
from integrations import slack_oidc
from sandbox.slack_standin import SlackSender, SlackStandin
from storage import migrate
from storage.crypto import PHICipher
from storage.db import Database
from storage.models import Base

FIXTURES = Path(__file__).parent / "fixtures"
BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
TEAM_ID = "T0TEST001"
# Fixed, so every import of this module agrees (pytest may import it under two names).
ENCRYPTION_KEY = "cHJlc2NyZWVuLWJvdC10ZXN0LWtleS0wMDAwMDAwMDA="
OIDC_CLIENT_ID = "1234567890.1234567890123"
OIDC_CLIENT_SECRET = "test-oidc-client-secret-0123456789"
# What a production environment needs for the secure page (PHI_SURFACE=portal, the default).
PORTAL_ENV = {"SLACK_OIDC_CLIENT_ID": OIDC_CLIENT_ID, "SLACK_OIDC_CLIENT_SECRET": OIDC_CLIENT_SECRET,
              "PUBLIC_URL": "https://prescreen.example.org"}

USERS = {
    "U0COORD01": ("casey", "casey@example.org", "America/New_York"),
    "U0COORD02": ("sam", "sam@example.org", "America/Chicago"),
    "U0LEAD001": ("lee", "lee@example.org", "America/Chicago"),
    "U0SPONS01": ("pat", "pat@example.org", "America/New_York"),
    "U0STRANGER": ("robin", "robin@example.org", "America/Denver"),
    "U0ADMIN01": ("alex", "alex@example.org", "America/New_York"),
}
CHANNELS = {"C0ALZ0001": "alz-prescreen", "C0MDD0001": "mdd-prescreen", "C0BOSSITE": "site-bos"}


# ----- the session's wall clock -------------------------------------------------------------
# `pytest --now 2026-12-06T23:30:00-07:00` (or PRESCREEN_TEST_NOW=…) runs the whole session as
# if the wall clock read that instant, time flowing on from there, so CI can check that no test
# depends on the real date or hour. Tests that need a fixed business time still set their own
# clock (time-machine or the app's injectable clock), which nests inside this one.

NOW_ENV = "PRESCREEN_TEST_NOW"
_SESSION_TRAVEL = pytest.StashKey[time_machine.travel]()


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 instant with its UTC offset ("Z" or "-07:00"); a naive one is refused."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise pytest.UsageError(f"{NOW_ENV}/--now: {text!r} is not an ISO 8601 date-time") from exc
    if when.tzinfo is None:
        raise pytest.UsageError(f"{NOW_ENV}/--now: {text!r} needs a UTC offset, e.g. Z or -07:00")
    return when


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--now", default=os.environ.get(NOW_ENV) or None, metavar="INSTANT",
                     help=f"run the session as if the wall clock read INSTANT (ISO 8601 with "
                          f"offset); default ${NOW_ENV}, else the real clock")
    add_phi_surface_option(parser)


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("now", default=None)
    if value:
        traveller = time_machine.travel(parse_instant(value), tick=True)
        traveller.start()
        config.stash[_SESSION_TRAVEL] = traveller


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_SESSION_TRAVEL, None)
    if traveller is not None:
        traveller.stop()
        del config.stash[_SESSION_TRAVEL]


def pytest_report_header(config: pytest.Config) -> str:
    value = config.getoption("now", default=None)
    real = "" if value else " (real)"
    return f"wall clock at start: {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}{real}, TZ={time.tzname[0]}"


_CHILD_BOOT = """\
import datetime, sys, time_machine
at, mode, target = sys.argv[1:4]
time_machine.travel(datetime.datetime.fromtimestamp(float(at), datetime.UTC), tick=True).start()
sys.argv = [target if mode == "-m" else "-c", *sys.argv[4:]]
if mode == "-m":
    import runpy
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
"""


def python_argv(mode: str, target: str, *args: str) -> list[str]:
    """`python -m module args…` or `python -c code args…` for a child process that reads the
    same wall clock as this test (the session's --now, or a test's own time travel)."""
    assert mode in ("-m", "-c")
    if not time_machine.escape_hatch.is_travelling():
        return [sys.executable, mode, target, *args]
    return [sys.executable, "-c", _CHILD_BOOT, repr(time.time()), mode, target, *args]


def _pg_admin_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


def is_postgres() -> bool:
    return _pg_admin_url() is not None


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes empty databases (SQLite files, or PostgreSQL databases when DATABASE_URL says so)."""
    admin = _pg_admin_url()
    made: list[str] = []

    def make() -> str:
        if admin is None:
            made.append(f"db{len(made)}.db")
            return f"sqlite:///{tmp_path / made[-1]}"
        name = f"prescreen_mig_{uuid.uuid4().hex[:8]}"
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        made.append(name)
        return admin.rsplit("/", 1)[0] + f"/{name}"

    yield make
    if admin is not None and made:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def empty_url(new_database: Callable[[], str]) -> str:
    """An empty database, not migrated."""
    return new_database()


@pytest.fixture(scope="session")
def db_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: a SQLite file to copy, or a fresh PostgreSQL database."""
    admin = _pg_admin_url()
    if admin is None:
        path = tmp_path_factory.mktemp("template") / "template.db"
        migrate.upgrade(f"sqlite:///{path}")
        yield str(path)
        return
    name = f"prescreen_test_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    yield url
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def database_url(db_template: str, tmp_path: Path) -> str:
    if not is_postgres():
        target = tmp_path / "prescreen.db"
        shutil.copyfile(db_template, target)
        return f"sqlite:///{target}"
    engine = create_engine(db_template)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:  # as superuser, past the audit trail's no-TRUNCATE trigger
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return db_template


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def studies(db: Database) -> Database:
    """The fixture studies and members imported."""
    import_studies(db, FIXTURES / "studies.yaml", actor="test")
    return db


@pytest.fixture
def standin(request: pytest.FixtureRequest) -> Iterator[SlackStandin]:
    server = SlackStandin(bot_token=BOT_TOKEN, team_id=TEAM_ID).start()
    request.node.stash[_STANDIN] = server  # the PHI scan reads its recordings after the test
    for uid, (name, email, tz) in USERS.items():
        server.add_user(uid, name, email=email, tz=tz)
    for cid, name in CHANNELS.items():
        server.add_channel(cid, name, members=list(USERS))
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, standin: SlackStandin, tmp_path: Path, phi_surface: str,
             monkeypatch: pytest.MonkeyPatch) -> Settings:
    for var, value in phi_surface_env(phi_surface).items():  # for the CLI and worker processes
        monkeypatch.setenv(var, value)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=standin.url,
        database_url=database_url,
        prescreen_encryption_keys=ENCRYPTION_KEY,
        data_dir=tmp_path / "data",
        log_level="INFO",
        outbox_channel_interval=0,
        phi_surface=phi_surface,
        public_url=PUBLIC_URL,
    )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@dataclass
class Bot:
    """The running app as Slack sees it: a URL, plus the stand-in it talks to."""

    url: str
    runtime: Runtime
    standin: SlackStandin
    slack: SlackSender

    @property
    def ctx(self) -> Any:
        return self.runtime.ctx

    @property
    def db(self) -> Database:
        return self.runtime.ctx.db

    def deliver(self) -> Any:
        """Run the outbox dispatcher until nothing is due (what the worker does)."""
        from bot.outbox import deliver

        return deliver(self.ctx, max_seconds=20)

    def open_modal(self, user_id: str, text: str = "", channel_id: str = "C0ALZ0001") -> dict[str, Any]:
        before = {v["id"] for v in self.standin.view_stack(user_id)}
        resp = self.slack.slash_command(user_id, text=text, channel_id=channel_id)
        assert resp.status_code == 200, resp.text
        assert not resp.content or not resp.json().get("text"), resp.text
        return self.standin.wait_for(
            lambda s: next((v for v in s.view_stack(user_id) if v["id"] not in before), None),
            message=f"a modal opened for {user_id}")

    def ephemeral_texts(self, user_id: str) -> list[str]:
        return [e.get("text") or "" for e in self.standin.ephemerals(user_id)]

    @property
    def clock(self) -> OffsetClock:
        """The app's clock: `bot.clock.advance(timedelta)` moves the app's time."""
        clock = self.runtime.ctx.clock
        assert isinstance(clock, OffsetClock)
        return clock

    def signed_in(self, user_id: str, next_path: str = "/secure/") -> requests.Session:
        """A browser signed in to the secure page as `user_id`, through the stand-in's Sign in
        with Slack, standing on `next_path`."""
        browser = requests.Session()
        self.standin.sign_in_as(user_id)
        try:
            resp = browser.get(self.url + login_path(next_path), timeout=15)
        finally:
            self.standin.sign_in_as(None)
        assert resp.status_code == 200 and resp.url == self.url + next_path, (resp.status_code,
                                                                               resp.url)
        return browser
    def add_candidate(self, user_id: str, study: str = "ALZ", *, name: str, phone: str,
                      dob: dt.date | None = None, state: str | None = None,
                      consent: bool = True) -> str:
        """A candidate added the way the secure page adds one (portal mode: identifiers never
        pass through Slack); setup, like seeding. Returns the reference code."""
        from bot.leads.intake import OTHER_SOURCE, InboundLead, add_lead

        added = add_lead(self.ctx, InboundLead(
            study_key=study, user_id=user_id, name=name, phone=phone, dob=dob, state=state,
            source=OTHER_SOURCE, consent=consent))
        return added.ref


def serve_wsgi(app: Any) -> tuple[WSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def bot(settings: Settings, studies: Database, standin: SlackStandin) -> Iterator[Bot]:
    server, url = serve_wsgi(None)
    # the secure page signs in with the stand-in's Sign in with Slack, at this server's address
    settings = settings.model_copy(update={
        "public_url": url, "slack_oidc_issuer": standin.base_url,
        "slack_oidc_client_id": OIDC_CLIENT_ID, "slack_oidc_client_secret": OIDC_CLIENT_SECRET})
    standin.register_oidc_client(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, [url + CALLBACK])
    slack_oidc.forget_cache()  # a stand-in of an earlier test may have had this port
    runtime = build_runtime(settings, db=studies, migrate_db=False, clock=OffsetClock())
    server.set_app(runtime.web)
    sender = SlackSender(url + "/slack/events", SIGNING_SECRET, standin, team_id=TEAM_ID)
    yield Bot(url=url, runtime=runtime, standin=standin, slack=sender)
    server.shutdown()
    server.server_close()


# ===== PHI surface and the PHI scan (issue 17) ===============================================
# `--phi-surface portal|slack` (or PRESCREEN_TEST_PHI_SURFACE) runs the suite in that mode,
# portal by default; `@pytest.mark.phi_surface("slack")` pins a test whose subject is entering
# identifiers in Slack. In portal mode every test that used the Slack stand-in is scanned after
# it ran: no identifier the app encrypted during the test (name, phone in any usual writing,
# date of birth in any usual writing, note) may appear in any Slack API call the app made (view
# payloads, blocks, text, metadata), any response_url payload or any ack body it answered.

PHI_SURFACE_ENV = "PRESCREEN_TEST_PHI_SURFACE"
PHI_SURFACES = ("portal", "slack")
PUBLIC_URL = "https://prescreen.example.org"  # where the secure page's links point in tests


def phi_surface_env(mode: str) -> dict[str, str]:
    """The environment a process of the app needs for `mode` (portal: Sign in with Slack)."""
    if mode != "portal":
        return {"PHI_SURFACE": mode}
    return {"PHI_SURFACE": mode, **PORTAL_ENV}


_STANDIN = pytest.StashKey[SlackStandin]()
_ENCRYPTED = pytest.StashKey[list[str]]()


def add_phi_surface_option(parser: pytest.Parser) -> None:
    parser.addoption("--phi-surface", choices=PHI_SURFACES,
                     default=os.environ.get(PHI_SURFACE_ENV) or "portal",
                     help=f"where identifiers live (PHI_SURFACE) for tests not pinned by "
                          f"@pytest.mark.phi_surface; default ${PHI_SURFACE_ENV}, else portal")


def phi_surface_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("phi_surface")
    if marker is not None:
        mode = marker.args[0] if marker.args else None
        if mode not in PHI_SURFACES:
            raise pytest.UsageError(f"{item.nodeid}: phi_surface marker needs 'portal' or 'slack'")
        return str(mode)
    return str(item.config.getoption("phi_surface"))


@pytest.fixture
def phi_surface(request: pytest.FixtureRequest) -> str:
    """The PHI_SURFACE this test runs with: its marker, else --phi-surface."""
    return phi_surface_of(request.node)


@pytest.fixture(autouse=True)
def _encrypted_values(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every plaintext the app (or a test's seeding) encrypts during the test: a spy that records
    and calls through, not a mock."""
    seen: list[str] = []
    if "standin" not in request.fixturenames or request.node.get_closest_marker("no_phi_scan"):
        return seen  # the scan reads what the stand-in recorded: nothing to scan without one
    real = PHICipher.encrypt

    def encrypt(self: PHICipher, value: str) -> str:
        seen.append(value)
        return real(self, value)

    monkeypatch.setattr(PHICipher, "encrypt", encrypt)
    request.node.stash[_ENCRYPTED] = seen
    return seen


def identifier_forms(value: str) -> set[str]:
    """How an identifier may be written, casefolded: as stored, a phone number in national
    digits and the usual US writings, a date of birth in the usual writings."""
    plain = " ".join(value.split())
    forms = {plain.casefold()} if len(plain) >= 4 else set()
    phone = re.fullmatch(r"\+1(\d{3})(\d{3})(\d{4})", plain)
    if phone:
        a, b, c = phone.groups()
        forms |= {a + b + c, f"({a}) {b}-{c}", f"({a}) {b} {c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}",
                  f"{a} {b} {c}", f"({a}){b}-{c}"}
    try:
        day = dt.date.fromisoformat(plain)
    except ValueError:
        day = None
    if day is not None:
        forms |= {f"{day:%m/%d/%Y}", f"{day.month}/{day.day}/{day.year}", f"{day:%m/%d/%y}",
                  f"{day:%b} {day.day}, {day.year}".casefold(),
                  f"{day:%B} {day.day}, {day.year}".casefold(), f"{day:%d.%m.%Y}"}
    return forms


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a payload; a string holding JSON (a view or blocks argument as
    slack_sdk sends it) is opened too."""
    if isinstance(value, str):
        yield value
        if value[:1] in "[{":
            try:
                inner = json.loads(value)
            except ValueError:
                return
            yield from _strings(inner)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)
    elif value is not None:
        yield str(value)


_PHONE_PUNCTUATION = re.compile(r"[\s().\-+]")


def phi_leaks(standin: SlackStandin, identifiers: list[str]) -> list[str]:
    """Where the identifiers appear in what the app sent to Slack: one line per leak naming the
    identifier and the Slack method (or response_url / ack)."""
    forms = {form: value for value in identifiers for form in identifier_forms(value)}
    if not forms:
        return []
    sent: list[tuple[str, Any]] = [(c.method, c.args) for c in standin.calls]
    sent += [("response_url", r.get("payload")) for r in standin.responses]
    sent += [(f"ack of {a.get('kind')}", a.get("body")) for a in list(standin.acks)]
    leaks: list[str] = []
    for where, payload in sent:
        for piece in _strings(payload):
            folded = piece.casefold()
            digits = _PHONE_PUNCTUATION.sub("", folded)
            for form, value in forms.items():
                if form in folded or (form.isdigit() and len(form) >= 10 and form in digits):
                    leak = f"{value!r} (as {form!r}) sent to Slack in {where}"
                    if leak not in leaks:
                        leaks.append(leak)
    return leaks


def assert_no_phi(standin: SlackStandin, identifiers: list[str]) -> None:
    leaks = phi_leaks(standin, identifiers)
    if leaks:
        raise AssertionError("PHI_SURFACE=portal, yet identifiers reached Slack:\n  "
                             + "\n  ".join(leaks))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    result = yield  # a test that failed already is not scanned
    standin = item.stash.get(_STANDIN, None)
    if standin is not None and phi_surface_of(item) == "portal":
        assert_no_phi(standin, item.stash.get(_ENCRYPTED, []))
    return result
