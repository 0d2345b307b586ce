"""Story: the sandbox runs only on purpose. Someone trying the bot starts it with nothing set and
gets the sandbox, on its own database file and key, never on a real one. A deployment that lost
its SLACK_BOT_TOKEN but still has any real setting (a Slack secret or app token, encryption keys,
a database URL, Microsoft Graph credentials, a public HOST) does not fall back to the sandbox:
`run`, `serve`, `worker` and `jobs run` stop with exit code 2 and one line naming the settings,
and `sandbox reset` never wipes a real database or its audit trail. The console answers only
pages of its own loopback address and only JSON, so a web page the user happens to visit (or a
DNS-rebinding host name) cannot drive it."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app import cli
from app.runtime import Runtime, build_runtime
from bot.config import Settings, load_settings
from bot.studies.importer import import_studies
from storage import audit, migrate
from storage.db import Database
from storage.models import AuditEvent, Candidate, Member
from tests.conftest import ENCRYPTION_KEY, FIXTURES, _QuietHandler, _ThreadingWSGIServer

CASEY = "U0COORD01"
REFUSE_WITHIN = 30  # seconds; a refused start is immediate, a sandbox that starts never returns
GRAPH_SECRET = "graph-client-secret-value"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"
# Each of these alone means "a real deployment that lost its bot token", not "try the sandbox".
REAL_SETTINGS = {
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "SLACK_APP_TOKEN": "xapp-1-A0SANDBOX-1-0123456789abcdef",
    "PRESCREEN_ENCRYPTION_KEYS": ENCRYPTION_KEY,
    "DATABASE_URL": None,  # the real database of the test (SQLite file or PostgreSQL)
    "HOST": "0.0.0.0",
    "MS_TENANT_ID": "contoso.onmicrosoft.com",
    "MS_CLIENT_ID": "0b7e3c1a-7f0e-4c55-9d3c-4a1d5e6f7a8b",
    "MS_CLIENT_SECRET": GRAPH_SECRET,
    "MS_CLIENT_CERT_PATH": "/etc/prescreen/graph.pem",
}
_NOT_INHERITED = ("SLACK_", "MS_", "PRESCREEN_", "DATABASE_URL", "HOST", "PORT", "DATA_DIR",
                  "GRAPH_API_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nothing_set() -> dict[str, str]:
    """The environment of someone who has configured nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env.update(PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    return env


@dataclass
class Snapshot:
    members: list[str]
    candidates: int
    audit_events: int


def snapshot(url: str) -> Snapshot:
    db = Database(url)
    try:
        with db.session() as s:
            return Snapshot(sorted(s.scalars(select(Member.slack_user_id))),
                            s.scalar(select(func.count()).select_from(Candidate)) or 0,
                            s.scalar(select(func.count()).select_from(AuditEvent)) or 0)
    finally:
        db.dispose()


def prescreen_bot(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run the CLI as an operator would; a process still running after REFUSE_WITHIN seconds has
    started (the sandbox, here) and fails the test."""
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=REFUSE_WITHIN)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"`prescreen-bot {' '.join(args)}` started the sandbox instead of refusing")
    return proc.returncode, out, err


@pytest.fixture
def real_db(studies: Database, database_url: str) -> str:
    """A real database: the fixture studies and members, and some audit history."""
    with studies.session() as s:
        for n in range(3):
            audit.record(s, actor="U0ADMIN01", action="candidate.viewed", entity="candidate",
                         entity_id=n + 1)
    return database_url


def _one_refusal_line(code: int, err: str, *names: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    line = lines[0]
    assert "SLACK_BOT_TOKEN is not set" in line and "refusing to start the sandbox" in line
    for name in names:
        assert name in line
    for value in (SIGNING_SECRET, GRAPH_SECRET, ENCRYPTION_KEY):
        assert value not in line, "a secret was echoed"
    return line


@pytest.mark.parametrize("setting", sorted(REAL_SETTINGS))
def test_one_real_setting_without_a_bot_token_refuses_the_sandbox(
        setting: str, real_db: str, tmp_path: Path) -> None:
    env = nothing_set()
    env[setting] = REAL_SETTINGS[setting] or real_db
    before = snapshot(real_db)
    code, _out, err = prescreen_bot(["run", "--port", str(_free_port())], env, tmp_path)
    _one_refusal_line(code, err, setting)
    assert snapshot(real_db) == before, "the real database was not touched"
    assert not (tmp_path / "data").exists(), "no sandbox database or key was created"


def test_a_public_host_on_the_command_line_refuses_the_sandbox(tmp_path: Path) -> None:
    code, _out, err = prescreen_bot(["run", "--host", "0.0.0.0", "--port", str(_free_port())],
                                    nothing_set(), tmp_path)
    assert "0.0.0.0" in _one_refusal_line(code, err, "HOST")


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["jobs", "run", "outbox"]],
                         ids=["serve", "worker", "jobs-run"])
def test_every_process_refuses_and_names_all_the_real_settings(
        command: list[str], real_db: str, tmp_path: Path) -> None:
    env = {**nothing_set(), "DATABASE_URL": real_db, "PRESCREEN_ENCRYPTION_KEYS": ENCRYPTION_KEY}
    if command == ["serve"]:
        command = [*command, "--port", str(_free_port())]
    before = snapshot(real_db)
    code, _out, err = prescreen_bot(command, env, tmp_path)
    line = _one_refusal_line(code, err, "PRESCREEN_ENCRYPTION_KEYS and DATABASE_URL are")
    assert "Set SLACK_BOT_TOKEN, or unset them to try the sandbox." in line
    assert snapshot(real_db) == before


def test_lead_import_without_keys_never_uses_the_sandbox_key_on_a_real_database(
        real_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith(_NOT_INHERITED):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", real_db)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["leads", "import", str(FIXTURES / "leads_web-ads.csv"), "--study", "MDD",
                     "--source", "web-ads"], out=io.StringIO())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "PRESCREEN_ENCRYPTION_KEYS" in err[0]
    assert snapshot(real_db).candidates == 0
    assert not (tmp_path / "data" / "sandbox.key").exists()


def test_with_nothing_set_the_sandbox_starts_on_its_own_database_and_key(tmp_path: Path) -> None:
    """`prescreen-bot run` in a folder that also holds a real database at the default path: the
    sandbox opens only data/prescreen-sandbox.db and its own data/sandbox.key."""
    real = tmp_path / "data" / "prescreen.db"
    migrate.upgrade(f"sqlite:///{real}")
    db = Database(f"sqlite:///{real}")
    import_studies(db, FIXTURES / "studies.yaml", actor="test")
    db.dispose()
    real_sha = hashlib.sha256(real.read_bytes()).hexdigest()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "run", "--port", str(port)],
                            env=nothing_set(), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(url + "/sandbox/state", params={"user": CASEY},
                                timeout=10).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # still starting
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the sandbox did not come up in 90 s"
            time.sleep(0.3)
        assert "blockkit.js" in requests.get(url + "/", timeout=5).text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert hashlib.sha256(real.read_bytes()).hexdigest() == real_sha, "the real database was opened"
    own = snapshot(f"sqlite:///{tmp_path / 'data' / 'prescreen-sandbox.db'}")
    assert own.candidates == 26 and CASEY in own.members
    key = tmp_path / "data" / "sandbox.key"
    assert key.exists() and key.stat().st_mode & 0o777 == 0o600


def test_the_example_configuration_copied_as_is_still_tries_the_sandbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_NOT_INHERITED):
            monkeypatch.delenv(name)
    example = Path(__file__).parent.parent / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.sandbox and settings.sandbox_conflicts() == []
    assert settings.database_url == "sqlite:///data/prescreen-sandbox.db"


# ----- the console answers only itself -----

@dataclass
class Console:
    url: str
    port: int
    runtime: Runtime

    def ephemerals(self) -> int:
        return len(self.runtime.sandbox.standin.ephemerals(CASEY))


@pytest.fixture
def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    from wsgiref.simple_server import make_server

    for name in list(os.environ):
        if name.startswith(_NOT_INHERITED):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    port = _free_port()
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", port=port,  # type: ignore[call-arg]
                        outbox_channel_interval=0, log_level="WARNING")
    url = f"http://127.0.0.1:{port}"
    rt = build_runtime(settings, app_url=url)
    server = make_server("127.0.0.1", port, rt.web, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Console(url, port, rt)
    server.shutdown()
    server.server_close()
    rt.close()


HELP = {"user": CASEY, "text": "/prescreen help", "channel": "C0ALZ0001"}


def test_the_console_drives_the_app_from_its_own_page(console: Console) -> None:
    for host in ("127.0.0.1", "localhost"):
        origin = f"http://{host}:{console.port}"
        before = console.ephemerals()
        resp = requests.post(console.url + "/sandbox/command", json=HELP, timeout=10,
                             headers={"Origin": origin, "Host": f"{host}:{console.port}"})
        assert resp.status_code == 200 and resp.json()["ok"]
        assert console.ephemerals() == before + 1


@pytest.mark.parametrize("origin", ["https://evil.example", "null",
                                    "http://127.0.0.1:1", "http://127.0.0.1.evil.example"])
def test_a_page_on_another_site_cannot_drive_the_console(console: Console, origin: str) -> None:
    for path, body in (("/sandbox/command", HELP), ("/sandbox/clock", {"minutes": 60})):
        resp = requests.post(console.url + path, json=body, headers={"Origin": origin}, timeout=10)
        assert resp.status_code == 403
    assert console.ephemerals() == 0
    drift = console.runtime.sandbox.clock.now() - dt.datetime.now(dt.UTC)
    assert drift < dt.timedelta(minutes=1), "the clock did not move"


@pytest.mark.parametrize("host", ["evil.example", "rebind.evil.example:{port}",
                                  "192.168.1.20:{port}", "127.0.0.1:1"])
def test_a_host_name_that_is_not_loopback_is_refused(console: Console, host: str) -> None:
    """DNS rebinding: a foreign name resolved to 127.0.0.1 reaches the port, but not the console."""
    headers = {"Host": host.format(port=console.port)}
    assert requests.post(console.url + "/sandbox/command", json=HELP, headers=headers,
                         timeout=10).status_code == 403
    for path in ("/", "/sandbox/state?user=" + CASEY, "/static/console.js"):
        assert requests.get(console.url + path, headers=headers, timeout=10).status_code == 403
    assert console.ephemerals() == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_only_json_is_accepted(console: Console, content_type: str | None) -> None:
    """A form post or a no-cors fetch (no Origin from old browsers) sends no JSON content type."""
    headers = {"Content-Type": content_type} if content_type else {}
    resp = requests.post(console.url + "/sandbox/command", data=json.dumps(HELP).encode(),
                         headers=headers, timeout=10)
    assert resp.status_code == 415
    assert console.ephemerals() == 0


def test_the_console_page_cannot_be_framed(console: Console) -> None:
    page = requests.get(console.url + "/", timeout=10)
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


# ----- sandbox reset -----

def test_sandbox_reset_refuses_a_real_database_and_keeps_its_audit_trail(
        real_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith(_NOT_INHERITED):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", real_db)
    monkeypatch.chdir(tmp_path)
    before = snapshot(real_db)
    assert before.audit_events >= 3

    assert cli.main(["sandbox", "reset"], out=io.StringIO()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DATABASE_URL" in err[0] and "nothing was changed" in err[0]
    assert snapshot(real_db) == before
    db = Database(real_db)
    try:
        with pytest.raises(DBAPIError), db.engine.begin() as conn:
            conn.execute(text("UPDATE audit_events SET reason = 'rewritten'"))
        with pytest.raises(DBAPIError), db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events"))
    finally:
        db.dispose()
    assert snapshot(real_db) == before, "the audit trail is still append-only"
