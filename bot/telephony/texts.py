"""Texts to and from candidates through RingCentral SMS.

Sending needs consent to text, no opt-out on the number, the calling window open, and a study
template (no identifier beyond what the candidate already knows). Inbound texts arrive through
the webhook: STOP (UNSUBSCRIBE, CANCEL, END, QUIT) opts the number out at once and is confirmed
once; HELP gets the study's help text; any other reply tells the lead's owner that a text came,
with a link to read it on the secure page. The content never goes to Slack or a log."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot import blocks as bk
from bot import outbox
from bot.access import Action, allows, require_role
from bot.callbacks.windows import window_now
from bot.context import AppContext
from bot.errors import DomainError, UnknownCandidate
from bot.phones import normalise_phone
from bot.telephony.connection import rc_client
from integrations.ringcentral import RcError
from storage import audit
from storage.models import Candidate, Study
from storage.repositories import candidates as cand_repo
from storage.repositories import ringcentral as repo
from storage.repositories import studies as study_repo

log = logging.getLogger("prescreen.telephony")

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
HELP_WORDS = frozenset({"HELP", "INFO"})
START_WORDS = frozenset({"START", "UNSTOP"})
STOP_CONFIRMATION = "You're unsubscribed and will get no more texts from us."
START_CONFIRMATION = "You're subscribed again to texts from us. Reply STOP to opt out."
DEFAULT_HELP = "This number is for research study scheduling. Reply STOP to opt out."
MAX_TEXT = 480
_WORD = re.compile(r"[A-Za-z]+")
ACTOR = "ringcentral"


class TextRefused(DomainError):
    pass


def texts_path(ref: str) -> str:
    return f"/secure/c/{ref}/texts"


def texts_url(ctx: AppContext, ref: str) -> str:
    return f"{ctx.settings.public_url or ''}{texts_path(ref)}"


def study_texting(study: Study) -> dict[str, Any]:
    options: dict[str, Any] = (study.options or {}).get("ringcentral") or {}
    return options


def templates(study: Study) -> dict[str, str]:
    return {str(k): str(v) for k, v in (study_texting(study).get("texts") or {}).items()}


def keyword(text: str) -> str | None:
    words = _WORD.findall(text.strip()[:40])
    if len(words) != 1:
        return None
    word = words[0].upper()
    return ("STOP" if word in STOP_WORDS else "HELP" if word in HELP_WORDS
            else "START" if word in START_WORDS else None)


# ----- sending -----

@dataclass(frozen=True)
class TextSent:
    ref: str
    message: str


def send_text(ctx: AppContext, user_id: str, ref: str, template: str) -> TextSent:
    client = rc_client(ctx)
    if client is None:
        raise TextRefused("Texting needs RingCentral, which is not set up here.")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        cand = cand_repo.by_ref(session, ref)
        if cand is None:
            raise UnknownCandidate(f"No candidate {ref.upper()[:20]}. Check the code.")
        study = cand.study
        require_role(session, user_id, study, Action.SEND_TEXT)
        body = templates(study).get(template)
        if body is None:
            raise TextRefused(f"{study.key} has no text called {template[:30]!r}. Pick one of "
                              "the study's texts.")
        number = study_texting(study).get("texting_number")
        if not number:
            raise TextRefused(f"{study.key} has no texting number: ask your admin to set "
                              "ringcentral.texting_number in the studies file.")
        if not cand.consent_to_text:
            raise TextRefused(f"{cand.ref_code} has not agreed to texts: no text was sent.")
        if cand.do_not_call:
            raise TextRefused(f"{cand.ref_code} is on do-not-call: no text was sent.")
        if repo.opted_out(session, ctx.cipher.indexes(ctx.cipher.decrypt(cand.phone_enc))):
            raise TextRefused(f"{cand.ref_code}'s number replied STOP: no more texts go to it.")
        window = window_now(study, cand.region, cand.timezone, now)
        if not window.open:
            when = f"{window.opens_at:%a %H:%M}" if window.opens_at else "later"
            raise TextRefused(f"It is {window.local_now:%a %H:%M} for {cand.ref_code}: outside "
                              f"contact hours. Next allowed: {when} their time. No text was sent.")
        phone = ctx.cipher.decrypt(cand.phone_enc)
        cand_id, phone_index, member = cand.id, cand.phone_index, _member_id(session, user_id)
    try:
        msg_id = client.send_sms("~", from_number=str(number), to_number=phone, text=body)
    except RcError as exc:
        log.warning("text to %s not sent: %s", ref, exc)
        raise TextRefused(f"RingCentral did not send the text ({exc.message}). Try again "
                          "later.") from None
    with ctx.db.session() as session:
        repo.add_text(session, candidate_id=cand_id, phone_index=phone_index, direction="out",
                      body_enc=ctx.cipher.encrypt(body), rc_message_id=msg_id or None,
                      member_id=member, at=now)
        audit.record(session, actor=user_id, action="text.sent", entity="candidate",
                     entity_id=ref.upper(), after={"template": template, "via": "ringcentral"})
    return TextSent(ref.upper(), f"Text “{template}” sent to {ref.upper()}.")


def _member_id(session: Session, user_id: str) -> int | None:
    member = study_repo.get_member(session, user_id)
    return member.id if member else None


# ----- inbound -----

@dataclass(frozen=True)
class Inbound:
    kind: str  # stop | start | help | reply | duplicate | ignored
    ref: str | None = None


def handle_notification(ctx: AppContext, notification: dict[str, Any]) -> Inbound:
    """One webhook notification from RingCentral (already verified)."""
    body = notification.get("body") or {}
    if body.get("type") != "SMS" or body.get("direction") != "Inbound" or not body.get("id"):
        return Inbound("ignored")
    msg_id = str(body["id"])[:64]
    text = str(body.get("subject") or "")[:2000]
    try:
        phone = normalise_phone(str((body.get("from") or {}).get("phoneNumber") or ""))
    except ValueError:
        return Inbound("ignored")
    now = ctx.clock.now()
    indexes = ctx.cipher.indexes(phone)
    word = keyword(text)
    to_number = str(((body.get("to") or [{}])[0] or {}).get("phoneNumber") or "")
    kind, ref, reply = _store_inbound(ctx, msg_id, text, indexes, word, now)
    if kind == "duplicate":
        return Inbound("duplicate")
    if reply and to_number:
        client = rc_client(ctx)
        if client is not None:
            try:
                client.send_sms("~", from_number=to_number, to_number=phone, text=reply)
            except RcError as exc:
                log.warning("automatic %s reply not sent: %s", kind, exc)
    return Inbound(kind, ref)


def _store_inbound(ctx: AppContext, msg_id: str, text: str, indexes: list[str], word: str | None,
                   now: dt.datetime) -> tuple[str, str | None, str | None]:
    reply: str | None = None
    with ctx.db.session() as session:
        if repo.text_by_rc_id(session, msg_id) is not None:
            return "duplicate", None, None  # RingCentral delivered it again: handled once
        cands = repo.candidates_by_phone_index(session, indexes)
        cand = _latest([c for idx in indexes for c in cands.get(idx, [])])
        stored = repo.add_inbound_text(
            session, candidate_id=cand.id if cand else None, phone_index=indexes[0],
            direction="in", body_enc=ctx.cipher.encrypt(text), keyword=word, rc_message_id=msg_id,
            member_id=None, at=now)
        if stored is None:  # delivered twice at the same moment: the other delivery handles it
            return "duplicate", None, None
        ref = cand.ref_code if cand else None
        if word == "STOP":
            first = repo.opted_out(session, indexes) is None  # under any key, old or new
            if first:
                repo.opt_out(session, indexes[0], "STOP", now)
            audit.record(session, actor=ACTOR, action="text.opted_out", entity="candidate",
                         entity_id=ref or "unknown", after={"first": first})
            reply = STOP_CONFIRMATION if first else None
            kind = "stop"
        elif word == "START":
            lifted = repo.opt_in(session, indexes)  # only a number that said STOP is answered
            if lifted:
                audit.record(session, actor=ACTOR, action="text.opted_in", entity="candidate",
                             entity_id=ref or "unknown", after={"keyword": "START"})
            reply = START_CONFIRMATION if lifted else None
            kind = "start"
        elif word == "HELP":
            reply = str(study_texting(cand.study).get("help_text") or DEFAULT_HELP) if cand \
                else DEFAULT_HELP
            kind = "help"
        else:
            kind = "reply"
            if cand is not None and cand.owner is not None:
                _tell_owner(ctx, session, cand, msg_id)
    return kind, ref, reply


def _latest(cands: list[Candidate]) -> Candidate | None:
    return max(cands, key=lambda c: (c.updated_at or c.created_at, c.id)) if cands else None


def _tell_owner(ctx: AppContext, session: Session, cand: Candidate, msg_id: str) -> None:
    owner = cand.owner
    assert owner is not None
    text = f"New text from {cand.ref_code}"
    url = texts_url(ctx, cand.ref_code)
    blocks = [bk.section(f":speech_balloon: *{text}* · read it on the secure page",
                         accessory={"type": "button", "text": bk.plain("Read text"),
                                    "action_id": "rc_read_text", "url": url})]
    outbox.post(ctx, session, key=f"rc-text:{msg_id}", kind="rc_text_in",
                channel=owner.slack_user_id, text=text, blocks=blocks, study_key=cand.study.key)


# ----- reading (the secure page) -----

@dataclass(frozen=True)
class TextLine:
    at: dt.datetime
    direction: str
    text: str
    keyword: str | None


@dataclass(frozen=True)
class TextThread:
    ref: str
    study_key: str
    timezone: str
    lines: list[TextLine]
    templates: list[str]
    may_send: bool
    opted_out: bool
    consent: bool


def read_texts(ctx: AppContext, user_id: str, ref: str) -> TextThread:
    """The candidate's texts, for a member who may see identifiers; audited as a view."""
    with ctx.db.session() as session:
        cand = cand_repo.by_ref(session, ref)
        if cand is None:
            raise UnknownCandidate(f"No candidate {ref.upper()[:20]}. Check the code.")
        role = require_role(session, user_id, cand.study, Action.VIEW_PHI)
        lines = [TextLine(t.at, t.direction, ctx.cipher.decrypt(t.body_enc), t.keyword)
                 for t in repo.texts_for(session, cand.id)]
        out = repo.opted_out(session, ctx.cipher.indexes(ctx.cipher.decrypt(cand.phone_enc)))
        thread = TextThread(cand.ref_code, cand.study.key, cand.timezone, lines,
                            sorted(templates(cand.study)), allows(role, Action.SEND_TEXT),
                            out is not None, cand.consent_to_text)
        audit.record(session, actor=user_id, action="phi.viewed", entity="candidate",
                     entity_id=cand.ref_code, after={"fields": ["texts"], "via": "secure page"})
        return thread
