"""Story: Slack (and only Slack) can talk to the bot. A coordinator types `/prescreen help` and
gets the command list at once; a forged, replayed or unsigned request is refused untouched."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import func, select

from app.runtime import add_routes
from app.web import MAX_BODY, WebRequest, WebResponse
from bot import ids
from bot.studies.importer import import_studies
from sandbox.slack_standin import SlackSender, SlackStandin
from sandbox.slack_standin.sender import sign
from storage.models import Base, PrescreenCall
from tests.conftest import BOT_TOKEN, ENCRYPTION_KEY, SIGNING_SECRET, TEAM_ID, Bot, phi_surface_env

ACK_BUDGET_S = 3.0


def test_help_answers_ephemerally_within_the_ack_budget(bot: Bot) -> None:
    started = time.monotonic()
    resp = bot.slack.slash_command("U0COORD01", text="help", channel_id="C0ALZ0001")
    elapsed = time.monotonic() - started

    assert resp.status_code == 200
    assert elapsed < ACK_BUDGET_S
    body = resp.json()
    assert body["response_type"] == "ephemeral"
    help_text = " ".join(b.get("text", {}).get("text", "") for b in body["blocks"])
    assert "/prescreen help" in help_text


def test_unknown_subcommand_explains_and_lists_commands(bot: Bot) -> None:
    resp = bot.slack.slash_command("U0COORD01", text="frobnicate", channel_id="C0ALZ0001")
    body = resp.json()
    text = " ".join(b.get("text", {}).get("text", "") for b in body["blocks"])
    assert "frobnicate" in text
    assert "/prescreen help" in text


def _raw_post(bot: Bot, headers: dict[str, str], body: str) -> requests.Response:
    return requests.post(bot.url + "/slack/events", data=body.encode(), headers=headers, timeout=5)


@pytest.mark.parametrize("tamper", ["wrong_signature", "stale_timestamp", "missing_headers"])
def test_bad_signatures_are_refused_and_nothing_happens(bot: Bot, tamper: str) -> None:
    calls_before = len(bot.standin.calls)
    kwargs = {
        "wrong_signature": {"signing_secret": "not-the-secret"},
        "stale_timestamp": {"timestamp": int(time.time()) - 6 * 60},
        "missing_headers": {"unsigned": True},
    }[tamper]
    resp = bot.slack.slash_command("U0COORD01", text="help", channel_id="C0ALZ0001", **kwargs)

    assert resp.status_code == 401
    assert "prescreen-bot commands" not in resp.text
    time.sleep(0.2)  # anything processed would have called Slack by now
    assert len(bot.standin.calls) == calls_before


def test_unknown_paths_and_methods(bot: Bot) -> None:
    assert requests.get(bot.url + "/nope", timeout=5).status_code == 404
    assert requests.get(bot.url + "/slack/events", timeout=5).status_code == 405


# ---------------------------------------------------------------- forged requests, refused cheaply

NOW = dt.datetime(2026, 3, 8, 14, 30, tzinfo=dt.UTC)  # the edge's clock in these tests
CANARY = "canary-q7x2"  # appears in every forged body; must never reach a log line
FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"


class SetClock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


def _command_body() -> bytes:
    return urlencode({"token": "x", "team_id": TEAM_ID, "user_id": "U0COORD01",
                      "channel_id": "C0ALZ0001", "command": "/prescreen",
                      "text": f"help {CANARY}", "response_url": "http://127.0.0.1:9/r",
                      "trigger_id": "1.2.3"}).encode()


def _event_body(event_id: str = "Ev0EDGE0001") -> bytes:
    """An event Slack would send; processed, it leaves a row behind (the retry de-duplication)."""
    return json.dumps({"type": "event_callback", "team_id": TEAM_ID, "api_app_id": "A0EDGE",
                       "event_id": event_id, "event_time": int(NOW.timestamp()),
                       "event": {"type": "app_home_opened", "user": "U0COORD01", "tab": "home",
                                 "channel": "D0EDGE001", "text": CANARY}}).encode()


DEEP = ("[" * 100_000 + "]" * 100_000).encode()


@dataclass(frozen=True)
class Forged:
    """One forged or malformed request: what is sent, and the answer the edge must give."""

    body: bytes
    content_type: str | None = FORM
    secret: str | None = SIGNING_SECRET  # None: no signature headers at all
    age_s: int = 0  # timestamp = the edge's now - age_s
    timestamp: str | None = None  # sent (and signed) as is, instead of the computed one
    tamper: Callable[[bytes], bytes] | None = None  # changes the body after signing
    extra_headers: tuple[tuple[str, str], ...] = ()
    status: int = 401


FORGED: dict[str, Forged] = {
    "unsigned command": Forged(_command_body(), secret=None),
    "unsigned event": Forged(_event_body(), JSON_TYPE, secret=None),
    "wrong secret": Forged(_command_body(), secret="not-the-secret"),
    "wrong secret, event": Forged(_event_body(), JSON_TYPE, secret="not-the-secret"),
    "stale by 5 min 1 s": Forged(_event_body(), JSON_TYPE, age_s=301),
    "stale by a day": Forged(_command_body(), age_s=86_400),
    "future by 5 min 1 s": Forged(_event_body(), JSON_TYPE, age_s=-301),
    "future by an hour": Forged(_command_body(), age_s=-3600),
    "timestamp abc": Forged(_command_body(), timestamp="abc"),
    "timestamp 1e9": Forged(_command_body(), timestamp="1e9"),
    "timestamp empty": Forged(_command_body(), timestamp=""),
    "timestamp huge": Forged(_command_body(), timestamp="9" * 40),
    "timestamp negative": Forged(_command_body(), timestamp="-1772980200"),
    "timestamp with spaces": Forged(_command_body(), timestamp=" 1772980200 "),
    "altered after signing": Forged(_command_body(), tamper=lambda b: b.replace(b"help", b"stat")),
    "event altered after signing": Forged(_event_body(), JSON_TYPE,
                                          tamper=lambda b: b.replace(b"Ev0EDGE0001", b"Ev0EDGE0002")),
    "bytes appended after signing": Forged(_command_body(), tamper=lambda b: b + b"&x=1"),
    "not UTF-8, signed": Forged(b"text=caf\xe9+" + CANARY.encode(), status=400),
    "not UTF-8, unsigned": Forged(b"text=caf\xe9+" + CANARY.encode(), secret=None),
    "percent-escape not UTF-8, signed": Forged(b"command=%2Fprescreen&text=%FF" + CANARY.encode(),
                                               status=400),
    "nested 100,000 deep, signed": Forged(DEEP, JSON_TYPE, status=400),
    "nested 100,000 deep, unsigned": Forged(DEEP, JSON_TYPE, secret=None),
    "nested 100,000 deep in a form payload, signed": Forged(
        b"payload=" + DEEP.replace(b"[", b"%5B").replace(b"]", b"%5D"), status=400),
    "JSON that is not an object, signed": Forged(b'["' + CANARY.encode() + b'"]', JSON_TYPE,
                                                 status=400),
    "payload that is not JSON, signed": Forged(b"payload=" + CANARY.encode(), status=400),
    "form that starts like JSON, signed": Forged(b"{a=" + CANARY.encode(), status=400),
    "repeated form field, signed": Forged(_command_body() + b"&text=again", status=400),
    "empty body, signed": Forged(b"", status=400),
    "text/plain, signed": Forged(_command_body(), "text/plain", status=415),
    "multipart, signed": Forged(_command_body(), "multipart/form-data; boundary=x", status=415),
    "JSON sent as a form, signed": Forged(_event_body(), "application/xml", status=415),
    "charset latin-1, signed": Forged(_command_body(), FORM + "; charset=latin-1", status=415),
    "no content type, signed": Forged(_command_body(), None, status=415),
    "text/plain, unsigned": Forged(_command_body(), "text/plain", secret=None),
    "two signature headers": Forged(_command_body(), extra_headers=(
        ("X-Slack-Signature", "v0=" + "0" * 64),)),
    "two timestamp headers": Forged(_command_body(), extra_headers=(
        ("X-Slack-Request-Timestamp", str(int(NOW.timestamp()))),)),
    "signature in upper case": Forged(_command_body(), tamper=None, extra_headers=(), secret="UPPER"),
    "content-length not a number": Forged(b"", extra_headers=(("Content-Length", "12abc"),),
                                          status=400),
}


def _sign_headers(case: Forged, body: bytes, now: dt.datetime) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    if case.content_type is not None:
        headers.append(("Content-Type", case.content_type))
    if case.secret is None:
        return headers
    ts = case.timestamp if case.timestamp is not None else str(int(now.timestamp()) - case.age_s)
    if case.secret == "UPPER":
        signature = sign(SIGNING_SECRET, ts, body).upper().replace("V0=", "v0=")
    else:
        signature = sign(case.secret, ts, body)
    return [*headers, ("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", signature)]


def _http(url: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
    """POST /slack/events with exactly these headers (repeats allowed), as raw HTTP."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", "/slack/events", skip_accept_encoding=True)
        if not any(k.lower() == "content-length" for k, _ in headers):
            conn.putheader("Content-Length", str(len(body)))
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _row_counts(bot: Bot) -> dict[str, int]:
    with bot.db.session() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) or 0
                for t in Base.metadata.sorted_tables}


@pytest.fixture
def edge(bot: Bot) -> Bot:
    """The served app with the edge's clock set to NOW."""
    bot.runtime.web.clock = SetClock(NOW)
    return bot


@pytest.mark.parametrize("name", list(FORGED))
def test_forged_stale_and_malformed_requests_get_a_4xx_and_one_quiet_log_line(
        edge: Bot, caplog: pytest.LogCaptureFixture, name: str) -> None:
    case = FORGED[name]
    headers = _sign_headers(case, case.body, NOW)
    body = case.tamper(case.body) if case.tamper else case.body
    headers += list(case.extra_headers)
    before, calls_before = _row_counts(edge), len(edge.standin.calls)
    caplog.clear()
    caplog.set_level(logging.DEBUG)

    status, answer = _http(edge.url, headers, body)

    assert status == case.status, answer
    assert CANARY.encode() not in answer and b"prescreen-bot commands" not in answer
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    record = records[0]
    assert record.name == "prescreen.web" and record.levelno == logging.WARNING
    assert record.exc_info is None and record.exc_text is None and record.stack_info is None
    assert f"({case.status})" in record.getMessage()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    sent = [v for k, v in headers if k.lower().startswith("x-slack") and len(v) >= 3]
    for text in [CANARY, *sent]:
        assert text not in logged
    time.sleep(0.2)  # anything processed would have called Slack or written a row by now
    assert _row_counts(edge) == before
    assert len(edge.standin.calls) == calls_before


@pytest.mark.parametrize(("age_s", "accepted"), [(299, True), (300, True), (301, False),
                                                 (-299, True), (-300, True), (-301, False)])
def test_the_timestamp_window_is_five_minutes_either_side_of_the_clock(
        edge: Bot, age_s: int, accepted: bool) -> None:
    body = _event_body(f"Ev0WINDOW{age_s + 1000}")
    before = _row_counts(edge)["processed_requests"]
    headers = _sign_headers(Forged(body, JSON_TYPE, age_s=age_s), body, NOW)

    status, _ = _http(edge.url, headers, body)

    assert status == (200 if accepted else 401)
    assert _row_counts(edge)["processed_requests"] == before + (1 if accepted else 0)


def test_a_signed_command_is_answered_at_the_edge_clock_not_the_wall_clock(edge: Bot) -> None:
    body = _command_body()
    status, answer = _http(edge.url, _sign_headers(Forged(body), body, NOW), body)
    assert status == 200
    assert b"/prescreen help" in answer


def _raw(url: str, head: bytes, first_bytes: bytes) -> tuple[int, bytes]:
    """Send a request head and the start of its body, then read the answer: a server that waits
    for the rest of a body it will refuse anyway never answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + first_bytes)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line = data.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), data


def test_an_oversized_body_is_refused_from_its_declared_length_without_reading_it(
        edge: Bot, caplog: pytest.LogCaptureFixture) -> None:
    body_start = b"payload=" + CANARY.encode() * 100
    ts = str(int(NOW.timestamp()))
    head = (f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
            f"Content-Length: {MAX_BODY + 1}\r\nX-Slack-Request-Timestamp: {ts}\r\n"
            f"X-Slack-Signature: {sign(SIGNING_SECRET, ts, body_start)}\r\n\r\n").encode()
    before = _row_counts(edge)
    caplog.set_level(logging.DEBUG)
    caplog.clear()

    status, _ = _raw(edge.url, head, body_start)

    assert status == 413
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [(r.name, r.levelno, r.exc_info) for r in records] == [
        ("prescreen.web", logging.WARNING, None)]
    assert "body too large" in records[0].getMessage() and CANARY not in caplog.text
    assert _row_counts(edge) == before


def test_a_body_without_a_length_on_a_server_that_cannot_end_it_is_refused(
        edge: Bot, caplog: pytest.LogCaptureFixture) -> None:
    # The test server (wsgiref) hands over chunked bodies undecoded; gunicorn's case is below.
    head = (f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    status, _ = _raw(edge.url, head, b"10\r\n" + b"x" * 16 + b"\r\n")
    assert status == 411
    assert [(r.name, r.levelno) for r in caplog.records if r.levelno >= logging.INFO] == [
        ("prescreen.web", logging.WARNING)]


# ---------------------------------------------------------------- the largest real payload fits

SLACK_MAX_VIEW_BYTES = 250_000  # views.open/update answer view_too_large above 250 kB
BIG_USER, BIG_CHANNEL = "U0BIGFORM1", "C0BIG0001"


def _big_study_yaml(questions: int, options: int) -> str:
    """A study whose log-call modal is as large as Slack lets the app open: 100 blocks, choice
    questions with long labels and options (non-ASCII, as Slack escapes it)."""
    qs = []
    for i in range(questions):
        text = f"Q{i:02d} Ha tenido síntomas de depresión en las últimas dos semanas — " * 3
        opts = [f"Opción {j:02d}: más de dos veces por semana, según el médico de cabecera"[:75]
                for j in range(options)]
        qs.append({"id": f"q{i:02d}", "text": text[:150], "kind": "choice", "options": opts})
    study = {"key": "BIG", "title": "Large questionnaire", "channel": BIG_CHANNEL,
             "timezone": "America/New_York", "approval_required": False,
             "sites": [{"key": "S1", "name": "Site one", "timezone": "America/New_York"},
                       {"key": "S2", "name": "Site two", "timezone": "America/New_York"}],
             "questions": qs}
    member = {"slack_id": BIG_USER, "timezone": "America/New_York", "roles": {"BIG": "coordinator"}}
    return json.dumps({"studies": [study], "members": [member]})  # JSON is YAML


@pytest.mark.phi_surface("slack")  # the largest modal is the one with the identifier fields
def test_the_largest_view_submission_the_app_can_receive_is_accepted(
        bot: Bot, tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(_big_study_yaml(questions=84, options=9))
    import_studies(bot.db, path, actor="test")
    bot.standin.add_user(BIG_USER, "big")
    bot.standin.add_channel(BIG_CHANNEL, "big-prescreen", members=[BIG_USER])
    view = bot.open_modal(BIG_USER, channel_id=BIG_CHANNEL)
    assert len(view["blocks"]) == 100
    assert 0.9 * SLACK_MAX_VIEW_BYTES < len(json.dumps(view)) <= SLACK_MAX_VIEW_BYTES

    long_text = "ñ" * 2000  # every free-text input at its max_length, each char \u-escaped
    fields: dict[str, Any] = {
        ids.NAME_INPUT: "Ñ" * 100, ids.PHONE_INPUT: "(617) 555-0142", ids.DOB_INPUT: dt.date(1960, 5, 6),
        ids.REGION_INPUT: "MA", ids.CONSENT_INPUT: ["yes"], ids.OUTCOME_SELECT: "considering",
        ids.SITE_SELECT: "S2", ids.NOTES_INPUT: long_text,
        **{f"answer:q{i:02d}": "Opción 08: más de dos veces por semana, según el médico de cabecera"[:75]
           for i in range(84)}}
    values = bot.slack.fill(view["id"], fields)
    size = len(urlencode({"payload": json.dumps({"view": {**view, "state": {"values": values}}})}))
    assert size > 360 * 1024  # the request below is at least this large

    resp = bot.slack.view_submission(BIG_USER, view["id"], values)

    assert resp.status_code == 200, resp.text
    assert not resp.content or resp.json().get("response_action") is None, resp.text
    with bot.db.session() as s:
        call = s.scalars(select(PrescreenCall)).one()
        assert len(call.answers) == 84
        assert bot.ctx.cipher.decrypt(call.notes_enc) == long_text


# ---------------------------------------------------------------- the same under gunicorn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_under_gunicorn_a_chunked_body_is_read_only_up_to_the_limit(
        database_url: str, studies: Any, standin: SlackStandin, tmp_path: Path,
        phi_surface: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MS_"))}
    env.update(DATABASE_URL=database_url, SLACK_BOT_TOKEN=BOT_TOKEN,
               SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=standin.url,
               PRESCREEN_ENCRYPTION_KEYS=ENCRYPTION_KEY, LOG_LEVEL="INFO", PYTHONUNBUFFERED="1",
               WEB_CONCURRENCY="1", **phi_surface_env(phi_surface))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        head = (f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        piece = (CANARY * 6000).encode()[:65536]
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        chunked_status, _ = _raw(url, head, chunk * (MAX_BODY // len(piece) + 1))
        declared = (f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
                    f"Content-Length: {2 * MAX_BODY}\r\n\r\n").encode()
        declared_status, _ = _raw(url, declared, piece)
        sender = SlackSender(url + "/slack/events", SIGNING_SECRET, standin, team_id=TEAM_ID)
        ok = sender.slash_command("U0COORD01", text="help", channel_id="C0ALZ0001")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert (chunked_status, declared_status, ok.status_code) == (413, 413, 200), out
    refusals = [line for line in out.splitlines() if "refused request" in line]
    assert len(refusals) == 2 and all("body too large (413)" in line for line in refusals), out
    assert "Traceback" not in out and CANARY not in out


def test_an_unexpected_failure_in_a_route_logs_where_not_what_was_sent(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    def parse_count(req: WebRequest) -> WebResponse:
        return WebResponse.json({"n": int(req.body.decode())})  # ValueError quoting the body

    add_routes(bot.runtime, {("POST", "/count"): parse_count})
    caplog.set_level(logging.DEBUG)
    resp = requests.post(bot.url + "/count", data=CANARY.encode(),
                         headers={"X-Note": f"note-{CANARY}"}, timeout=5)

    assert resp.status_code == 500 and CANARY not in resp.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == ["prescreen.web"]
    logged = logging.Formatter("%(message)s").format(errors[0])  # with any traceback attached
    assert "ValueError" in logged and "parse_count" in logged
    assert CANARY not in caplog.text and CANARY not in logged
