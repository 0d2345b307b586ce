"""Call log to attempts. Each matched extension's call log is synced incrementally (a full sync
once, then ISync with the stored sync token). Outbound calls to a candidate's number, matched
through the phone lookup index (never by decrypting anyone), become attempts: no answer and busy
as `no_answer`, voicemail as `left_voicemail`, counted in cadence and unreachable like logged
ones. A connected call asks its coordinator to log the outcome (the form is the attempt).

Idempotent by RingCentral's record id: records are stored with their attempt in one transaction
and the sync token only afterwards, so a sync that dies in between re-reads the records at its
next tick and skips them. A call logged by hand within minutes of a synced one is the same call."""

from __future__ import annotations

import datetime as dt
import logging
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
from storage.models import Candidate, Member
from storage.repositories import candidates as cand_repo
from storage.repositories import ringcentral as repo

log = logging.getLogger("prescreen.telephony")

ACTOR = "ringcentral"
SAME_CALL = dt.timedelta(minutes=10)  # a hand-logged call this close to a synced one is that call
FIRST_SYNC_DAYS = 1
ISYNC_PAGE = 250  # RingCentral returns at most this many records per ISync
MAX_PAGES = 40
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
    if match:
        try:
            match_extensions(ctx)
        except RcError as exc:
            report.rate_limited = isinstance(exc, RcRateLimited)
            report.errors.append(f"extension list: {exc}")
            return report
    with ctx.db.session() as session:
        pairs = [(e.member_id, e.extension_id) for e, _m in repo.matched(session)]
    for member_id, ext_id in pairs:
        assert ext_id is not None
        report.extensions += 1
        try:
            sync_extension(ctx, member_id, ext_id, report)
        except RcRateLimited as exc:
            report.rate_limited = True
            report.errors.append(str(exc))
            _remember_error(ctx, member_id, str(exc))
            break  # the whole group is limited: the next tick resumes from the stored tokens
        except RcError as exc:
            report.errors.append(str(exc))
            _remember_error(ctx, member_id, str(exc))
    return report


def sync_extension(ctx: AppContext, member_id: int, ext_id: str, report: SyncReport) -> None:
    client = rc_client(ctx)
    assert client is not None
    now = ctx.clock.now()
    with ctx.db.session() as session:
        row = repo.extension_row(session, member_id)
        token = row.sync_token if row is not None else None
    for _ in range(MAX_PAGES):
        try:
            page = client.call_log_sync(ext_id, sync_token=token,
                                        date_from=now - dt.timedelta(days=FIRST_SYNC_DAYS))
        except RcSyncReset:
            token = None
            page = client.call_log_sync(ext_id, date_from=now - dt.timedelta(days=FIRST_SYNC_DAYS))
        ingest(ctx, member_id, page.records, report)
        with ctx.db.session() as session:  # only after the records are safely stored
            repo.save_sync(session, member_id, page.sync_token, now)
        incremental = token is not None
        token = page.sync_token
        if not incremental or len(page.records) < ISYNC_PAGE:
            return


def _remember_error(ctx: AppContext, member_id: int, message: str) -> None:
    with ctx.db.session() as session:
        repo.save_error(session, member_id, message)


def _number(raw: Any) -> str | None:
    try:
        return normalise_phone(str(raw)) if raw else None
    except ValueError:
        return None


def ingest(ctx: AppContext, member_id: int, records: list[dict[str, Any]],
           report: SyncReport) -> None:
    """Store new outbound voice records and turn those to candidates into attempts."""
    calls = [r for r in records if r.get("type", "Voice") == "Voice"
             and r.get("direction") == "Outbound" and r.get("id")]
    if not calls:
        return
    with ctx.db.session() as session:
        known = repo.known_records(session, [str(r["id"]) for r in calls])
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
        for cand_id, items in per_candidate.items():
            _attempts(ctx, session, cands[cand_id], member, items, report)


def _attempts(ctx: AppContext, session: Session, cand: Candidate, member: Member,
              items: list[tuple[dict[str, Any], str]], report: SyncReport) -> None:
    study = cand.study
    unanswered = False
    for rec, outcome in items:
        at = parse_instant(str(rec["startTime"]))
        duration = int(rec.get("duration") or 0)
        record_id = str(rec["id"])
        repo.settle_ringouts(session, cand.id, member.id, at, SAME_CALL)
        hand = repo.hand_logged_near(session, cand.id, member.id, at, SAME_CALL)
        call_id = None
        if hand is not None:
            call_id = hand.id
            report.linked += 1
        elif outcome == "connected":
            report.connected += 1
            _ask_to_log(ctx, session, cand, member, record_id, duration)
        elif not cand.do_not_call:
            call_id = _add_attempt(session, cand, member, outcome, at, record_id)
            unanswered = True
            report.attempts += 1
        repo.add_record(session, record_id=record_id, member_id=member.id, candidate_id=cand.id,
                        call_id=call_id, result=str(rec.get("result") or "")[:40], started_at=at,
                        duration_s=duration, connected=outcome == "connected",
                        created_at=ctx.clock.now())
    if unanswered and cand.status == "needs_call" and not cand.do_not_call:
        on_call_logged(session, cand, actor=ACTOR, now=ctx.clock.now())
        cadence.after_unanswered(ctx, session, candidate=cand, study=study,
                                 owner=cand.owner or member, actor=ACTOR)


def _add_attempt(session: Session, cand: Candidate, member: Member, outcome: str,
                 at: dt.datetime, record_id: str) -> int:
    before = {"status": cand.status, "attempts": cand.attempts}
    attempt_no = cand.attempts + 1
    call = cand_repo.add_call(session, candidate_id=cand.id, study_id=cand.study_id,
                              coordinator_id=member.id, attempt_no=attempt_no, outcome=outcome,
                              answers={}, eligible=None, failed_criteria=[], notes_enc=None,
                              called_at=at, idempotency_key=f"rc:{record_id}")
    cand.attempts = attempt_no
    cand.last_outcome = outcome
    cand.last_called_at = max(cand.last_called_at or at, at)
    cand.first_called_at = cand.first_called_at or at
    cand.owner_id = cand.owner_id or member.id
    if cand.status in ("new", "needs_call", "callback"):
        cand.status = "needs_call"  # no_answer and left_voicemail both leave it to call again
    audit.record(session, actor=ACTOR, action="call.logged", entity="candidate",
                 entity_id=cand.ref_code, before=before,
                 after={"status": cand.status, "attempts": attempt_no, "call_id": call.id,
                        "outcome": outcome, "from": "ringcentral", "record": record_id})
    return call.id


def _ask_to_log(ctx: AppContext, session: Session, cand: Candidate, member: Member,
                record_id: str, duration: int) -> None:
    minutes = max(1, round(duration / 60))
    text = f"Call with {cand.ref_code} ended ({minutes} min) — log the outcome"
    blocks = [bk.section(f":telephone_receiver: *{text}*",
                         accessory=bk.button("Log call", ids.CALLBACK_LOG, {"ref": cand.ref_code},
                                             style="primary")),
              bk.context("From RingCentral's call log · the form you submit is this call's "
                         "attempt")]
    outbox.post(ctx, session, key=f"rc-ended:{record_id}", kind="rc_call_ended",
                channel=member.slack_user_id, text=text, blocks=blocks,
                study_key=cand.study.key)
