"""Click-to-call: every rule is checked at the moment of the click, then a RingOut rings the
coordinator's RingCentral phone first and the candidate when they answer. The candidate's number
is decrypted for RingCentral only; it never appears in Slack or in a log."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.access import Action, require_role
from bot.callbacks.windows import window_now
from bot.context import AppContext
from bot.errors import DomainError, UnknownCandidate
from bot.telephony.connection import direct_number, extension_for, match_extensions, rc_client
from integrations.ringcentral import RcError, RcPermissionError, RcRateLimited
from storage import audit
from storage.repositories import candidates as cand_repo
from storage.repositories import ringcentral as repo
from storage.repositories import studies as study_repo
from storage.repositories.callbacks import call_times_since

log = logging.getLogger("prescreen.telephony")

NOT_CONFIGURED = ("Calling from Slack needs RingCentral, which is not set up here. "
                  "Dial from your phone and log the call with `/prescreen log`.")


class CallRefused(DomainError):
    """A rule says this call may not be placed now; the message says which and what to do."""


@dataclass(frozen=True)
class CallPlaced:
    ref: str
    ringout_id: str
    message: str


@dataclass(frozen=True)
class _Plan:
    ref: str
    extension_id: str
    to_number: str
    caller_id: str | None
    ringout_row: int
    actor: str


def calls_in_24h(session: Session, candidate_id: int, now: dt.datetime) -> list[dt.datetime]:
    """Every call known in the last 24 h: logged attempts, synced calls not (yet) logged, and
    calls placed from a Call button."""
    since = now - dt.timedelta(hours=24)
    return sorted(call_times_since(session, candidate_id, since)
                  + repo.synced_times_since(session, candidate_id, since)
                  + repo.ringout_times_since(session, candidate_id, since))


def check_and_reserve(ctx: AppContext, user_id: str, ref: str) -> _Plan:
    """The checks, in order: role, do-not-call, consent, calling window, 24 h limit, extension.
    Passing them records the call being placed (it counts toward the 24 h limit at once)."""
    if rc_client(ctx) is None:
        raise CallRefused(NOT_CONFIGURED)
    now = ctx.clock.now()
    with ctx.db.session() as session:
        cand = cand_repo.by_ref(session, ref, for_update=True)
        if cand is None:
            raise UnknownCandidate(f"No candidate {ref.upper()[:20]}. Check the code.")
        study = cand.study
        require_role(session, user_id, study, Action.PLACE_CALL)
        if cand.do_not_call:
            raise CallRefused(f"{cand.ref_code} is on do-not-call: no calls. Nothing was dialled.")
        if not cand.consent_to_contact:
            raise CallRefused(f"{cand.ref_code} has not consented to be contacted: no calls. "
                              "Nothing was dialled.")
        window = window_now(study, cand.region, cand.timezone, now,
                            calls_in_24h(session, cand.id, now))
        if not window.open:
            who = f" ({window.rule_label})" if window.rule_label else ""
            when = (f"{window.opens_at:%a %H:%M}" if window.opens_at else "later")
            if window.limit_reached:
                raise CallRefused(f"{cand.ref_code} has had {window.limit_reached} calls in 24 "
                                  f"hours, the most allowed{who}. Earliest: {when} their time. "
                                  "Nothing was dialled.")
            raise CallRefused(f"It is {window.local_now:%a %H:%M} for {cand.ref_code}: outside "
                              f"calling hours{who} ({window.hours_today} their time). Next "
                              f"allowed: {when} their time. Nothing was dialled.")
        member = study_repo.get_member(session, user_id)
        assert member is not None
        ext = extension_for(ctx, session, member)
        member_id = member.id
    if ext is None:
        match_extensions(ctx)
        with ctx.db.session() as session:
            member = study_repo.get_member(session, user_id)
            assert member is not None
            ext = extension_for(ctx, session, member)
    if ext is None:
        raise CallRefused("Your RingCentral extension is not known: ask your admin to use the "
                          "same email in RingCentral and Slack, or to add ringcentral_extension "
                          "for you in the studies file. Nothing was dialled.")
    with ctx.db.session() as session:
        cand = cand_repo.by_ref(session, ref)
        assert cand is not None
        ringcentral = (cand.study.options or {}).get("ringcentral") or {}
        row = repo.add_ringout(session, candidate_id=cand.id, member_id=member_id,
                               status="placing", placed_at=now)
        audit.record(session, actor=user_id, action="call.placed", entity="candidate",
                     entity_id=cand.ref_code, after={"via": "ringcentral", "ringout": row.id})
        return _Plan(cand.ref_code, ext, ctx.cipher.decrypt(cand.phone_enc),
                     ringcentral.get("caller_id"), row.id, user_id)


def place(ctx: AppContext, plan: _Plan) -> CallPlaced:
    """The RingOut itself (after Slack has its acknowledgement)."""
    client = rc_client(ctx)
    assert client is not None
    try:
        from_number = direct_number(ctx, plan.extension_id)
        if not from_number:
            raise CallRefused("Your RingCentral extension has no direct number to ring first. "
                              "Ask your admin to give it one.")
        ringout = client.ring_out(plan.extension_id, from_number=from_number,
                                  to_number=plan.to_number, caller_id=plan.caller_id)
    except (RcError, CallRefused) as exc:
        _set_status(ctx, plan.ringout_row, "failed", None)
        log.warning("RingOut for %s failed: %s", plan.ref, exc)
        if isinstance(exc, CallRefused):
            raise
        if isinstance(exc, RcPermissionError):
            raise CallRefused(f"RingCentral refused the call: {exc.message}. Tell your admin. "
                              "Nothing was dialled.") from None
        if isinstance(exc, RcRateLimited):
            raise CallRefused("RingCentral is busy (rate limited): try again in a minute. "
                              "Nothing was dialled.") from None
        raise CallRefused("RingCentral could not place the call just now: try again, or dial "
                          "from your RingCentral app. Nothing was dialled.") from None
    _set_status(ctx, plan.ringout_row, "placed", ringout.id)
    return CallPlaced(plan.ref, ringout.id,
                      f":telephone_receiver: Calling {plan.ref}… your phone rings first; the "
                      "candidate is dialled when you answer. The attempt is logged from "
                      "RingCentral's call log.")


def _set_status(ctx: AppContext, row_id: int, status: str, ringout_id: str | None) -> None:
    with ctx.db.session() as session:
        repo.set_ringout_status(session, row_id, status, ringout_id)


def call_candidate(ctx: AppContext, user_id: str, ref: str) -> CallPlaced:
    """Check, then place: for callers that have already acknowledged."""
    return place(ctx, check_and_reserve(ctx, user_id, ref))
