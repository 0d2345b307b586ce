"""Outbox dispatcher: deliver due OutboxMessage rows to Slack, exactly once per row.

- claims rows (several dispatchers may run; see storage.repositories.outbox.claim_due);
- paces each channel (≈1 message/s by default) and honours 429 Retry-After;
- retries transient failures with exponential backoff and jitter;
- marks permanent errors (channel_not_found, not_in_channel, is_archived…) failed at once
  and calls `on_failed` so an admin sees it;
- records the message ts so later rows can `chat.update` it or reply in its thread.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import OutboxMessage
from storage.repositories import outbox as repo

log = logging.getLogger("prescreen.outbox")

PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed",
    "account_inactive", "token_revoked", "missing_scope", "invalid_blocks", "invalid_blocks_format",
    "msg_too_long", "no_text", "too_many_attachments", "restricted_action", "cant_update_message",
    "message_not_found", "user_not_found", "user_disabled", "cannot_dm_bot", "invalid_arguments",
    "team_access_not_granted", "ekm_access_denied", "too_many_blocks",
})
MAX_ATTEMPTS = 8
# outbox rows with this method carry a file (base64) and go through Slack's upload v2 flow
FILE_UPLOAD_METHOD = "files.upload_v2"
PARENT_WAIT = dt.timedelta(seconds=1)


@dataclass
class DispatchStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0

    def add(self, other: DispatchStats) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.deferred += other.deferred

    def __str__(self) -> str:
        return (f"sent {self.sent}, retried {self.retried}, failed {self.failed}, "
                f"waiting {self.deferred}")


FailedHook = Callable[[Session, OutboxMessage, str], None]


class OutboxDispatcher:
    def __init__(self, db: Database, client: WebClient, *, now: Callable[[], dt.datetime],
                 channel_interval: float = 1.0, lease_seconds: float = 60.0, batch: int = 50,
                 on_failed: FailedHook | None = None, rng: random.Random | None = None) -> None:
        self.db = db
        self.client = client
        self.now = now
        self.channel_interval = dt.timedelta(seconds=channel_interval)
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.batch = batch
        self.on_failed = on_failed
        self.rng = rng or random.Random()

    def run_once(self) -> DispatchStats:
        """Claim one round of due rows (one per channel) and deliver them."""
        stats = DispatchStats()
        with self.db.session() as session:
            rows = repo.claim_due(session, now=self.now(), limit=self.batch, lease=self.lease,
                                  channel_interval=self.channel_interval)
        for row in rows:
            try:
                self._deliver(row, stats)
            finally:
                if self.channel_interval > dt.timedelta(0):
                    with self.db.session() as session:
                        repo.release_channel(session, row.channel, self.now() + self.channel_interval)
        return stats

    def drain(self, *, max_seconds: float = 30.0, idle_rounds: int = 1) -> DispatchStats:
        """Deliver until nothing is due (or time runs out): for the CLI, tests and benchmarks."""
        total = DispatchStats()
        deadline = time.monotonic() + max_seconds
        idle = 0
        while time.monotonic() < deadline:
            stats = self.run_once()
            total.add(stats)
            if stats.sent or stats.failed or stats.retried:
                idle = 0
                continue
            if not self._anything_due_soon():
                idle += 1
                if idle >= idle_rounds:
                    break
            time.sleep(min(0.05, self.channel_interval.total_seconds() or 0.01))
        return total

    def _anything_due_soon(self) -> bool:
        from sqlalchemy import func, select

        horizon = self.now() + self.channel_interval + dt.timedelta(seconds=2)
        with self.db.session() as session:
            n = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status.in_((repo.PENDING, repo.SENDING)),
                OutboxMessage.next_attempt_at <= horizon))
        return bool(n)

    # ----- one row -----

    def _deliver(self, row: OutboxMessage, stats: DispatchStats) -> None:
        args = dict(row.payload)
        channel = row.channel
        if row.parent_key:
            with self.db.session() as session:
                parent = repo.by_key(session, row.parent_key)
                if parent is None or parent.status == repo.FAILED:
                    repo.mark_failed(session, row.id, error="the message it refers to was not sent")
                    stats.failed += 1
                    return
                if parent.status != repo.SENT or not parent.slack_ts:
                    repo.mark_retry(session, row.id, error="waiting for the first message",
                                    at=self.now() + PARENT_WAIT, count_attempt=False)
                    stats.deferred += 1
                    return
            channel = parent.posted_channel or parent.channel
            if row.method == "chat.update":
                args["ts"] = parent.slack_ts
            else:
                args["thread_ts"] = parent.slack_ts
        args["channel"] = channel
        try:
            if row.method == FILE_UPLOAD_METHOD:
                resp = self._upload(args)
            else:
                resp = self.client.api_call(row.method, json=args)
        except SlackApiError as exc:
            self._slack_error(row, exc, stats)
            return
        except Exception as exc:  # network, timeouts: transient
            self._retry(row, f"{type(exc).__name__}", stats, None)
            return
        with self.db.session() as session:
            repo.mark_sent(session, row.id, ts=resp.get("ts") or args.get("ts"),
                           channel=resp.get("channel") or channel, now=self.now())
        stats.sent += 1

    def _upload(self, args: dict[str, Any]) -> dict[str, Any]:
        """files.getUploadURLExternal → POST bytes → files.completeUploadExternal, via slack_sdk."""
        data = base64.b64decode(args["content_b64"])
        extra = {k: args[k] for k in ("title", "initial_comment", "thread_ts", "alt_txt")
                 if args.get(k)}
        resp = self.client.files_upload_v2(channel=args["channel"], content=data,
                                           filename=args["filename"], **extra)
        files = resp.get("files") or []
        return {"channel": args["channel"], "ts": None,
                "file_id": files[0].get("id") if files else None}

    def _slack_error(self, row: OutboxMessage, exc: SlackApiError, stats: DispatchStats) -> None:
        resp = exc.response
        error = str(resp.get("error") or "unknown_error") if resp is not None else "unknown_error"
        if resp is not None and resp.status_code == 429:
            retry_after = _retry_after(resp.headers)
            self._retry(row, "ratelimited", stats, retry_after, count_attempt=False)
            return
        if error in PERMANENT_ERRORS:
            with self.db.session() as session:
                repo.mark_failed(session, row.id, error=error)
                if self.on_failed is not None:
                    self.on_failed(session, row, error)
            log.warning("outbox %s to %s failed for good: %s", row.kind, row.channel, error)
            stats.failed += 1
            return
        self._retry(row, error, stats, None)

    def _retry(self, row: OutboxMessage, error: str, stats: DispatchStats,
               retry_after: float | None, *, count_attempt: bool = True) -> None:
        attempts = row.attempts + (1 if count_attempt else 0)
        with self.db.session() as session:
            if attempts >= MAX_ATTEMPTS:
                repo.mark_failed(session, row.id, error=f"gave up after {attempts} tries: {error}")
                if self.on_failed is not None:
                    self.on_failed(session, row, error)
                stats.failed += 1
                return
            if retry_after is None:
                delay = min(2.0 ** attempts, 300.0) * (0.5 + self.rng.random())
            else:
                delay = retry_after
            repo.mark_retry(session, row.id, error=error,
                            at=self.now() + dt.timedelta(seconds=delay), count_attempt=count_attempt)
        stats.retried += 1


def _retry_after(headers: Any) -> float:
    raw = None
    if headers:
        for k, v in dict(headers).items():
            if k.lower() == "retry-after":
                raw = v[0] if isinstance(v, list | tuple) else v
    try:
        return max(float(raw), 0.0) if raw is not None else 1.0
    except (TypeError, ValueError):
        return 1.0
