"""Block Kit for the log-call modal, the summaries and the status card, and form parsing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot import blocks as bk
from bot import ids, regions
from bot.prescreen.outcomes import OUTCOMES
from bot.prescreen.queries import CandidateBrief
from bot.prescreen.workflow import CallInput, NewCandidateInput
from storage.models import Question, Study


@dataclass
class ModalState:
    """What the modal remembers between updates (private_metadata)."""

    study: str | None = None
    mode: str = "new"  # new | existing
    ref: str | None = None  # fixed candidate (opened from `/prescreen log ALZ-0042` or App Home)
    channel: str | None = None

    def encode(self) -> str:
        return bk.encode({"s": self.study, "m": self.mode, "r": self.ref, "c": self.channel})


def answer_action(qid: str) -> str:
    return ids.ANSWER_INPUT + qid


def question_element(q: Question) -> bk.Block:
    action = answer_action(q.qid)
    if q.kind == "number":
        return {"type": "number_input", "action_id": action, "is_decimal_allowed": True}
    if q.kind == "yes_no":
        return {"type": "radio_buttons", "action_id": action,
                "options": [bk.option("Yes", "yes"), bk.option("No", "no")]}
    if q.kind == "choice":
        return bk.static_select(action, [(str(o), str(o)) for o in q.options], "Choose")
    return {"type": "datepicker", "action_id": action}


ADD_ON_PAGE = "New candidate? Add them on the secure page — the code comes back here."
NOTES_ON_CARD = "Add notes on the contact card (secure page)."


@dataclass(frozen=True)
class PortalLinks:
    """PHI_SURFACE=portal: the modal asks for no identifier and no note; a new candidate is added
    on the secure page (`add_candidate`, with the modal's handback token), which updates this
    modal with the new reference code."""

    add_candidate: str | None  # None until a study is picked


def log_call_modal(studies: list[Study], state: ModalState,
                   candidate: CandidateBrief | None = None, *,
                   portal: PortalLinks | None = None, external_id: str | None = None) -> bk.Block:
    study = next((s for s in studies if s.key == state.study), None)
    blocks: list[bk.Block] = [
        bk.input_block(ids.STUDY_BLOCK, "Study",
               bk.static_select(ids.STUDY_SELECT, [(s.key, f"{s.key} · {s.title}") for s in studies],
                       "Pick a study", state.study),
               dispatch=True),
    ]
    if study is None:
        blocks.append(bk.context("Pick the study to see its questionnaire."))
        return _modal(blocks, state, external_id)

    if candidate is not None:
        last = OUTCOMES[candidate.last_outcome].label if candidate.last_outcome in OUTCOMES else "none"
        line = (f"*Candidate {candidate.ref}* · call attempt {candidate.attempts + 1}"
                f" · last outcome: {last} · candidate time zone {candidate.timezone}")
        blocks.append(bk.section(line, block_id=ids.CANDIDATE_INFO_BLOCK))
        if candidate.do_not_call:
            blocks.append(bk.section(":no_entry: *Do not call.* This candidate asked not to be "
                                     "called. Log only a call they made to you."))
    else:
        if portal is not None and state.mode == "new":
            button = None
            if portal.add_candidate:
                button = {"type": "button", "action_id": ids.OPEN_PAGE_ADD,
                          "text": bk.plain("Add the candidate on the secure page", 75),
                          "url": portal.add_candidate, "style": "primary"}
            blocks.append(bk.section(ADD_ON_PAGE, block_id=ids.ADD_ON_PAGE_BLOCK,
                                     accessory=button))
        blocks.append(bk.input_block(ids.MODE_BLOCK, "Candidate", {
            "type": "radio_buttons", "action_id": ids.MODE_SELECT,
            "options": [bk.option("New candidate", "new"), bk.option("Existing candidate", "existing")],
            "initial_option": bk.option("New candidate", "new") if state.mode == "new"
            else bk.option("Existing candidate", "existing"),
        }, dispatch=True))
        if state.mode == "existing":
            blocks.append(bk.input_block(ids.REF_BLOCK, "Reference code", {
                "type": "plain_text_input", "action_id": ids.REF_INPUT, "max_length": 20,
                "placeholder": bk.plain(f"{study.key}-0042")}))
        elif portal is None:
            blocks.extend(_new_candidate_blocks())

    questions = list(study.questions)
    if questions:
        blocks.append(bk.divider())
        blocks.append(bk.section(f"*{study.key} pre-screen questions*  ·  answer all to pre-qualify"))
        for q in questions:
            blocks.append(bk.input_block(ids.QUESTION_PREFIX + q.qid, q.text, question_element(q),
                                         optional=True))

    blocks.append(bk.divider())
    blocks.append(bk.input_block(ids.OUTCOME_BLOCK, "How did the call end?",
                         bk.static_select(ids.OUTCOME_SELECT, [(o.code, o.label) for o in OUTCOMES.values()],
                                 "Choose the outcome"),
                         hint="If an answer fails a criterion, the call is logged as disqualified."))
    sites = [s for s in study.sites if s.active]
    if len(sites) > 1:
        site_options = [(s.key, f"{s.key} · {s.name}") for s in sites]
        blocks.append(bk.input_block(ids.SITE_BLOCK, "Proposed site (if pre-qualified)",
                                     bk.static_select(ids.SITE_SELECT, site_options, "Pick a site"),
                                     optional=True))
    tz_hint = candidate.timezone if candidate else "the time zone above"
    blocks.append(bk.input_block(ids.CB_DATE_BLOCK, "Callback day",
                         {"type": "datepicker", "action_id": ids.CB_DATE_INPUT}, optional=True,
                         hint="Only for “Callback requested”."))
    blocks.append(bk.input_block(ids.CB_TIME_BLOCK, "Callback time (candidate's local time)",
                         {"type": "timepicker", "action_id": ids.CB_TIME_INPUT}, optional=True,
                         hint=f"Entered in the candidate's time zone ({tz_hint})."))
    if portal is None:
        blocks.append(bk.input_block(ids.NOTES_BLOCK, "Notes", {
            "type": "plain_text_input", "action_id": ids.NOTES_INPUT, "multiline": True,
            "max_length": 2000}, optional=True,
            hint="Stored encrypted; never posted to channels."))
    else:
        blocks.append(bk.context(NOTES_ON_CARD + " The call summary links to it."))
    return _modal(blocks, state, external_id)


def _new_candidate_blocks() -> list[bk.Block]:
    return [
        bk.input_block(ids.NAME_BLOCK, "Name", {"type": "plain_text_input", "action_id": ids.NAME_INPUT,
                                        "max_length": 100}),
        bk.input_block(ids.PHONE_BLOCK, "Phone", {"type": "plain_text_input", "action_id": ids.PHONE_INPUT,
                                          "max_length": 30,
                                          "placeholder": bk.plain("(617) 555-0123")}),
        bk.input_block(ids.DOB_BLOCK, "Date of birth", {"type": "datepicker", "action_id": ids.DOB_INPUT}),
        bk.input_block(ids.REGION_BLOCK, "State", bk.static_select(
            ids.REGION_INPUT, [(k, f"{v[0]} ({k})") for k, v in regions.STATES.items()],
            "Pick a state"), optional=True),
        bk.input_block(ids.TZ_BLOCK, "Time zone", bk.static_select(
            ids.TZ_INPUT, [(tz, f"{name} · {tz}") for tz, name in regions.TIMEZONES],
            "Default: from the state"), optional=True,
            hint="Callbacks are scheduled in this time zone."),
        bk.input_block(ids.CONSENT_BLOCK, "Consent", {
            "type": "checkboxes", "action_id": ids.CONSENT_INPUT,
            "options": [bk.option("Agreed to be contacted about this study", "yes")]}, optional=True),
    ]


def _modal(blocks: list[bk.Block], state: ModalState, external_id: str | None) -> bk.Block:
    # Slack requires a submit button on any modal with input blocks.
    view: bk.Block = {
        "type": "modal",
        "callback_id": ids.LOG_CALL_VIEW,
        "title": bk.plain("Log pre-screen call", 24),
        "submit": bk.plain("Log call", 24),
        "close": bk.plain("Cancel", 24),
        "private_metadata": state.encode(),
        "blocks": blocks[: bk.MAX_MODAL_BLOCKS],
    }
    if external_id:
        view["external_id"] = external_id  # the secure page updates this modal by it
    return view


# ----- reading the submitted form -----

def _date(raw: Any) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        return None


def selected_study(values: dict[str, Any]) -> str | None:
    return bk.form_value(values, ids.STUDY_BLOCK, ids.STUDY_SELECT)


def parse_submission(values: dict[str, Any], state: ModalState, view_id: str | None,
                     user_id: str, study: Study, *, portal: bool = False) -> CallInput:
    """The submitted form as the workflow's input. `values` is view.state.values; a value of
    the wrong shape raises BadPayload (bk.form_value). In portal mode identifiers and notes are
    never read from the form (it has none): a new candidate comes from the secure page."""
    existing = state.ref
    new = None
    if existing is None:
        mode = bk.form_value(values, ids.MODE_BLOCK, ids.MODE_SELECT) or state.mode
        if mode == "existing":
            existing = (bk.form_value(values, ids.REF_BLOCK, ids.REF_INPUT) or "").strip() or None
            if existing is None:
                existing = ""
        elif not portal:
            new = NewCandidateInput(
                name=bk.form_value(values, ids.NAME_BLOCK, ids.NAME_INPUT) or "",
                phone=bk.form_value(values, ids.PHONE_BLOCK, ids.PHONE_INPUT) or "",
                dob=_date(bk.form_value(values, ids.DOB_BLOCK, ids.DOB_INPUT)),
                region=bk.form_value(values, ids.REGION_BLOCK, ids.REGION_INPUT),
                timezone=bk.form_value(values, ids.TZ_BLOCK, ids.TZ_INPUT),
                consent="yes" in (bk.form_value(values, ids.CONSENT_BLOCK, ids.CONSENT_INPUT) or []),
            )
    answers = {q.qid: bk.form_value(values, ids.QUESTION_PREFIX + q.qid, answer_action(q.qid))
               for q in study.questions}
    return CallInput(
        study_key=study.key,
        coordinator=user_id,
        outcome=bk.form_value(values, ids.OUTCOME_BLOCK, ids.OUTCOME_SELECT),
        existing_ref=existing if existing is not None else None,
        new=new,
        raw_answers=answers,
        site_key=bk.form_value(values, ids.SITE_BLOCK, ids.SITE_SELECT),
        callback_date=_date(bk.form_value(values, ids.CB_DATE_BLOCK, ids.CB_DATE_INPUT)),
        callback_time=bk.form_value(values, ids.CB_TIME_BLOCK, ids.CB_TIME_INPUT),
        notes=None if portal else bk.form_value(values, ids.NOTES_BLOCK, ids.NOTES_INPUT),
        idempotency_key=f"view:{view_id}" if view_id else None,
    )


FIELD_BLOCKS = {
    "existing_ref": ids.REF_BLOCK, "name": ids.NAME_BLOCK, "phone": ids.PHONE_BLOCK,
    "dob": ids.DOB_BLOCK, "region": ids.REGION_BLOCK, "timezone": ids.TZ_BLOCK,
    "outcome": ids.OUTCOME_BLOCK, "site": ids.SITE_BLOCK, "callback_date": ids.CB_DATE_BLOCK,
    "callback_time": ids.CB_TIME_BLOCK, "notes": ids.NOTES_BLOCK, "candidate": ids.MODE_BLOCK,
}


def errors_to_blocks(errors: dict[str, str], present: set[Any]) -> dict[str, str]:
    """Map workflow field names to the block ids present in this view."""
    out: dict[str, str] = {}
    for fieldname, msg in errors.items():
        if fieldname.startswith("answer:"):
            block = ids.QUESTION_PREFIX + fieldname.split(":", 1)[1]
        else:
            block = FIELD_BLOCKS.get(fieldname, ids.OUTCOME_BLOCK)
        if block not in present:
            block = ids.OUTCOME_BLOCK if fieldname != "existing_ref" else ids.STUDY_BLOCK
        out[block] = msg if block not in out else out[block] + " " + msg
    return out
