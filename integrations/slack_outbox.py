"""Outbox dispatcher: deliver due OutboxMessage rows to Slack, exactly once per row.

- claims rows (several dispatchers may run; see storage.repositories.outbox.claim_due);
- paces each channel (≈1 message/s by default) and honours 429 Retry-After;
- retries transient failures with exponential backoff and jitter;
- marks permanent errors (channel_not_found, not_in_channel, is_archived…) failed at once
  and calls `on_failed` so an admin sees it;
- records the message ts so later rows can `chat.update` it or reply in its thread;
- posts each message once even across a crash at the worst instant: every chat.postMessage
  carries message metadata naming its outbox row, and a row whose earlier send may have
  reached Slack (claimed and never recorded, or its connection broke mid-request) is first
  looked up in the conversation (`conversations.history`, or `conversations.replies` for a
  thread reply, with `include_all_metadata`) and, when found, marked sent with that message's
  ts instead of being posted again. chat.update is idempotent and simply sent again. Files
  (upload v2 carries no metadata) and ephemerals (never in history, and not sent through the
  outbox) cannot be looked up.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from sqlalchemy.orm import Session

from integrations import metrics
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
# Slack's own errors for "could not complete; part of the operation may have succeeded"
MAYBE_DONE_ERRORS = frozenset({"internal_error", "fatal_error", "request_timeout",
                               "service_unavailable"})

# message metadata on every chat.postMessage: the outbox row and a hash of its idempotency key
# (never patient data: metadata is readable by every app and member of the workspace)
METADATA_EVENT_TYPE = "prescreen_outbox"
# the search window around an unconfirmed send: clock skew between us and Slack, and slack_sdk's
# own rate-limit retries inside one request
LOOKUP_MARGIN = dt.timedelta(seconds=60)
# history/replies are Tier 3 (50+ a minute): small pages, only for unconfirmed rows, and a cap
LOOKUP_PAGE_SIZE = 20
LOOKUP_MAX_PAGES = 10


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def message_metadata(row_id: int, key: str) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT_TYPE,
            "event_payload": {"outbox_id": row_id, "key": key_hash(key)}}


def _is_ours(metadata: Any, row_id: int, key: str) -> bool:
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return (isinstance(payload, dict) and str(payload.get("outbox_id")) == str(row_id)
            and payload.get("key") == key_hash(key))


def _slack_ts(at: dt.datetime) -> str:
    return f"{at.timestamp():.6f}"


def without_blind_resends(client: WebClient) -> WebClient:
    """The same client minus slack_sdk's automatic retry after a broken connection. For
    chat.postMessage that retry posts again without knowing whether Slack already has the
    message; the dispatcher handles a broken connection itself (look up, then post)."""
    own = copy.copy(client)
    own.retry_handlers = [h for h in client.retry_handlers
                          if not isinstance(h, ConnectionErrorRetryHandler)]
    return own


class LookupIncomplete(Exception):
    """The search window holds more messages than the lookup reads: try again later."""


@dataclass
class DispatchStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    # of `sent`: found already in Slack after an unconfirmed send, and not posted again
    adopted: int = 0

    def add(self, other: DispatchStats) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.deferred += other.deferred
        self.adopted += other.adopted

    def __str__(self) -> str:
        found = f" ({self.adopted} found already posted)" if self.adopted else ""
        return (f"sent {self.sent}{found}, retried {self.retried}, failed {self.failed}, "
                f"waiting {self.deferred}")


FailedHook = Callable[[Session, OutboxMessage, str], None]


class OutboxDispatcher:
    def __init__(self, db: Database, client: WebClient, *, now: Callable[[], dt.datetime],
                 channel_interval: float = 1.0, lease_seconds: float = 60.0, batch: int = 50,
                 on_failed: FailedHook | None = None, rng: random.Random | None = None) -> None:
        self.db = db
        self.client = without_blind_resends(client)
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
            claims = repo.claim_due(session, now=self.now(), limit=self.batch, lease=self.lease,
                                    channel_interval=self.channel_interval)
        for claim in claims:
            row = claim.row
            try:
                self._deliver(row, stats, claim.unconfirmed)
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
        horizon = self.now() + self.channel_interval + dt.timedelta(seconds=2)
        with self.db.session() as session:
            return repo.any_due_by(session, horizon)

    # ----- one row -----

    def _deliver(self, row: OutboxMessage, stats: DispatchStats,
                 unconfirmed: tuple[dt.datetime, dt.datetime] | None = None) -> None:
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
                                    at=self.now() + PARENT_WAIT, count_attempt=False,
                                    maybe_sent=unconfirmed is not None)
                    stats.deferred += 1
                    return
            channel = parent.posted_channel or parent.channel
            if row.method == "chat.update":
                args["ts"] = parent.slack_ts
            else:
                args["thread_ts"] = parent.slack_ts
        args["channel"] = channel
        if row.method == "chat.postMessage":
            args["metadata"] = message_metadata(row.id, row.idempotency_key)
            if unconfirmed is not None and self._adopt_earlier_send(
                    row, channel, args.get("thread_ts"), unconfirmed, stats):
                return
        try:
            if row.method == FILE_UPLOAD_METHOD:
                resp = self._upload(args)
            else:
                resp = self.client.api_call(row.method, json=args)
        except SlackApiError as exc:
            self._slack_error(row, exc, stats)
            return
        except Exception as exc:  # network, timeouts: the request may have reached Slack
            metrics.slack_send("retry", "network")
            self._retry(row, f"{type(exc).__name__}", stats, None, maybe_sent=True)
            return
        with self.db.session() as session:
            repo.mark_sent(session, row.id, ts=resp.get("ts") or args.get("ts"),
                           channel=resp.get("channel") or channel, now=self.now())
        stats.sent += 1
        metrics.slack_send("sent")

    # ----- an earlier send that may have reached Slack -----

    def _adopt_earlier_send(self, row: OutboxMessage, channel: str, thread_ts: str | None,
                            window: tuple[dt.datetime, dt.datetime], stats: DispatchStats) -> bool:
        """Look for this row's message in Slack. True when the row is settled (found and marked
        sent, or the lookup failed and the row waits for a retry); False: not there, post it."""
        try:
            found = self._find_earlier_send(row, channel, thread_ts, window)
        except SlackApiError as exc:
            resp = exc.response
            error = str(resp.get("error") or "unknown_error") if resp is not None else "unknown_error"
            if resp is not None and resp.status_code == 429:
                self._retry(row, "lookup: ratelimited", stats, _retry_after(resp.headers),
                            count_attempt=False, maybe_sent=True)
            else:
                self._retry(row, f"lookup: {error}", stats, None, maybe_sent=True,
                            alert_error=error)
            log.warning("outbox %s %s: looking up an unconfirmed send failed (%s); will retry",
                        row.kind, row.id, error)
            return True
        except LookupIncomplete:
            self._retry(row, "lookup: too many messages in the window", stats, None,
                        maybe_sent=True)
            return True
        except Exception as exc:  # network, timeouts
            self._retry(row, f"lookup: {type(exc).__name__}", stats, None, maybe_sent=True)
            return True
        if found is None:
            log.info("outbox %s %s: an unconfirmed send is not in Slack; posting it",
                     row.kind, row.id)
            return False
        ts, posted_channel = found
        with self.db.session() as session:
            repo.mark_sent(session, row.id, ts=ts, channel=posted_channel, now=self.now())
        log.info("outbox %s %s: already in Slack (ts %s); not posted again", row.kind, row.id, ts)
        stats.sent += 1
        stats.adopted += 1
        return True

    def _find_earlier_send(self, row: OutboxMessage, channel: str, thread_ts: str | None,
                           window: tuple[dt.datetime, dt.datetime]) -> tuple[str, str] | None:
        """(ts, conversation id) of the message carrying this row's metadata, or None."""
        conversation = channel
        if channel[:1] in ("U", "W"):  # a DM by user id: history needs the IM's own id
            conversation = self.client.conversations_open(users=channel)["channel"]["id"]
        since, until = window
        params: dict[str, Any] = {
            "channel": conversation, "oldest": _slack_ts(since - LOOKUP_MARGIN),
            "latest": _slack_ts(max(until, since) + LOOKUP_MARGIN), "inclusive": True,
            "limit": LOOKUP_PAGE_SIZE, "include_all_metadata": True,
        }
        cursor: str | None = None
        for _ in range(LOOKUP_MAX_PAGES):
            if thread_ts:
                resp = self.client.conversations_replies(ts=thread_ts, cursor=cursor, **params)
            else:
                resp = self.client.conversations_history(cursor=cursor, **params)
            for message in resp.get("messages") or []:
                if _is_ours(message.get("metadata"), row.id, row.idempotency_key):
                    return str(message["ts"]), conversation
            cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
            if not resp.get("has_more") or not cursor:
                return None
        raise LookupIncomplete

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
            metrics.slack_ratelimited(retry_after)
            metrics.slack_send("retry", "ratelimited")
            self._retry(row, "ratelimited", stats, retry_after, count_attempt=False)
            return
        metrics.slack_send("failed" if error in PERMANENT_ERRORS else "retry", error)
        if error in PERMANENT_ERRORS:
            with self.db.session() as session:
                repo.mark_failed(session, row.id, error=error)
                if self.on_failed is not None:
                    self.on_failed(session, row, error)
            log.warning("outbox %s to %s failed for good: %s", row.kind, row.channel, error)
            stats.failed += 1
            return
        maybe_sent = error in MAYBE_DONE_ERRORS or (resp is not None and resp.status_code >= 500)
        self._retry(row, error, stats, None, maybe_sent=maybe_sent)

    def _retry(self, row: OutboxMessage, error: str, stats: DispatchStats,
               retry_after: float | None, *, count_attempt: bool = True,
               maybe_sent: bool = False, alert_error: str | None = None) -> None:
        attempts = row.attempts + (1 if count_attempt else 0)
        with self.db.session() as session:
            if attempts >= MAX_ATTEMPTS:
                repo.mark_failed(session, row.id, error=f"gave up after {attempts} tries: {error}")
                if self.on_failed is not None:
                    self.on_failed(session, row, alert_error or error)
                stats.failed += 1
                return
            if retry_after is None:
                delay = min(2.0 ** attempts, 300.0) * (0.5 + self.rng.random())
            else:
                delay = retry_after
            repo.mark_retry(session, row.id, error=error,
                            at=self.now() + dt.timedelta(seconds=delay), count_attempt=count_attempt,
                            maybe_sent=maybe_sent)
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
