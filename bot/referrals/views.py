"""Block Kit for the referral card (one living message per referral), replies and modals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot import blocks as bk
from bot import ids
from bot.calendar import views as cal
from bot.referrals import states

# Buttons offered on the card for the next step of an open referral.
NEXT_BUTTONS: dict[str, list[tuple[str, str]]] = {
    "approved": [("sent_to_site", "Sent to site")],
    "sent_to_site": [("site_contacted", "Site contacted")],
    "site_contacted": [("visit_scheduled", "Visit scheduled")],
    "visit_scheduled": [("screened", "Screened")],
    "screened": [("enrolled", "Enrolled"), ("screen_failed", "Screen failed")],
}


@dataclass
class DecisionLine:
    """One approver's decision as the card keeps it."""

    decision: str  # approve | reject
    actor: str
    at: dt.datetime
    on_behalf_of: str | None = None
    reason: str | None = None  # the label of the study's reason
    step: int = 1
    needed: int = 1
    signed_name: str | None = None
    meaning: str | None = None


@dataclass
class CardData:
    referral_id: int
    ref: str
    study_key: str
    study_title: str
    study_tz: str
    site: str | None
    passed: list[str]
    coordinator: str | None
    attempts: int
    state: str
    version: int
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    reason: str | None = None  # the label of the study's reason (reasons.reason_label)
    visit_date: dt.date | None = None
    last_actor: str | None = None
    last_at: dt.datetime | None = None
    decisions: list[DecisionLine] = field(default_factory=list)
    approvals_needed: int = 1
    deciders: list[str] = field(default_factory=list)  # who should decide now (available)
    signature_required: bool = False


def _clock(at: dt.datetime, tz: str) -> str:
    """Slack's date formatting: each reader sees their own time zone; the study's is the
    fallback for clients that cannot format."""
    local = at.astimezone(ZoneInfo(tz))
    fallback = f"{local:%b} {local.day} {local:%H:%M} {local.tzname()}"
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _mentions(users: list[str]) -> str:
    names = [f"<@{u}>" for u in users]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def decision_line(line: DecisionLine, tz: str) -> str:
    """"Approved by @lee for @kim · <date> · 1 of 2 approvals · signed by Lee Park as "…"."""
    verb = "Approved" if line.decision == "approve" else "Rejected"
    emoji = states.EMOJI["approved" if line.decision == "approve" else "rejected"]
    text = f"{emoji} {verb} by <@{line.actor}>"
    if line.on_behalf_of:
        text += f" for <@{line.on_behalf_of}>"
    text += f" · {_clock(line.at, tz)}"
    if line.decision == "approve" and line.needed > 1:
        text += f" · {line.step} of {line.needed} approvals"
    if line.decision == "reject" and line.reason:
        text += f" · {bk.escape(line.reason)}"
    if line.signed_name:
        text += f" · signed by {bk.escape(line.signed_name)} as “{bk.escape(line.meaning or '')}”"
    return text


def status_line(d: CardData) -> str:
    emoji = states.EMOJI.get(d.state, "")
    if d.state == "pending_approval":
        given = sum(1 for x in d.decisions if x.decision == "approve")
        who = _mentions(d.deciders) if d.deciders else f"a {d.study_key} approver"
        line = f"{emoji} *Waiting for approval* by {who}"
        if d.approvals_needed > 1:
            line += f" · {given} of {d.approvals_needed} approvals"
        if d.signature_required:
            line += " · signature required"
        return line
    if d.state in ("approved", "rejected") and d.decided_by and d.decided_at:
        when = _clock(d.decided_at, d.study_tz)
        line = f"{emoji} *{states.label(d.state).capitalize()}* by <@{d.decided_by}> · {when}"
        if d.state == "rejected" and d.reason:
            line += f" · {bk.escape(d.reason)}"
        return line
    line = f"{emoji} *{states.label(d.state).capitalize()}*"
    if d.state == "visit_scheduled" and d.visit_date:
        line += f" for {d.visit_date:%a %b} {d.visit_date.day}"
    if d.last_actor and d.last_at:
        line += f" · <@{d.last_actor}> · {_clock(d.last_at, d.study_tz)}"
    return line


def card_blocks(d: CardData) -> list[bk.Block]:
    blocks: list[bk.Block] = [
        bk.header(f"Referral {d.ref}"),
        bk.fields([
            ("Study", f"{d.study_key} · {d.study_title}"),
            ("Proposed site", d.site or "not set"),
            ("Criteria passed", ", ".join(d.passed) if d.passed else "—"),
            ("Coordinator", f"<@{d.coordinator}>" if d.coordinator else "—"),
            ("Call attempts", str(d.attempts)),
            ("Status", states.label(d.state)),
        ]),
        bk.section(status_line(d)),
    ]
    if d.decisions:
        blocks.append(bk.section("*Decisions*\n" + "\n".join(decision_line(x, d.study_tz)
                                                              for x in d.decisions)))
    value = {"id": d.referral_id, "v": d.version}
    if d.state == "pending_approval":
        blocks.append(bk.actions([
            bk.button("Approve", ids.REFERRAL_APPROVE, value, style="primary"),
            bk.button("Reject", ids.REFERRAL_REJECT, value, style="danger"),
        ], block_id=ids.REFERRAL_ACTIONS_BLOCK))
    elif d.state in NEXT_BUTTONS:
        buttons = [bk.button(label, f"{ids.REFERRAL_ADVANCE}:{to}", {**value, "to": to})
                   for to, label in NEXT_BUTTONS[d.state]]
        buttons.append(bk.button("Withdrawn", f"{ids.REFERRAL_ADVANCE}:withdrawn",
                                 {**value, "to": "withdrawn"}))
        blocks.append(bk.actions(buttons, block_id=ids.REFERRAL_ACTIONS_BLOCK))
    blocks.append(bk.context("Reference code only: patient details stay in prescreen-bot."))
    return blocks


def card_text(d: CardData) -> str:
    return f"Referral {d.ref} ({d.study_key}): {states.label(d.state)}"


def transition_text(ref: str, from_state: str | None, to_state: str, actor: str,
                    reason: str | None = None, visit_date: dt.date | None = None,
                    extra: str | None = None) -> str:
    """A thread reply; `reason` is the label of the study's reject reason; `extra` says more
    about a decision (for whom, signed by)."""
    arrow = f"{states.label(from_state)} → " if from_state else ""
    text = f"{states.EMOJI.get(to_state, '')} {ref}: {arrow}*{states.label(to_state)}* by <@{actor}>"
    if reason:
        text += f" · {bk.escape(reason)}"
    if visit_date:
        text += f" · visit {visit_date.isoformat()}"
    if extra:
        text += f" · {extra}"
    return text


def approval_recorded_text(ref: str, line: DecisionLine, tz: str) -> str:
    """The thread reply for an approval that does not complete the decision yet (1 of 2)."""
    return f"{ref}: {decision_line(line, tz)}. A different approver gives the next approval."


def sign_text(ref: str, approve: bool) -> str:
    verb = "approve" if approve else "reject"
    return (f":lock: {ref}: {verb} with your signature. Open the secure page, sign in with Slack "
            f"again and confirm; nothing is decided until you sign.")


def sign_blocks(ref: str, approve: bool, url: str) -> list[bk.Block]:
    """The private answer to Approve/Reject on a study with signed decisions: a link button."""
    return [
        bk.section(sign_text(ref, approve)),
        bk.actions([{"type": "button", "url": url, "action_id": ids.REFERRAL_SIGN,
                     "style": "primary" if approve else "danger",
                     "text": bk.plain("Sign to approve" if approve else "Sign to reject", 75)}]),
    ]

def reject_modal(referral_id: int, version: int, ref: str, channel: str | None,
                 reasons: dict[str, str], card_url: str | None = None) -> bk.Block:
    """Reasons come from the study's list; the note is free text, stored encrypted only. With
    `card_url` (PHI_SURFACE=portal) there is no note field: free text may name the patient, so
    it is written on the contact card instead."""
    note: bk.Block
    if card_url is None:
        note = {"type": "input", "block_id": ids.REJECT_TEXT_BLOCK, "optional": True,
                "label": bk.plain("Note for the coordinator"),
                "hint": bk.plain("Stored encrypted; not posted to the channel. No patient names."),
                "element": {"type": "plain_text_input", "action_id": ids.REJECT_TEXT_INPUT,
                            "multiline": True, "max_length": 500}}
    else:
        note = bk.section("Anything else to say? Add a note on the contact card.",
                          accessory=bk.link_button("Open contact card", card_url,
                                                   f"{ids.OPEN_PAGE_CARD}:{ref}"))
    return {
        "type": "modal",
        "callback_id": ids.REJECT_VIEW,
        "title": bk.plain("Reject referral", 24),
        "submit": bk.plain("Reject", 24),
        "close": bk.plain("Cancel", 24),
        "private_metadata": bk.encode({"id": referral_id, "v": version, "c": channel}),
        "blocks": [
            bk.section(f"Reject *{ref}*? The coordinator is told, and the card shows the reason"
                       + (" (the note is not shown there)." if card_url is None else ".")),
            {"type": "input", "block_id": ids.REJECT_REASON_BLOCK, "label": bk.plain("Reason"),
             "element": {"type": "static_select", "action_id": ids.REJECT_REASON_SELECT,
                         "placeholder": bk.plain("Choose a reason"),
                         "options": [bk.option(text, value)
                                     for value, text in list(reasons.items())[:100]]}},
            note,
        ],
    }


def site_handoff_text(ref: str, site_name: str, study_key: str, coordinator: str | None) -> str:
    who = f"<@{coordinator}>" if coordinator else f"the {study_key} coordinator"
    return (f":outbox_tray: New referral *{ref}* for {site_name} ({study_key}). "
            f"Next: get the contact details from {who} through your secure channel, contact the "
            f"candidate within 2 business days, then `/prescreen referral {ref} site_contacted`.")


def list_blocks(study_key: str, counts: dict[str, int], rows: list[tuple[str, str, str | None]],
                state: str | None) -> list[bk.Block]:
    order = [s for s in states.ALL_STATES if counts.get(s)]
    summary = " · ".join(f"{states.label(s)} {counts[s]}" for s in order) or "no referrals yet"
    blocks: list[bk.Block] = [bk.section(f"*{study_key} referrals* · {summary}")]
    if rows:
        lines = [f"• *{ref}* · {states.label(st)}" + (f" · {site}" if site else "") for ref, st, site in rows]
        title = f"{states.label(state)}" if state else "most recent"
        blocks.append(bk.section(f"_{title}_\n" + "\n".join(lines)))
    return blocks


def visit_modal(referral_id: int, version: int, ref: str, slots: object | None,
                channel: str | None) -> bk.Block:
    blocks: list[bk.Block] = [bk.section(f"When is *{ref}*'s screening visit?")]
    options = cal.visit_slot_options(slots) if slots is not None else []  # type: ignore[arg-type]
    if slots is not None:
        blocks += cal.site_slots_blocks(slots)  # type: ignore[arg-type]
    if options:
        blocks.append({"type": "input", "block_id": ids.VISIT_SLOT_BLOCK, "optional": True,
                       "label": bk.plain("Free slot at the site"),
                       "element": {"type": "static_select", "action_id": ids.VISIT_SLOT_SELECT,
                                   "placeholder": bk.plain("Pick a free slot"), "options": options}})
    blocks.append({"type": "input", "block_id": ids.VISIT_DATE_BLOCK, "optional": bool(options),
                   "label": bk.plain("Visit date" if not options else "…or another date"),
                   "element": {"type": "datepicker", "action_id": ids.VISIT_DATE_INPUT}})
    return {
        "type": "modal", "callback_id": ids.VISIT_VIEW,
        "title": bk.plain("Visit scheduled", 24), "submit": bk.plain("Save", 24),
        "close": bk.plain("Cancel", 24),
        "private_metadata": bk.encode({"id": referral_id, "v": version, "c": channel}),
        "blocks": blocks[: bk.MAX_MODAL_BLOCKS],
    }
