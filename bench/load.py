"""Load: N concurrent coordinators (50 by default) doing the daily mix against the real
`prescreen-bot serve` with two web workers (and a `prescreen-bot worker` delivering the outbox):
`/prescreen next`, logging a call (`/prescreen` → modal → submit), `/prescreen status REF`,
an approver clicking Approve on a referral card, `/prescreen queue`. Reports ack time (p50/p99)
per request kind and the error count, and shows /metrics (METRICS_TOKEN) before and after.

Each coordinator waits a random think time between actions (`--think`, 2 s on average: a
coordinator who logs a call every two seconds is far busier than a real one; `--think 0` is a
closed-loop stress run instead). An error is a non-200 answer, a request that fails, or a reply
saying something went wrong; the error lines of `serve` and `worker` (and how many warnings
they logged) are printed after the table.

Usage: python -m bench.load [--database-url URL] [--users 50] [--seconds 60] [--workers 2]
       [--think 2]"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bench._harness import LEAD, db_label, percentile, served, table
from bot import ids
from storage.db import Database
from storage.models import Member, Membership, Study

TOKEN = "bench-metrics-token"
CHANNEL = "C0BENCH01"
MIX = ["next"] * 3 + ["log_call"] * 3 + ["status"] * 2 + ["approve"] + ["queue"]
SERIES = ("prescreen_ack_seconds_count", "prescreen_slack_sends_total",
          "prescreen_outbox_depth", "prescreen_job_seconds_count")


def add_coordinators(url: str, users: list[str]) -> None:
    db = Database(url)
    try:
        with db.session() as s:
            sid = s.scalars(select(Study.id).where(Study.key == "BEN")).one()
            for u in users:
                m = Member(slack_user_id=u, timezone="America/New_York")
                s.add(m)
                s.flush()
                s.add(Membership(member_id=m.id, study_id=sid, role="coordinator"))
    finally:
        db.dispose()


def scrape(url: str) -> dict[str, float]:
    text = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10).text
    out: dict[str, float] = defaultdict(float)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name in SERIES:
                key = s.name + (f"{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}"
                                if s.labels else "")
                out[key] += s.value
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--think", type=float, default=2.0,
                    help="mean seconds a coordinator waits between actions")
    args = ap.parse_args()
    users = [f"U0LOAD{i:03d}" for i in range(args.users)]
    acks: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    first_error: dict[str, str] = {}
    mp_dir = tempfile.mkdtemp(prefix="prescreen-load-metrics-")
    log = Path(mp_dir) / "serve.log"
    # one PROMETHEUS_MULTIPROC_DIR for serve and worker: the worker's series (sends, jobs)
    # appear on the web's /metrics too
    with served(args.database_url, web_concurrency=args.workers,
                extra_env={"METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": mp_dir},
                log=log) as s:
        add_coordinators(s.database_url, users)
        for u in users:
            s.standin.add_user(u, u.lower())
            s.standin.add_channel(f"D{u[1:]}", "dm", members=[u])
        worker_log = log.with_name("worker.log").open("w")
        worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=s.env,
                                  stdout=worker_log, stderr=subprocess.STDOUT)
        before = scrape(s.url)
        stop = time.monotonic() + args.seconds

        def timed(kind: str, fn: Any) -> Any:
            t0 = time.monotonic()
            try:
                resp = fn()
            except Exception as exc:
                with lock:
                    errors[kind] += 1
                    first_error.setdefault(kind, type(exc).__name__)
                return None
            took = time.monotonic() - t0
            bad = resp.status_code != 200 or "went wrong" in resp.text
            with lock:
                acks[kind].append(took)
                if bad:
                    errors[kind] += 1
                    first_error.setdefault(kind, f"{resp.status_code} {resp.text[:200]}")
            return None if bad else resp

        def coordinator(n: int, user: str) -> None:
            rng = random.Random(n)
            i = 0
            time.sleep(rng.uniform(0, args.think))  # not all at the same instant
            while time.monotonic() < stop:
                if i:
                    time.sleep(rng.uniform(0.5, 1.5) * args.think)
                i += 1
                kind = rng.choice(MIX)
                if kind in ("next", "queue"):
                    timed(kind, lambda k=kind: s.sender.slash_command(user, text=k,
                                                                      channel_id=CHANNEL))
                elif kind == "status":
                    ref = f"BEN-{rng.randrange(1, 40):04d}"
                    timed(kind, lambda r=ref: s.sender.slash_command(user, text=f"status {r}",
                                                                     channel_id=CHANNEL))
                elif kind == "log_call":
                    opened = len(s.standin.calls_to("views.open"))
                    if timed("log_call: /prescreen", lambda: s.sender.slash_command(
                            user, text="", channel_id=CHANNEL)) is None:
                        continue
                    try:
                        view = s.standin.wait_for(
                            lambda st, b=opened: st.open_view(user)
                            if len(st.calls_to("views.open")) > b else None, timeout=15)
                    except AssertionError:
                        with lock:
                            errors["log_call: modal"] += 1
                        continue
                    fields = {
                        ids.NAME_INPUT: f"Load Person {n}-{i}",
                        ids.PHONE_INPUT: f"(617) 3{n:02d}-{i % 10000:04d}",
                        ids.DOB_INPUT: dt.date(1950 + i % 40, 1 + i % 12, 1 + i % 28),
                        "answer:age": str(30 + i % 50), "answer:dx": "no",
                        ids.OUTCOME_SELECT: "pre_qualified" if i % 3 == 0 else "no_answer",
                    }
                    values = s.sender.fill(view["id"], fields)
                    timed("log_call: submit", lambda v=view, vs=values: s.sender.view_submission(
                        user, v["id"], vs))
                elif kind == "approve":
                    cards = [m for m in s.standin.messages(CHANNEL)
                             if ids.REFERRAL_APPROVE in str(m.get("blocks"))]
                    if not cards:
                        continue
                    card = rng.choice(cards[-20:])
                    try:
                        s.sender.button(ids.REFERRAL_APPROVE, message=card)
                    except AssertionError:
                        continue  # decided meanwhile: the button is gone
                    timed("approve", lambda c=card: s.sender.click(
                        LEAD, ids.REFERRAL_APPROVE, message=c, channel_id=CHANNEL))

        threads = [threading.Thread(target=coordinator, args=(n, u)) for n, u in enumerate(users)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        mid = None
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            if mid is None and time.monotonic() - t0 > args.seconds / 2:
                mid = scrape(s.url)
        elapsed = time.monotonic() - t0
        time.sleep(3)
        after = scrape(s.url)
        worker.terminate()
        worker.wait(timeout=30)
        worker_log.close()
        label = db_label(s.database_url)
    everything = [x for v in acks.values() for x in v]
    rows = [(kind, f"{len(v):,}", f"{percentile(v, 50) * 1000:.0f} ms",
             f"{percentile(v, 99) * 1000:.0f} ms", str(errors.get(kind, 0)), label)
            for kind, v in sorted(acks.items())]
    rows.append(("all requests", f"{len(everything):,}",
                 f"{percentile(everything, 50) * 1000:.0f} ms",
                 f"{percentile(everything, 99) * 1000:.0f} ms", str(sum(errors.values())), label))
    print(f"{args.users} coordinators for {elapsed:.0f} s, {args.workers} web workers, think "
          f"time {args.think:g} s: {len(everything) / elapsed:.0f} requests/s")
    print(table(rows, ("request", "count", "ack p50", "ack p99", "errors", "database")))
    for kind, what in first_error.items():
        print(f"first error of {kind}: {what}")
    for name in ("serve.log", "worker.log"):
        text = log.with_name(name).read_text().splitlines()
        errors_ = [ln for ln in text if any(w in ln for w in ("ERROR", "CRITICAL", "Traceback"))]
        warnings = sum("WARNING" in ln for ln in text)
        print(f"{name}: {len(errors_)} error line(s), {warnings} warning(s)"
              + "".join(f"\n  {ln[:300]}" for ln in errors_[:20]))
    keys = sorted(set(before) | set(after))
    print("\n/metrics during the run (curl -H 'Authorization: Bearer …' /metrics):")
    print(table([(k, f"{before.get(k, 0):g}", f"{(mid or {}).get(k, 0):g}", f"{after.get(k, 0):g}")
                 for k in keys], ("series", "before", "half-way", "after")))


if __name__ == "__main__":
    main()
