"""Shared set-up for the benchmarks: a Slack stand-in here, the real `prescreen-bot serve` in a
subprocess, a generated study, and helpers to print a small result table."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from cryptography.fernet import Fernet

from sandbox.slack_standin import SlackSender, SlackStandin

if TYPE_CHECKING:
    from bot.context import AppContext
    from storage.db import Database

BOT_TOKEN = "xoxb-bench"
SECRET = "bench-signing-secret"
COORD, LEAD = "U0BCOORD1", "U0BLEAD01"
STUDY_YAML = """
studies:
  - key: BEN
    title: Benchmark study
    channel: C0BENCH01
    timezone: America/New_York
    sites:
      - {key: S1, name: Site One, timezone: America/New_York, channel: C0BSITE01}
    questions:
      - {id: age, text: "Age in years", kind: number, eligible: {min: 18, max: 90}}
      - {id: dx, text: "Diagnosed?", kind: yes_no, eligible: {equals: false}}
members:
  - {slack_id: U0BCOORD1, timezone: America/New_York, roles: {BEN: coordinator}}
  - {slack_id: U0BLEAD01, timezone: America/Chicago, roles: {BEN: approver}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def worker_pids(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's workers)."""
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                             text=True, check=False).stdout
    except OSError:
        return []
    return [int(x) for x in out.split()]


def rss_mb(pid: int, *, children: bool = True) -> float:
    """Resident memory of a process and (unless told otherwise) its children (gunicorn master
    + workers), in MiB."""
    total = 0
    pids = [pid] + (worker_pids(pid) if children else [])
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[str]
    standin: SlackStandin
    sender: SlackSender
    env: dict[str, str]
    database_url: str

    def summary(self, values: list[float]) -> tuple[str, str, str]:
        return (f"{percentile(values, 50) * 1000:.1f} ms", f"{percentile(values, 99) * 1000:.1f} ms",
                f"{statistics.mean(values) * 1000:.1f} ms")


@contextmanager
def fresh_database(url: str | None) -> Iterator[str]:
    """A new, empty database for one benchmark run: a temp SQLite file, or a throwaway database
    created on the given PostgreSQL server (dropped afterwards)."""
    if not url or url.startswith("sqlite"):
        yield f"sqlite:///{Path(tempfile.mkdtemp(prefix='prescreen-bench-')) / 'bench.db'}"
        return
    import uuid

    from sqlalchemy import create_engine, text

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"prescreen_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_database(url: str, studies_yaml: str) -> Database:
    """The benchmark's database: schema upgraded, its studies and members imported."""
    from bot.studies.importer import import_studies
    from storage import migrate
    from storage.db import Database

    migrate.upgrade(url)
    db = Database(url)
    with tempfile.TemporaryDirectory(prefix="prescreen-bench-") as tmp:
        path = Path(tmp) / "studies.yaml"
        path.write_text(studies_yaml)
        import_studies(db, path, actor="bench")
    return db


def bench_context(url: str, db: Database, key: str | None = None, clock: Any = None) -> AppContext:
    """An app context whose Slack calls would go nowhere (benchmarks measure the database)."""
    from app.factory import create_context
    from bot.config import Settings

    settings = Settings(_env_file=None, slack_bot_token="xoxb-bench",  # type: ignore[call-arg]
                        slack_signing_secret="s" * 32, slack_api_url="http://127.0.0.1:9/api/",
                        database_url=url,
                        prescreen_encryption_keys=key or Fernet.generate_key().decode(),
                        # portal mode (the default): DMs link the secure page
                        public_url="https://prescreen.example.org", slack_oidc_client_id="bench",
                        slack_oidc_client_secret="bench")
    return create_context(settings, db=db, clock=clock)


def db_label(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


@contextmanager
def served(database_url: str | None, *, web_concurrency: int = 2,
           extra_env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[Served]:
    """`prescreen-bot serve` on a fresh database; its output goes to `log` (or nowhere)."""
    with fresh_database(database_url) as url:
        yield from _served(url, web_concurrency, extra_env, log)


def _served(url: str, web_concurrency: int, extra_env: dict[str, str] | None,
            log: Path | None = None) -> Iterator[Served]:
    tmp = Path(tempfile.mkdtemp(prefix="prescreen-bench-"))
    standin = SlackStandin(bot_token=BOT_TOKEN, team_id="T0BENCH01").start()
    for uid in (COORD, LEAD):
        standin.add_user(uid, uid.lower())
    for ch in ("C0BENCH01", "C0BSITE01"):
        standin.add_channel(ch, ch.lower(), members=[COORD, LEAD])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MS_"))}
    env.update(DATABASE_URL=url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET,
               SLACK_API_URL=standin.url, PRESCREEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
               LOG_LEVEL="WARNING", WEB_CONCURRENCY=str(web_concurrency),
               PHI_SURFACE="slack")  # the benches drive Slack flows; no sign-in page needed
    env.update(extra_env or {})
    cli = [sys.executable, "-m", "app.cli"]
    (tmp / "studies.yaml").write_text(STUDY_YAML)
    subprocess.run([*cli, "migrate"], env=env, cwd=tmp, check=True, capture_output=True)
    subprocess.run([*cli, "studies", "import", str(tmp / "studies.yaml")], env=env, cwd=tmp,
                   check=True, capture_output=True)
    port = free_port()
    out = log.open("a") if log else subprocess.DEVNULL
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, cwd=tmp,
                            stdout=out, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("prescreen-bot serve did not start")
        time.sleep(0.2)
    sender = SlackSender(base + "/slack/events", SECRET, standin, team_id="T0BENCH01")
    try:
        yield Served(base, proc, standin, sender, env, url)
    finally:
        proc.terminate()
        proc.wait(30)
        standin.stop()
        if log:
            out.close()  # type: ignore[union-attr]
