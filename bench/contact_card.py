"""The secure page with 100,000 candidates: how long the contact card and search pages take to
render through the WSGI app, signed in (session check, access, decryption, audit event, template),
p50/p99. Candidates are encrypted and indexed as the app does it and inserted in bulk.

Usage: python -m bench.contact_card [--candidates 100000] [--views 300] [--database-url URL]
(or DATABASE_URL=postgresql+psycopg://… for PostgreSQL; SQLite otherwise)."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any
from wsgiref.util import setup_testing_defaults

import phonenumbers
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from app.runtime import Runtime, build_runtime
from bench._harness import bench_database, db_label, fresh_database, percentile, table
from bot import web_sessions
from bot.config import Settings
from bot.leads.intake import Lead, lead_row
from sandbox.slack_standin import SlackStandin
from storage.crypto import PHICipher
from storage.db import Database
from storage.models import Member, Study
from storage.repositories import candidate_notes as notes_repo
from storage.repositories import candidates as cand_repo

COORD = "U0BCOORD1"
STUDY_YAML = """
studies:
  - key: BEN
    title: Benchmark study
    channel: C0BENCH01
    timezone: America/New_York
    sites:
      - {key: S1, name: Site One, timezone: America/New_York}
members:
  - {slack_id: U0BCOORD1, timezone: America/New_York, roles: {BEN: coordinator}}
"""
FIRST = ["Ada", "Bea", "Cal", "Dov", "Eli", "Fay", "Gus", "Hal", "Ida", "Jo", "Kai", "Lea", "Max",
         "Noa", "Oli", "Pia", "Quin", "Rae", "Sol", "Tea", "Uma", "Vic", "Wes", "Xia", "Yul", "Zoe"]
LAST = ["Abbott", "Brandt", "Castillo", "Dumont", "Eriksen", "Fontaine", "Galloway", "Haddad",
        "Ishikawa", "Jovanovic", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor",
        "Petrov", "Quintero", "Rasmussen", "Sandoval", "Takahashi", "Umberto", "Valdez",
        "Whitfield", "Xavier", "Yilmaz", "Zimmermann"]
STATES = [("MA", "America/New_York"), ("NY", "America/New_York"), ("FL", "America/New_York"),
          ("IL", "America/Chicago"), ("TX", "America/Chicago"), ("CO", "America/Denver"),
          ("AZ", "America/Phoenix"), ("CA", "America/Los_Angeles"), ("WA", "America/Los_Angeles")]
AREA = ["617", "212", "305", "312", "713", "303", "602", "415", "206", "404", "215", "612"]
NOW = dt.datetime(2026, 11, 24, 15, 42, tzinfo=dt.UTC)  # a Tuesday morning in the US
BATCH = 5000


class Clock:
    def now(self) -> dt.datetime:
        return NOW


def people(n: int, rnd: random.Random) -> list[tuple[str, str, dt.date]]:
    """n fictional (name, E.164 phone, date of birth); phones unique and valid."""
    seen: set[str] = set()
    out = []
    while len(out) < n:
        phone = f"+1{rnd.choice(AREA)}{rnd.randint(200, 999)}{rnd.randint(0, 9999):04d}"
        if phone in seen or not phonenumbers.is_valid_number(phonenumbers.parse(phone)):
            continue
        seen.add(phone)
        name = f"{rnd.choice(FIRST)} {rnd.choice(FIRST)[0]}. {rnd.choice(LAST)}"
        out.append((name, phone, dt.date(1940, 1, 1) + dt.timedelta(days=rnd.randint(0, 25000))))
    return out


def seed(db: Database, cipher: PHICipher, who: list[tuple[str, str, dt.date]],
         with_notes: list[int]) -> None:
    """The candidates, encrypted and indexed as the lead form does it, in bulk; a few notes."""
    rnd = random.Random(7)
    with db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "BEN")).one()
        me = s.scalars(select(Member.id).where(Member.slack_user_id == COORD)).one()
        study_id, key = study.id, study.key
    for start in range(0, len(who), BATCH):
        rows = []
        for name, phone, dob in who[start:start + BATCH]:
            state, tz = rnd.choice(STATES)
            lead = Lead(line=0, name=name, phone=phone, dob=dob, region=state, timezone=tz,
                        timezone_assumed=False, consent=True)
            rows.append(lead_row(cipher, lead, source="web-ads", now=NOW,
                                 phone_index=cipher.index(phone),
                                 dedupe_index=cipher.index(key, phone, dob.isoformat())))
        with db.session() as s:
            cand_repo.insert_many(s, study_id, key, rows)
    with db.session() as s:  # three notes each on the cards the benchmark opens
        for seq in with_notes:
            cand = cand_repo.by_ref(s, f"{key}-{seq:04d}")
            assert cand is not None
            for k in range(3):
                notes_repo.add(s, cand.id, me, cipher.encrypt(f"Note {k}: call after five."),
                               NOW - dt.timedelta(days=k))
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
        else:
            conn.exec_driver_sql("ANALYZE")
        conn.commit()


def call(app: Any, path: str, query: str, cookie: str) -> tuple[int, bytes]:
    """One GET through the WSGI app, as gunicorn would make it."""
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
                               "HTTP_COOKIE": cookie, "HTTP_HOST": "127.0.0.1:3000",
                               "wsgi.input": io.BytesIO(b""), "REMOTE_ADDR": "127.0.0.1"}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, exc_info=None: status.append(s)))
    return int(status[0].split()[0]), body


def timed(fn: Callable[[int], tuple[int, bytes]], n: int) -> list[float]:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        code, body = fn(i)
        times.append(time.perf_counter() - t0)
        if code != 200:
            raise SystemExit(f"page answered {code}: {body[:300]!r}")
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=100_000)
    ap.add_argument("--views", type=int, default=300, help="page renders measured per kind")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = ap.parse_args()
    with fresh_database(args.database_url) as url:
        run(args, url)


def run(args: argparse.Namespace, url: str) -> None:
    rnd = random.Random(42)
    db = bench_database(url, STUDY_YAML)
    key = Fernet.generate_key().decode()
    cipher = PHICipher([key])
    t0 = time.perf_counter()
    who = people(args.candidates, rnd)
    picked = [rnd.randint(1, args.candidates) for _ in range(args.views)]
    seed(db, cipher, who, sorted(set(picked)))
    seeded = time.perf_counter() - t0
    print(f"seeded {args.candidates:,} candidates in {seeded:.1f} s", file=sys.stderr)

    standin = SlackStandin(bot_token="xoxb-bench", team_id="T0BENCH01").start()
    settings = Settings(_env_file=None, slack_bot_token="xoxb-bench",  # type: ignore[call-arg]
                        slack_signing_secret="s" * 32, slack_api_url=standin.url,
                        database_url=url, prescreen_encryption_keys=key, log_level="WARNING",
                        public_url="http://127.0.0.1:3000", slack_oidc_client_id="bench",
                        slack_oidc_client_secret="bench-secret")
    rt: Runtime = build_runtime(settings, db=db, migrate_db=False, clock=Clock())
    try:
        cookie = f"prescreen_session={web_sessions.start(rt.ctx, COORD, 'T0BENCH01')}"
        app = rt.web
        card = lambda i: call(app, f"/secure/c/BEN-{picked[i % len(picked)]:04d}", "", cookie)  # noqa: E731
        by_phone = lambda i: call(app, "/secure/search",  # noqa: E731
                                  f"q={who[picked[i % len(picked)] - 1][1]}", cookie)
        by_name = lambda i: call(app, "/secure/search",  # noqa: E731
                                 f"q={who[picked[i % len(picked)] - 1][0]}".replace(" ", "+"),
                                 cookie)
        for fn in (card, by_phone, by_name):  # warm up: templates compiled, connections open
            timed(fn, 10)
            expected = f"BEN-{picked[0]:04d}".encode()
            if expected not in fn(0)[1]:
                raise SystemExit(f"{expected.decode()} is not on the page: nothing was measured")
        label = db_label(url)
        rows = []
        for what, fn in (("contact card", card), ("search by phone", by_phone),
                         ("search by name", by_name)):
            times = timed(fn, args.views)
            rows.append((what, f"{args.candidates:,}", f"{percentile(times, 50) * 1000:.1f}",
                         f"{percentile(times, 99) * 1000:.1f}", label))
        print(table(rows, ("what", "candidates", "p50 ms", "p99 ms", "database")))
        print(f"{args.views} renders each through the WSGI app, signed in; every card view and "
              "search writes its audit event")
    finally:
        rt.close()
        standin.stop()


if __name__ == "__main__":
    main()
