"""Story: the operator watches the bot with Prometheus. /metrics is off unless configured; with
METRICS_TOKEN it answers only to that bearer token; the figures move as coordinators work and
the outbox delivers; no label ever carries anything but our own fixed words; LOG_FORMAT=json
writes one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app.runtime import build_runtime
from app.scheduler import job_specs
from bot import outbox
from bot.config import Settings
from bot.logging_setup import JsonFormatter
from integrations import metrics
from sandbox.slack_standin import SlackSender, SlackStandin
from storage.db import Database
from tests.conftest import (
    BOT_TOKEN,
    ENCRYPTION_KEY,
    SIGNING_SECRET,
    TEAM_ID,
    Bot,
    python_argv,
    serve_wsgi,
)

TOKEN = "metrics-token-for-the-test"
COORD = "U0COORD01"


@pytest.fixture
def watched(settings: Settings, studies: Database, standin: SlackStandin) -> Iterator[Bot]:
    """The app with METRICS_TOKEN set."""
    runtime = build_runtime(settings.model_copy(update={"metrics_token": TOKEN}), db=studies,
                            migrate_db=False)
    server, url = serve_wsgi(runtime.web)
    sender = SlackSender(url + "/slack/events", SIGNING_SECRET, standin, team_id=TEAM_ID)
    yield Bot(url=url, runtime=runtime, standin=standin, slack=sender)
    server.shutdown()
    server.server_close()


def scrape(bot: Bot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = requests.get(bot.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(resp.text) for s in fam.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_do_not_exist_unless_configured(bot: Bot) -> None:
    assert requests.get(bot.url + "/metrics", timeout=10).status_code == 404
    assert requests.get(bot.url + "/metrics", headers={"Authorization": "Bearer x"},
                        timeout=10).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                    f"bearer{TOKEN}", TOKEN])
def test_anything_but_the_bearer_token_gets_401(watched: Bot, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    resp = requests.get(watched.url + "/metrics", headers=headers, timeout=10)
    assert resp.status_code == 401
    assert "prescreen" not in resp.text


def test_figures_move_after_a_request_and_a_delivery(watched: Bot) -> None:
    before = scrape(watched)
    resp = watched.slack.slash_command(COORD, text="help", channel_id="C0ALZ0001")
    assert resp.status_code == 200
    with watched.db.session() as s:
        outbox.post(watched.ctx, s, key="metrics-test-1", kind="admin_alert", channel=COORD,
                    text="A note for the metrics test")
    queued = scrape(watched)
    assert value(queued, "prescreen_ack_seconds_count", kind="command") == \
        value(before, "prescreen_ack_seconds_count", kind="command") + 1
    assert value(queued, "prescreen_outbox_depth") >= 1
    watched.deliver()
    after = scrape(watched)
    assert value(after, "prescreen_slack_sends_total", result="sent", error="ok") >= \
        value(before, "prescreen_slack_sends_total", result="sent", error="ok") + 1
    assert value(after, "prescreen_outbox_depth") == 0
    assert value(after, "prescreen_outbox_oldest_due_seconds") == 0


def test_no_label_carries_anything_but_our_own_words(watched: Bot) -> None:
    watched.slack.slash_command(COORD, text="status ALZ-0001 Jane Doe 617-555-0100",
                                channel_id="C0ALZ0001")
    metrics.ack("Jane Doe", 0.01)  # a value outside the vocabulary is never a label
    metrics.slack_send("sent", "some free text from Slack")
    metrics.unexpected("anywhere")
    with metrics.timed_job("not-a-job", frozenset(j.name for j in job_specs())):
        pass
    allowed = (metrics.REQUEST_KINDS | metrics.SLACK_ERRORS | metrics.SEND_RESULTS
               | metrics.GRAPH_RESULTS | metrics.WHERE | {j.name for j in job_specs()} | {"other"})
    seen = set()
    for (name, labels), _v in scrape(watched).items():
        if not name.startswith("prescreen_"):
            continue  # the client library's own process and GC series
        for key, val in labels:
            if key == "le":
                float(val)  # a histogram bucket bound
                continue
            seen.add(val)
            assert val in allowed, (key, val)
    assert "other" in seen and "command" in seen


def test_json_log_lines_parse_with_level_logger_kind_and_error_ref() -> None:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("prescreen.test.json")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("plain line")
        try:
            raise ValueError("patient Jane Doe")  # the message never reaches the log
        except ValueError as exc:
            log.error("unexpected error ref=%s in %s", "abc123", "command", exc_info=exc,
                      extra={"error_ref": "abc123", "request_kind": "command"})
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [x["level"] for x in lines] == ["WARNING", "ERROR"]
    assert all(x["logger"] == "prescreen.test.json" for x in lines)
    assert lines[1]["error_ref"] == "abc123" and lines[1]["request_kind"] == "command"
    assert "ValueError" in lines[1]["exception"] and "Jane Doe" not in json.dumps(lines)


def test_settings_read_metrics_and_log_format_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("METRICS_PORT", "9464")
    monkeypatch.setenv("LOG_FORMAT", "json")
    s: Any = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.metrics_token, s.metrics_port, s.log_format) == (TOKEN, 9464, "json")
    assert TOKEN not in repr(s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(env: dict[str, str], tmp_path: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(python_argv("-m", "app.cli", "serve", "--port", str(port)), env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return proc
        except (requests.ConnectionError, requests.Timeout):
            pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "serve did not come up in 60 s"
        time.sleep(0.2)


def _count(text: str, kind: str) -> float:
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "prescreen_ack_seconds_count" and s.labels.get("kind") == kind)


@pytest.mark.parametrize("where", ["token", "port"])
def test_two_gunicorn_workers_report_one_sum(where: str, studies: Database, database_url: str,
                                             standin: SlackStandin, tmp_path: Path) -> None:
    """serve with two workers: whichever worker answers a request or a scrape, /metrics shows
    every request once; a previous run's files are cleaned at start."""
    mp_dir = tmp_path / "prom"
    mp_dir.mkdir()
    (mp_dir / "counter_99999.db").write_bytes(b"left over from an earlier run")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MS_", "METRICS"))}
    env.update(DATABASE_URL=database_url, SLACK_BOT_TOKEN=BOT_TOKEN,
               SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=standin.url,
               PRESCREEN_ENCRYPTION_KEYS=ENCRYPTION_KEY, PHI_SURFACE="slack", WEB_CONCURRENCY="2",
               PROMETHEUS_MULTIPROC_DIR=str(mp_dir), PYTHONUNBUFFERED="1")
    metrics_port = free_port()
    if where == "token":
        env["METRICS_TOKEN"] = TOKEN
        url, headers = f"http://127.0.0.1:{port}/metrics", {"Authorization": f"Bearer {TOKEN}"}
    else:
        env["METRICS_PORT"] = str(metrics_port)
        url, headers = f"http://127.0.0.1:{metrics_port}/metrics", {}
    proc = _serve(env, tmp_path, port)
    try:
        assert not (mp_dir / "counter_99999.db").exists()
        sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, standin,
                             team_id=TEAM_ID)
        # at once: each worker's first requests race to create the series
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda _i: sender.slash_command(
                COORD, text="help", channel_id="C0ALZ0001").status_code, range(12)))
        assert codes == [200] * 12
        seen = set()
        for _ in range(6):  # scrapes land on either worker (or the master for METRICS_PORT)
            resp = requests.get(url, headers=headers, timeout=10)
            assert resp.status_code == 200
            seen.add(_count(resp.text, "command"))
        assert seen == {12.0}
        if where == "port":  # the web port has no /metrics then
            assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def rendered() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """This process's series (the phone-system and calendar clients run in the worker)."""
    body, _ = metrics.render()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}


def test_ringcentral_calls_are_timed_and_its_rate_limits_counted() -> None:
    import datetime as dt

    from app.cli.ringcentral import ringcentral_check
    from sandbox.ringcentral_standin import RingCentralStandin

    rc = RingCentralStandin().start()
    try:
        rc.add_extension("casey@example.org", "+16175550101", number="102")
        settings = Settings(_env_file=None, ringcentral_server_url=rc.url,  # type: ignore[call-arg]
                            ringcentral_client_id=rc.client_id,
                            ringcentral_client_secret=rc.client_secret,
                            ringcentral_jwt=rc.issue_jwt(), public_url="https://prescreen.example.org")
        now = dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)
        before = rendered()
        assert ringcentral_check(settings, "casey@example.org", io.StringIO(), now=now) == 0
        middle = rendered()
        rc.rate_limit(5, retry_after=30, group="Medium")
        assert ringcentral_check(settings, "casey@example.org", io.StringIO(), now=now) == 1
        after = rendered()
    finally:
        rc.stop()
    ok = "prescreen_ringcentral_request_seconds_count"
    assert value(middle, ok, result="ok") >= value(before, ok, result="ok") + 2
    assert value(after, "prescreen_ringcentral_throttled_total") > value(
        middle, "prescreen_ringcentral_throttled_total")
    assert value(after, ok, result="throttled") > value(middle, ok, result="throttled")
