"""Callback reminders: how long one scheduler tick takes to claim N due reminders and queue
their DMs (outbox rows + audit events, in batches of 1,000), then the escalation pass over the
same callbacks once they are overdue. Generates its own data.

Usage: python -m bench.reminder_tick [--reminders 10000] [--database-url URL]"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import time

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select

from bench._harness import STUDY_YAML, bench_context, bench_database, db_label, fresh_database, table
from bot.callbacks.jobs import escalate_overdue, send_due_reminders
from storage.db import Database
from storage.models import Callback, Candidate, Member, OutboxMessage, Study


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at


def seed(db: Database, n: int, now: dt.datetime, key: str) -> None:
    cipher_token = Fernet(key.encode()).encrypt(b"x").decode()
    with db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "BEN")).one()
        owner = s.scalars(select(Member)).first()
        assert owner is not None
        candidates = [{"study_id": study.id, "seq": i + 1, "ref_code": f"BEN-{i + 1:06d}",
                       "name_enc": cipher_token, "phone_enc": cipher_token, "phone_index": f"p{i}",
                       "timezone": "America/Chicago", "status": "callback", "attempts": 1,
                       "consent_to_contact": True, "do_not_call": False,
                       "created_at": now, "updated_at": now} for i in range(n)]
        s.execute(insert(Candidate), candidates)
        ids = s.scalars(select(Candidate.id).order_by(Candidate.id)).all()
        s.execute(insert(Callback), [
            {"candidate_id": cid, "study_id": study.id, "owner_id": owner.id,
             "due_at": now + dt.timedelta(minutes=5 + i % 10),
             "remind_at": now - dt.timedelta(seconds=i % 60),
             "status": "scheduled", "kind": "requested", "window_check": {}, "version": 1,
             "reminded_late": False, "created_at": now} for i, cid in enumerate(ids)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reminders", type=int, default=10_000)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    with fresh_database(args.database_url) as url:
        run(args.reminders, url)


def run(n: int, url: str) -> None:
    db = bench_database(url, STUDY_YAML)
    key = Fernet.generate_key().decode()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    seed(db, n, now, key)
    clock = Clock(now)
    ctx = bench_context(url, db, key, clock=clock)
    gc.freeze()  # as `prescreen-bot worker` does once it has started

    t0 = time.perf_counter()
    sent, late = send_due_reminders(ctx)
    tick = time.perf_counter() - t0
    t0 = time.perf_counter()
    again, _ = send_due_reminders(ctx)
    idle = time.perf_counter() - t0
    clock.at = now + dt.timedelta(hours=1)
    t0 = time.perf_counter()
    escalated = escalate_overdue(ctx)
    esc = time.perf_counter() - t0
    with db.session() as s:
        queued = s.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.kind == "callback_reminder"))
    assert sent == n == queued and again == 0 and escalated == n, (sent, queued, again, escalated)
    label = db_label(url)
    print(table([
        ("reminder tick: claim + queue DMs", f"{n:,}", f"{tick:.2f}", f"{n / tick:,.0f}", label),
        ("next tick (nothing due)", f"{n:,}", f"{idle:.3f}", "-", label),
        ("escalation pass (all overdue)", f"{n:,}", f"{esc:.2f}", f"{n / esc:,.0f}", label),
    ], ("what", "callbacks", "seconds", "per second", "database")))
    print(f"reminders queued {queued:,}, late {late:,}, sent twice 0")
    db.dispose()


if __name__ == "__main__":
    main()
