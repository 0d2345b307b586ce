"""Story: an operator runs the Procfile processes. `serve` answers Slack and /healthz under
gunicorn; `worker` starts, lists its jobs, and stops cleanly on SIGTERM; jobs can be listed and
run once from the CLI."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from app import cli
from app.scheduler import job_specs
from sandbox.slack_standin import SlackSender, SlackStandin
from tests.conftest import BOT_TOKEN, ENCRYPTION_KEY, PORTAL_ENV, SIGNING_SECRET, TEAM_ID, python_argv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def proc_env(database_url: str, standin: SlackStandin, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MS_"))}
    env.update(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=standin.url,
        PRESCREEN_ENCRYPTION_KEYS=ENCRYPTION_KEY,
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        **PORTAL_ENV,
    )
    return env


def _cli(*args: str) -> list[str]:
    return python_argv("-m", "app.cli", *args)  # sharing the test session's clock


def test_serve_answers_healthz_and_signed_commands(proc_env: dict[str, str], standin: SlackStandin,
                                                   tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(_cli("serve", "--port", str(port)), env=proc_env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or slow to answer on a busy machine
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "serve did not come up in 30 s"
            time.sleep(0.2)
        sender = SlackSender(base + "/slack/events", SIGNING_SECRET, standin, team_id=TEAM_ID)
        resp = sender.slash_command("U0COORD01", text="help", channel_id="C0ALZ0001")
        assert resp.status_code == 200
        assert resp.json()["response_type"] == "ephemeral"
        assert sender.slash_command("U0COORD01", text="help", signing_secret="wrong").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def test_serve_refuses_an_unmigrated_database(proc_env: dict[str, str], tmp_path: Path) -> None:
    proc_env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
    res = subprocess.run(_cli("serve", "--port", str(_free_port())), env=proc_env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "run `prescreen-bot migrate`" in res.stderr


def test_worker_logs_its_jobs_and_stops_on_sigterm(proc_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.Popen(_cli("worker"), env=proc_env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "worker started" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=30)
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    for spec in job_specs():
        assert f"job {spec.name} scheduled" in log
    assert f"worker started with {len(job_specs())} jobs" in log
    assert "worker stopped" in log


def test_jobs_list_and_run_once(monkeypatch: pytest.MonkeyPatch, proc_env: dict[str, str],
                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for k, v in proc_env.items():
        monkeypatch.setenv(k, v)
    out = io.StringIO()
    assert cli.main(["jobs", "list"], out=out) == 0
    for spec in job_specs():
        assert spec.name in out.getvalue()
    out = io.StringIO()
    assert cli.main(["jobs", "run", "housekeeping"], out=out) == 0
    assert out.getvalue().startswith("housekeeping:")
    assert cli.main(["jobs", "run", "no-such-job"], out=io.StringIO()) == 2
    assert "no job named 'no-such-job'" in capsys.readouterr().err


def test_keys_generate_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    from storage.crypto import PHICipher

    out = io.StringIO()
    assert cli.main(["keys", "generate"], out=out) == 0
    key = out.getvalue().strip()
    cipher = PHICipher([key])
    assert cipher.decrypt(cipher.encrypt("Jane Roe")) == "Jane Roe"
