"""Call log to attempts. Each matched extension's call log is synced incrementally (a full sync
once, then ISync with the stored sync token). Outbound calls to a candidate's number, matched
through the phone lookup index (never by decrypting anyone), become attempts: no answer and busy
as `no_answer`, voicemail as `left_voicemail`, counted in cadence and unreachable like logged
ones. A connected call asks its coordinator to log the outcome (the form is the attempt).

Idempotent by RingCentral's record id: records, their attempts and the new sync token are stored
in one transaction, and a record already stored is skipped, so a sync that dies (or a token that
is lost) never doubles an attempt. A call logged by hand within minutes of a synced one is the same call."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from bot import blocks as bk
from bot import ids, outbox
from bot.callbacks import cadence
from bot.callbacks.service import on_call_logged
from bot.context import AppContext
from bot.phones import normalise_phone
from bot.telephony.connection import match_extensions, rc_client
from integrations.ringcentral import RcError, RcRateLimited, RcSyncReset
from integrations.ringcentral.client import parse_instant
from storage import audit
from storage.models import Candidate, Member, PrescreenCall
from storage.repositories import ringcentral as repo
from storage.repositories.candidate_notes import SYNCED_KEY

log = logging.getLogger("prescreen.telephony")

ACTOR = "ringcentral"
SAME_CALL = dt.timedelta(minutes=10)  # a hand-logged call this close to a synced one is that call
FIRST_SYNC_DAYS = 1
ISYNC_PAGE = 250  # RingCentral returns at most this many records per ISync
MAX_PAGES = 40
MATCHED_AT = "ringcentral_matched_at"
REMATCH = dt.timedelta(minutes=15)  # members are matched to extensions again this often
ASK_WITHIN = dt.timedelta(hours=2)  # connected calls older than this are recorded, not asked about
LOG_WITHIN = dt.timedelta(hours=12)  # a call logged this long after a connected call is that call
INLINE_CADENCE = 100  # at most this many candidates get their next attempt planned at once
CONNECTED = {"Call connected", "Accepted"}
VOICEMAIL = {"Voicemail"}
NO_ANSWER = {"No Answer", "Busy", "Missed", "Rejected", "Declined", "Hang Up", "Not Answered",
             "Call Failed", "Stopped"}


def outcome_of(result: str, duration: int) -> str | None:
    """RingCentral's result as an attempt outcome; 'connected' when the candidate answered."""
    if result in VOICEMAIL:
        return "left_voicemail"
    if result in CONNECTED:
        return "connected" if duration > 0 else "no_answer"
    if result in NO_ANSWER:
        return "no_answer"
    return None


@dataclass
class SyncReport:
    extensions: int = 0
    records: int = 0
    attempts: int = 0
    linked: int = 0
    connected: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    rate_limited: bool = False

    def __str__(self) -> str:
        text = (f"{self.extensions} extension(s), {self.records} new record(s): {self.attempts} "
                f"attempt(s), {self.connected} connected, {self.linked} already logged by hand")
        return text + (f"; {len(self.errors)} error(s)" if self.errors else "")


def call_log_job(ctx: AppContext) -> str:
    if rc_client(ctx) is None:
        return ""
    report = sync_all(ctx)
    return str(report) if report.records or report.errors else ""


def sync_all(ctx: AppContext, *, match: bool = True) -> SyncReport:
    report = SyncReport()
    now = ctx.clock.now()
    last = ctx.extras.get(MATCHED_AT)
    if match and (last is None or now - last >= REMATCH or now < last):
        try:
            match_extensions(ctx)
        except RcError as exc:
            report.rate_limited = isinstance(exc, RcRateLimited)
            report.errors.append(f"extension list: {exc}")
            return report
        ctx.extras[MATCHED_AT] = now
    with ctx.db.session() as session:
        pairs = [(e.member_id, e.extension_id, e.sync_token) for e, _m in repo.matched(session)]
    for member_id, ext_id, token in pairs:
        assert ext_id is not None
        report.extensions += 1
        try:
            sync_extension(ctx, member_id, ext_id, report, token)
        except RcRateLimited as exc:
            report.rate_limited = True
            report.errors.append(str(exc))
            _remember_error(ctx, member_id, str(exc))
            break  # the whole group is limited: the next tick resumes from the stored tokens
        except RcError as exc:
            report.errors.append(str(exc))
            _remember_error(ctx, member_id, str(exc))
    with ctx.db.session() as session:
        report.linked += repo.link_logged_connected(session, now - dt.timedelta(days=1), LOG_WITHIN)
    return report


def sync_extension(ctx: AppContext, member_id: int, ext_id: str, report: SyncReport,
                   token: str | None) -> None:
    client = rc_client(ctx)
    assert client is not None
    now = ctx.clock.now()
    for _ in range(MAX_PAGES):
        try:
            page = client.call_log_sync(ext_id, sync_token=token,
                                        date_from=now - dt.timedelta(days=FIRST_SYNC_DAYS))
        except RcSyncReset:
            token = None
            page = client.call_log_sync(ext_id, date_from=now - dt.timedelta(days=FIRST_SYNC_DAYS))
        # the records, their attempts and the new sync token in one transaction: all or nothing
        ingest(ctx, member_id, page.records, report,
               sync_token=page.sync_token if page.sync_token != token or page.records else None)
        incremental = token is not None
        token = page.sync_token
        if not incremental or len(page.records) < ISYNC_PAGE:
            return


def _remember_error(ctx: AppContext, member_id: int, message: str) -> None:
    with ctx.db.session() as session:
        repo.save_error(session, member_id, message)


_E164 = re.compile(r"\+1[2-9][0-9]{2}[2-9][0-9]{6}")  # a NANP number as RingCentral writes it


def _number(raw: Any) -> str | None:
    """The number in E.164, as candidates' numbers are stored (and indexed)."""
    if isinstance(raw, str) and _E164.fullmatch(raw):
        return raw  # already what normalise_phone returns for it: skip the parse
    try:
        return normalise_phone(str(raw)) if raw else None
    except ValueError:
        return None


def ingest(ctx: AppContext, member_id: int, records: list[dict[str, Any]],
           report: SyncReport, *, sync_token: str | None = None) -> None:
    """Store new outbound voice records and turn those to candidates into attempts, in one
    transaction and in batches (a first sync brings thousands of records)."""
    calls = [r for r in records if r.get("type", "Voice") == "Voice"
             and r.get("direction") == "Outbound" and r.get("id")]
    if not calls and sync_token is None:
        return
    with ctx.db.session() as session:
        if sync_token is not None:
            repo.save_sync(session, member_id, sync_token, ctx.clock.now())
        known = repo.known_records(session, [str(r["id"]) for r in calls]) if calls else set()
        fresh = [r for r in calls if str(r["id"]) not in known]
        report.records += len(fresh)
        if not fresh:
            return
        numbers = {str(r["id"]): _number((r.get("to") or {}).get("phoneNumber")) for r in fresh}
        index_of: dict[str, list[str]] = {n: ctx.cipher.indexes(n) for n in set(numbers.values())
                                          if n}
        by_index = repo.candidates_by_phone_index(
            session, [i for idx in index_of.values() for i in idx])
        member = repo.member(session, member_id)
        assert member is not None
        per_candidate: dict[int, list[tuple[dict[str, Any], str]]] = defaultdict(list)
        cands: dict[int, Candidate] = {}
        for rec in sorted(fresh, key=lambda r: str(r.get("startTime") or "")):
            number = numbers[str(rec["id"])]
            matches = [c for i in index_of.get(number or "", []) for c in by_index.get(i, [])]
            outcome = outcome_of(str(rec.get("result") or ""), int(rec.get("duration") or 0))
            if not matches or outcome is None:
                report.skipped += 1
                continue  # not a candidate's number: nothing about it is kept
            cand = next((c for c in matches if c.owner_id == member_id), matches[0])
            cands[cand.id] = cand
            per_candidate[cand.id].append((rec, outcome))
        if per_candidate:
            _attempts(ctx, session, cands, member, per_candidate, report)


@dataclass
class _Batch:
    records: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[int, PrescreenCall]] = field(default_factory=list)  # (record row, call)
    events: list[dict[str, Any]] = field(default_factory=list)
    messages: list[outbox.Message] = field(default_factory=list)
    unanswered: list[Candidate] = field(default_factory=list)


def _attempts(ctx: AppContext, session: Session, cands: dict[int, Candidate], member: Member,
              per_candidate: dict[int, list[tuple[dict[str, Any], str]]],
              report: SyncReport) -> None:
    ids_ = list(per_candidate)
    times = [parse_instant(str(rec["startTime"])) for items in per_candidate.values()
             for rec, _ in items]
    lo, hi = min(times) - SAME_CALL, max(times) + SAME_CALL
    placed = repo.placed_ringouts(session, ids_, member.id, lo, hi)
    by_hand = repo.unclaimed_hand_logged(session, ids_, member.id, lo, hi)
    with_open = repo.with_open_callbacks(session, ids_)
    now = ctx.clock.now()
    batch = _Batch()
    for cand_id, items in per_candidate.items():
        cand = cands[cand_id]
        answered_none = False
        for rec, outcome in items:
            at = parse_instant(str(rec["startTime"]))
            duration = int(rec.get("duration") or 0)
            record_id = str(rec["id"])
            for ro in placed.get(cand_id, []):
                if ro.status == "placed" and abs(ro.placed_at - at) <= SAME_CALL:
                    ro.status = "synced"  # the Call button's call, now known: counted once
            row: dict[str, Any] = {
                "record_id": record_id, "member_id": member.id, "candidate_id": cand_id,
                "call_id": None, "result": str(rec.get("result") or "")[:40], "started_at": at,
                "duration_s": duration, "connected": outcome == "connected", "created_at": now}
            hand = next((c for c in by_hand.get(cand_id, []) if abs(c.called_at - at) <= SAME_CALL),
                        None)
            if hand is not None:
                by_hand[cand_id].remove(hand)
                row["call_id"] = hand.id
                report.linked += 1
            elif outcome == "connected":
                report.connected += 1
                if at >= now - ASK_WITHIN:  # a first sync does not ask about yesterday's calls
                    batch.messages.append(_ask_to_log(cand, member, record_id, duration))
            elif not cand.do_not_call:
                batch.calls.append((len(batch.records), _add_attempt(cand, member, outcome, at,
                                                                     record_id, batch)))
                answered_none = True
                report.attempts += 1
            batch.records.append(row)
        if answered_none:
            batch.unanswered.append(cand)
    repo.add_calls(session, [call for _, call in batch.calls])  # they get their ids
    for index, call in batch.calls:
        batch.records[index]["call_id"] = call.id
    for event in batch.events:
        event["after"]["call_id"] = event.pop("_call").id
    repo.add_records(session, batch.records)
    audit.record_many(session, batch.events)
    if batch.messages:
        outbox.post_many(ctx, session, batch.messages, now=now)
    plan_now = len(batch.unanswered) <= INLINE_CADENCE
    for cand in batch.unanswered:
        if cand.id in with_open:
            on_call_logged(session, cand, actor=ACTOR, now=now)
        if plan_now and cand.status == "needs_call" and not cand.do_not_call:
            cadence.after_unanswered(ctx, session, candidate=cand, study=cand.study,
                                     owner=cand.owner or member, actor=ACTOR)
        # a larger batch (a first sync) is planned by the cadence job at its next tick


def _add_attempt(cand: Candidate, member: Member, outcome: str, at: dt.datetime,
                 record_id: str, batch: _Batch) -> PrescreenCall:
    before = {"status": cand.status, "attempts": cand.attempts}
    attempt_no = cand.attempts + 1
    call = PrescreenCall(candidate_id=cand.id, study_id=cand.study_id, coordinator_id=member.id,
                         attempt_no=attempt_no, outcome=outcome, answers={}, eligible=None,
                         failed_criteria=[], notes_enc=None, called_at=at,
                         idempotency_key=f"{SYNCED_KEY}{record_id}")
    cand.attempts = attempt_no
    cand.last_outcome = outcome
    cand.last_called_at = max(cand.last_called_at or at, at)
    cand.first_called_at = cand.first_called_at or at
    cand.owner_id = cand.owner_id or member.id
    if cand.status in ("new", "needs_call", "callback"):
        cand.status = "needs_call"  # no_answer and left_voicemail both leave it to call again
    batch.events.append({"actor": ACTOR, "action": "call.logged", "entity": "candidate",
                         "entity_id": cand.ref_code, "before": before, "_call": call,
                         "after": {"status": cand.status, "attempts": attempt_no,
                                   "outcome": outcome, "from": "ringcentral",
                                   "record": record_id}})
    return call


def _ask_to_log(cand: Candidate, member: Member, record_id: str, duration: int) -> outbox.Message:
    minutes = max(1, round(duration / 60))
    text = f"Call with {cand.ref_code} ended ({minutes} min) — log the outcome"
    blocks = [bk.section(f":telephone_receiver: *{text}*",
                         accessory=bk.button("Log call", ids.CALLBACK_LOG, {"ref": cand.ref_code},
                                             style="primary")),
              bk.context("From RingCentral's call log · the form you submit is this call's "
                         "attempt")]
    return outbox.Message(key=f"rc-ended:{record_id}", kind="rc_call_ended",
                          channel=member.slack_user_id, text=text, blocks=blocks,
                          study_key=cand.study.key)
