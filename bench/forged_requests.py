"""CPU spent refusing forged requests: the web edge (signature on the raw bytes, body read only up
to the limit) against the path it replaced (decode the body, let Bolt parse it, then verify).

Calls the WSGI application directly, so the numbers are the application's CPU per request, not
the HTTP server's. Usage: python -m bench.forged_requests [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.request import BoltRequest

from app.web import MAX_BODY, SlackWebApp
from bench._harness import table
from sandbox.slack_standin.sender import sign
from storage.db import Database

SECRET = "bench-signing-secret"
FORM = "application/x-www-form-urlencoded"
MIB = 1024 * 1024


def form_body(size: int) -> bytes:
    """A url-encoded form of many small fields, the costliest shape to parse."""
    unit = b"field=value&"
    return (unit * (size // len(unit) + 1))[:size]


def environ(body: bytes, headers: dict[str, str], *, chunked: bool = False) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "",
        "REMOTE_ADDR": "192.0.2.1", "CONTENT_TYPE": FORM, "wsgi.input": io.BytesIO(body),
    }
    if chunked:  # as gunicorn presents a chunked body: no length, input ends at the body's end
        env.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    else:
        env["CONTENT_LENGTH"] = str(len(body))
    env.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    return env


def edge_app() -> SlackWebApp:
    bolt = App(signing_secret=SECRET, token="xoxb-bench", token_verification_enabled=False,
               request_verification_enabled=False)
    return SlackWebApp(bolt, Database("sqlite://"), signing_secret=SECRET)


def previous_path() -> Callable[[dict[str, Any]], int]:
    """What the app did before: read the declared length (a body without one was taken as
    empty), decode it, hand it to Bolt, which parses the body when the request is built and
    verifies the signature afterwards."""
    bolt = App(signing_secret=SECRET, token="xoxb-bench", token_verification_enabled=False)

    def call(env: dict[str, Any]) -> int:
        length = int(env.get("CONTENT_LENGTH") or 0)
        body = env["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").lower(): [v] for k, v in env.items()
                   if k.startswith("HTTP_")}
        headers["content-type"] = [env["CONTENT_TYPE"]]
        try:
            return bolt.dispatch(BoltRequest(body=body.decode("utf-8"), headers=headers)).status
        except Exception:
            return 500

    return call


def cpu_per_request(call: Callable[[dict[str, Any]], int], make_env: Callable[[], dict[str, Any]],
                    repeat: int) -> tuple[float, int]:
    samples, status = [], 0
    for _ in range(repeat):
        env = make_env()
        started = time.process_time()
        status = call(env)
        samples.append(time.process_time() - started)
    return statistics.median(samples), status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    for name in ("prescreen.web", "slack_bolt"):  # one refusal line per request is not the point
        logging.getLogger(name).setLevel(logging.ERROR)

    edge = edge_app()

    def via_edge(env: dict[str, Any]) -> int:
        out: list[str] = []
        edge(env, lambda status, _headers: out.append(status))
        return int(out[0].split()[0])

    before = previous_path()
    big, at_limit = form_body(2 * MIB), form_body(MAX_BODY)
    ts = str(int(time.time()))
    wrong = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign("not-the-secret", ts, at_limit)}
    cases: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("unsigned 2 MiB form, Content-Length", lambda: environ(big, {})),
        ("unsigned 2 MiB form, chunked", lambda: environ(big, {}, chunked=True)),
        ("unsigned 1 MiB form", lambda: environ(at_limit, {})),
        ("wrong secret, 1 MiB form", lambda: environ(at_limit, wrong)),
    ]
    rows = []
    for name, make_env in cases:
        old_cpu, old_status = cpu_per_request(before, make_env, args.repeat)
        new_cpu, new_status = cpu_per_request(via_edge, make_env, args.repeat)
        rows.append((name, f"{old_cpu * 1000:.1f} ms", str(old_status),
                     f"{new_cpu * 1000:.2f} ms", str(new_status),
                     f"{old_cpu / new_cpu:.0f}x" if old_cpu > new_cpu > 0 else "-"))
    print(f"CPU per refused request (median of {args.repeat}; body limit {MAX_BODY // 1024} KiB)\n")
    print(table(rows, ("request", "before", "status", "edge", "status", "less")))
    print("\nbefore: a chunked body was taken as empty (read nothing), so it cost nothing and was"
          " never seen; the edge reads it up to the limit and refuses it.")


if __name__ == "__main__":
    main()
