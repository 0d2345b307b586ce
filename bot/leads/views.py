"""Block Kit for `/prescreen next`, `/prescreen queue` and the App Home "My queue" section
(reference codes, study keys and wait reasons only), and the `/prescreen lead` modal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from bot import blocks as bk
from bot import ids, regions
from bot.errors import BadPayload
from bot.leads.intake import OTHER_SOURCE, InboundLead, LeadAdded, lead_sources
from bot.leads.queue import NextLead, NoLead, WorkItem, WorkQueue
from storage.models import Study

CardLink = Callable[[str], str]  # reference code → its contact card's URL on the secure page
OPEN_CARD = "Open contact card"


def card_button(url: str, ref: str) -> bk.Block:
    """A link button to a candidate's contact card: the URL carries the reference code only."""
    return bk.link_button(OPEN_CARD, url, f"{ids.OPEN_PAGE_CARD}:{ref}")


def card_link_text(card: CardLink, ref: str) -> str:
    """The same link inside a line of text (lists with one line per candidate)."""
    return f"<{card(ref)}|{OPEN_CARD}>"


def next_blocks(result: NextLead | NoLead, card: CardLink | None = None
                ) -> tuple[str, list[bk.Block]]:
    if isinstance(result, NoLead):
        return result.message, [bk.section(result.message)]
    text = f"Next: {result.ref} · {result.why}"
    blocks = [
        bk.section(f":telephone_receiver: *Next: {result.ref}* · {result.study_key}\n"
                   f"Why now: {result.why}",
                   accessory=bk.button("Log call", ids.HOME_LOG_CALL, {"ref": result.ref})),
        bk.context(f"Attempts: {result.attempts} of {result.max_attempts} · waits: "
                   f"{result.reason} · their time zone: {result.candidate_tz}"),
    ]
    if card is not None:
        blocks.append(bk.actions([card_button(card(result.ref), result.ref)]))
    return text, blocks


def item_line(it: WorkItem, card: CardLink | None = None) -> str:
    closed = " · :crescent_moon: outside calling hours now" if it.window_closed else ""
    link = " · " + card_link_text(card, it.ref) if card is not None else ""
    return f"*{it.ref}* · {it.study_key} · {it.what} · _{it.reason}_{closed}{link}"


def queue_blocks(q: WorkQueue, study_key: str | None, shown: int = 20,
                 card: CardLink | None = None) -> tuple[str, list[bk.Block]]:
    scope = f" in {study_key.upper()}" if study_key else ""
    if not q.items:
        text = f"Your queue{scope} is empty: nothing waits on you."
        return text, [bk.section(text)]
    text = f"Your queue{scope}: {q.total} item{'s' if q.total != 1 else ''}, most urgent first"
    lines = [item_line(it, card) for it in q.items[:shown]]
    per = 10 if card is not None else shown  # links are long: keep each section under 3,000
    blocks: list[bk.Block] = [bk.section(f"*{text}*")]
    blocks += [bk.section("\n".join(lines[i:i + per])) for i in range(0, len(lines), per)]
    if q.total > shown:
        blocks.append(bk.context(f"and {q.total - shown} more"))
    blocks.append(bk.context("`/prescreen next` gives you the one to call now · "
                             "`/prescreen reason REF REASON` says why an item waits."))
    return text, blocks


def home_section(q: WorkQueue, shown: int = 10, card: CardLink | None = None) -> list[bk.Block]:
    out: list[bk.Block] = [bk.header("My queue")]
    if not q.items:
        out.append(bk.context("Nothing waits on you."))
        return out
    for it in q.items[:shown]:
        out.append(bk.section(item_line(it, card),
                              accessory=bk.button("Log call", ids.HOME_LOG_CALL, {"ref": it.ref})))
    if q.total > shown:
        out.append(bk.context(f"and {q.total - shown} more · `/prescreen queue` lists them"))
    return out


# ----- /prescreen lead: one inbound lead -----

def lead_on_page(links: list[tuple[str, str]]) -> tuple[str, list[bk.Block]]:
    """PHI_SURFACE=portal: leads are added on the secure page; one button per study (at most
    five, the studies the member may add leads to)."""
    text = "Add the lead on the secure page: name and phone never pass through Slack."
    buttons = [bk.link_button(f"Add a {key} lead" if len(links) > 1 else "Add the lead",
                              url, f"{ids.OPEN_PAGE_ADD}:{key}", style="primary")
               for key, url in links[:5]]
    return text, [bk.section(text), bk.actions(buttons),
                  bk.context("It waits in needs_call until a coordinator is assigned.")]


def lead_modal(studies: list[Study], study_key: str | None, channel: str | None) -> bk.Block:
    """Study, name, phone, date of birth, state, source, consent. Sources are the study's
    lead_sources plus "other"."""
    study = next((s for s in studies if s.key == study_key), None)
    blocks: list[bk.Block] = [
        bk.input_block(ids.LEAD_STUDY_BLOCK, "Study",
               bk.static_select(ids.LEAD_STUDY_SELECT, [(s.key, f"{s.key} · {s.title}") for s in studies],
                       "Pick a study", study_key), dispatch=True),
        bk.input_block(ids.LEAD_NAME_BLOCK, "Name", {"type": "plain_text_input",
                                             "action_id": ids.LEAD_NAME_INPUT, "max_length": 100}),
        bk.input_block(ids.LEAD_PHONE_BLOCK, "Phone", {"type": "plain_text_input",
                                               "action_id": ids.LEAD_PHONE_INPUT, "max_length": 30,
                                               "placeholder": bk.plain("(617) 555-0123")}),
        bk.input_block(ids.LEAD_DOB_BLOCK, "Date of birth", {"type": "datepicker",
                                                     "action_id": ids.LEAD_DOB_INPUT},
               optional=True),
        bk.input_block(ids.LEAD_STATE_BLOCK, "State", bk.static_select(
            ids.LEAD_STATE_SELECT, [(k, f"{v[0]} ({k})") for k, v in regions.STATES.items()],
            "Pick a state"), optional=True,
            hint="Sets the lead's time zone; without it the study's time zone is assumed."),
    ]
    sources = [(slug, str((cfg or {}).get("label") or slug))
               for slug, cfg in (lead_sources(study) if study else {}).items()]
    sources.append((OTHER_SOURCE, "Other"))
    blocks.append(bk.input_block(ids.LEAD_SOURCE_BLOCK, "Source",
                         bk.static_select(ids.LEAD_SOURCE_SELECT, sources, "Where did the lead come from?",
                                 sources[0][0] if len(sources) == 1 else None)))
    yes = bk.option("Agreed to be contacted about this study", "yes")
    blocks.append(bk.input_block(ids.LEAD_CONSENT_BLOCK, "Consent", {
        "type": "checkboxes", "action_id": ids.LEAD_CONSENT_INPUT, "options": [yes],
        "initial_options": [yes]}, optional=True))
    blocks.append(bk.context("The lead waits in needs_call until a coordinator is assigned."))
    return {
        "type": "modal",
        "callback_id": ids.LEAD_VIEW,
        "title": bk.plain("Add inbound lead", 24),
        "submit": bk.plain("Add lead", 24),
        "close": bk.plain("Cancel", 24),
        "private_metadata": bk.encode({"s": study_key, "c": channel}),
        "blocks": blocks,
    }


LEAD_FIELD_BLOCKS = {
    "name": ids.LEAD_NAME_BLOCK, "phone": ids.LEAD_PHONE_BLOCK, "dob": ids.LEAD_DOB_BLOCK,
    "state": ids.LEAD_STATE_BLOCK, "source": ids.LEAD_SOURCE_BLOCK,
    "consent": ids.LEAD_CONSENT_BLOCK,
}


def parse_lead(values: dict[str, Any], study_key: str | None, view_id: str | None,
               user_id: str) -> InboundLead:
    """The submitted add-lead form (`values` is view.state.values); a value of the wrong shape
    raises BadPayload."""
    raw_dob = bk.form_value(values, ids.LEAD_DOB_BLOCK, ids.LEAD_DOB_INPUT)
    try:
        dob = dt.date.fromisoformat(raw_dob) if raw_dob else None
    except ValueError:
        raise BadPayload("`/prescreen lead`", form=True, block=ids.LEAD_DOB_BLOCK,
                         detail="dob") from None
    return InboundLead(
        study_key=bk.form_value(values, ids.LEAD_STUDY_BLOCK, ids.LEAD_STUDY_SELECT)
        or study_key or "",
        user_id=user_id,
        name=bk.form_value(values, ids.LEAD_NAME_BLOCK, ids.LEAD_NAME_INPUT) or "",
        phone=bk.form_value(values, ids.LEAD_PHONE_BLOCK, ids.LEAD_PHONE_INPUT) or "",
        dob=dob,
        state=bk.form_value(values, ids.LEAD_STATE_BLOCK, ids.LEAD_STATE_SELECT),
        source=bk.form_value(values, ids.LEAD_SOURCE_BLOCK, ids.LEAD_SOURCE_SELECT),
        consent="yes" in (bk.form_value(values, ids.LEAD_CONSENT_BLOCK,
                                        ids.LEAD_CONSENT_INPUT) or []),
        idempotency_key=f"lead:{view_id}" if view_id else None,
    )


def lead_added_text(added: LeadAdded) -> str:
    tz = f" · time zone {added.timezone}" + (" (assumed: no state)" if added.timezone_assumed else "")
    return f":white_check_mark: {added.summary} · source {added.source}{tz}"
