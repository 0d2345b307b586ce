"""Story: a coordinator finishes a call, types /prescreen, fills the study's questionnaire in a
modal and submits. The call is stored with the evaluated eligibility, the candidate gets a
reference code, the coordinator sees an ephemeral summary, and what follows is started. Bad
input is shown inline and nothing is stored; patient identity never reaches a channel or log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select

from bot import ids
from bot.forms import FormErrors
from sandbox.slack_standin.sender import state_value
from storage.models import AuditEvent, Callback, Candidate, PrescreenCall, Referral
from tests.conftest import Bot

CASEY = "U0COORD01"  # ALZ coordinator
SAM = "U0COORD02"  # ALZ + MDD coordinator
LEE = "U0LEAD001"  # ALZ approver
PAT = "U0SPONS01"  # ALZ stakeholder (sponsor)
ROBIN = "U0STRANGER"  # not a member of anything

NAME, PHONE, E164, DOB = "Margaret Quillfeather", "(617) 555-0142", "+16175550142", dt.date(1958, 4, 12)
PHI_STRINGS = [NAME, "Quillfeather", PHONE, E164, "617-555-0142", "6175550142", DOB.isoformat(),
               "04/12/1958"]
WORKDAY = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)  # a Tuesday, 10:00 in New York


@pytest.fixture(autouse=True)
def workday() -> Iterator[None]:
    """These calls are made on a Tuesday morning, whatever the real date and hour."""
    with time_machine.travel(WORKDAY, tick=True):
        yield


def new_candidate(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        ids.NAME_INPUT: NAME, ids.PHONE_INPUT: PHONE, ids.DOB_INPUT: DOB,
        ids.REGION_INPUT: "MA", ids.CONSENT_INPUT: ["yes"],
        "answer:age": "67", "answer:dx": "no", "answer:region": "NE",
        ids.OUTCOME_SELECT: "pre_qualified", ids.NOTES_INPUT: "Prefers mornings; daughter helps",
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def count(bot: Bot, model: type) -> int:
    with bot.db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


PERSON_INPUTS = (ids.NAME_INPUT, ids.PHONE_INPUT, ids.DOB_INPUT, ids.REGION_INPUT, ids.TZ_INPUT,
                 ids.CONSENT_INPUT, ids.NOTES_INPUT)


def has_block(view: dict[str, Any], block_id: str) -> bool:
    return any(b.get("block_id") == block_id for b in view["blocks"])


def choose(bot: Bot, user: str, view_id: str, block_id: str, value: str, shows: str) -> dict[str, Any]:
    """`user` picks `value` in the modal's select or radio buttons `block_id`; the app re-renders
    the modal, which then shows the block `shows`."""
    element = next(b["element"] for b in bot.standin.view(view_id)["blocks"]
                   if b.get("block_id") == block_id)
    picked = state_value(element, value)
    action = {"type": element["type"], "action_id": element["action_id"], "block_id": block_id,
              "action_ts": "1.0", **picked}
    resp = bot.slack.block_actions(user, [action], view=view_id,
                                   values={block_id: {element["action_id"]: picked}})
    assert resp.status_code == 200, resp.text
    return bot.standin.wait_for(lambda s: has_block(s.view(view_id), shows) and s.view(view_id),
                                message=f"the modal re-rendered with {shows}")


def submit(bot: Bot, user: str, view: dict[str, Any], fields: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The coordinator logs the call in the modal `view`. For a new candidate (fields with a
    name) in portal mode, where the modal asks for no identifier, they first add the candidate
    on the secure page and then log the call for the code it gives, Existing candidate."""
    if not (bot.ctx.settings.portal and ids.NAME_INPUT in fields):
        return bot.slack.submit(user, view["id"], fields)
    fields = dict(fields)
    person = {k: fields.pop(k, None) for k in PERSON_INPUTS}
    current = bot.standin.view(view["id"])
    study = fields.get(ids.STUDY_SELECT) or json.loads(current["private_metadata"]).get("s")
    try:
        ref = bot.add_candidate(user, study, name=person[ids.NAME_INPUT],
                                phone=person[ids.PHONE_INPUT], dob=person[ids.DOB_INPUT],
                                state=person[ids.REGION_INPUT],
                                consent="yes" in (person[ids.CONSENT_INPUT] or []))
    except FormErrors as exc:  # added on the page before (this call was refused then)
        already = re.match(r"Already a candidate: (\S+)\.", exc.errors.get("phone", ""))
        if already is None:
            raise
        ref = already.group(1)
    if not has_block(current, ids.MODE_BLOCK):
        choose(bot, user, view["id"], ids.STUDY_BLOCK, study, shows=ids.MODE_BLOCK)
    choose(bot, user, view["id"], ids.MODE_BLOCK, "existing", shows=ids.REF_BLOCK)
    return bot.slack.submit(user, view["id"], {**fields, ids.REF_INPUT: ref})


@pytest.mark.phi_surface("slack")
def test_single_study_coordinator_logs_a_pre_qualified_call(bot: Bot) -> None:
    view = bot.open_modal(CASEY)
    assert view["callback_id"] == ids.LOG_CALL_VIEW
    block_ids = [b.get("block_id") for b in view["blocks"]]
    assert {"q:age", "q:dx", "q:region", ids.NAME_BLOCK, ids.OUTCOME_BLOCK} <= set(block_ids)

    resp = submit(bot, CASEY, view, new_candidate())

    assert resp.status_code == 200
    assert not resp.content or resp.json().get("response_action") is None
    assert not bot.standin.is_open(view["id"])
    summary = bot.standin.wait_for(lambda s: s.ephemerals(CASEY), message="summary")[-1]
    assert summary["text"] == "ALZ-0001 · attempt 1 · pre-qualified · referral sent for approval"
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate)).one()
        assert cand.ref_code == "ALZ-0001"
        assert cand.status == "referred" and cand.attempts == 1
        # PHI is encrypted at rest and decrypts with the configured keys
        assert NAME not in cand.name_enc and E164 not in cand.phone_enc
        assert bot.ctx.cipher.decrypt(cand.name_enc) == NAME
        assert bot.ctx.cipher.decrypt(cand.phone_enc) == E164
        assert bot.ctx.cipher.decrypt(cand.dob_enc) == DOB.isoformat()
        call = s.scalars(select(PrescreenCall)).one()
        assert call.outcome == "pre_qualified" and call.eligible is True
        assert call.answers == {"age": 67, "dx": False, "region": "NE"}
        assert bot.ctx.cipher.decrypt(call.notes_enc) == "Prefers mornings; daughter helps"
        referral = s.scalars(select(Referral)).one()
        assert referral.state == "pending_approval"
        actions = [a.action for a in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert {"candidate.created", "call.logged", "referral.pending_approval"} <= set(actions)


def test_switching_study_renders_that_studys_questions(bot: Bot) -> None:
    view = bot.open_modal(SAM)
    assert not any(str(b.get("block_id", "")).startswith("q:") for b in view["blocks"])
    assert view["submit"]["text"] == "Log call"  # Slack needs it; the study select is required

    select_el = view["blocks"][0]["element"]
    action = {"type": "static_select", "action_id": ids.STUDY_SELECT, "block_id": ids.STUDY_BLOCK,
              "selected_option": state_value(select_el, "MDD")["selected_option"],
              "action_ts": "1.0"}
    values = {ids.STUDY_BLOCK: {ids.STUDY_SELECT: state_value(select_el, "MDD")}}
    resp = bot.slack.block_actions(SAM, [action], view=view["id"], values=values)
    assert resp.status_code == 200

    def rendered(s):  # type: ignore[no-untyped-def]
        v = s.view(view["id"])
        return v if any(b.get("block_id") == "q:age" for b in v["blocks"]) else None

    updated = bot.standin.wait_for(rendered, message="MDD questions rendered")
    qblocks = [b["block_id"] for b in updated["blocks"] if str(b.get("block_id", "")).startswith("q:")]
    assert qblocks == ["q:age"]
    resp = submit(bot, SAM, updated, {
        ids.STUDY_SELECT: "MDD", ids.NAME_INPUT: "Olu Brightwater", ids.PHONE_INPUT: "312 555 0199",
        ids.DOB_INPUT: dt.date(1990, 1, 2), ids.CONSENT_INPUT: ["yes"], "answer:age": "36",
        ids.OUTCOME_SELECT: "no_answer"})
    assert resp.status_code == 200
    summary = bot.standin.wait_for(lambda s: s.ephemerals(SAM))[-1]["text"]
    assert summary.startswith("MDD-0001 · attempt 1 · no answer")


def _errors(resp) -> dict[str, str]:  # type: ignore[no-untyped-def]
    body = resp.json()
    assert body["response_action"] == "errors", body
    return body["errors"]


@pytest.mark.phi_surface("slack")
@pytest.mark.parametrize(
    ("case", "overrides", "block", "says"),
    [
        ("phone not a number", {ids.PHONE_INPUT: "call me maybe"}, ids.PHONE_BLOCK, "not a phone number"),
        ("phone invalid", {ids.PHONE_INPUT: "(617) 555-01"}, ids.PHONE_BLOCK, "not valid"),
        ("dob in the future", {ids.DOB_INPUT: dt.date(2031, 1, 1)}, ids.DOB_BLOCK, "future"),
        ("age over 120", {ids.DOB_INPUT: dt.date(1890, 1, 1)}, ids.DOB_BLOCK, "older than 120"),
        ("number answer not a number", {"answer:age": "sixty"}, "q:age", "Enter a number"),
        ("missing answer to pre-qualify", {"answer:dx": None}, "q:dx", "Answer this"),
        ("callback without a day", {ids.OUTCOME_SELECT: "callback_requested"}, ids.CB_DATE_BLOCK,
         "Pick the day"),
        ("callback in the past", {ids.OUTCOME_SELECT: "callback_requested",
                                  ids.CB_DATE_INPUT: dt.date(2020, 5, 1), ids.CB_TIME_INPUT: "10:00"},
         ids.CB_TIME_BLOCK, "has passed"),
    ],
)
def test_bad_input_is_shown_inline_and_nothing_is_stored(bot: Bot, case: str, overrides: dict[str, Any],
                                                         block: str, says: str) -> None:
    view = bot.open_modal(CASEY)
    if overrides.get(ids.NOTES_INPUT, "") is None:
        overrides.pop(ids.NOTES_INPUT)
    fields = new_candidate(**overrides)
    if "answer:age" in overrides and overrides["answer:age"] == "sixty":
        # Slack's number_input refuses letters client-side; a crafted payload still must not pass
        values = bot.slack.fill(view["id"], {**fields, "answer:age": None})
        values["q:age"]["answer:age"]["value"] = "sixty"
        bot.standin.set_view_state(view["id"], values)
        resp = bot.slack._interactive({
            "type": "view_submission", "team": {"id": "T0TEST001"}, "user": {"id": CASEY},
            "api_app_id": "A0", "view": bot.standin.view(view["id"])})
    else:
        resp = submit(bot, CASEY, view, fields)

    errors = _errors(resp)
    assert block in errors, errors
    assert says in errors[block]
    assert bot.standin.is_open(view["id"])
    assert count(bot, Candidate) == 0 and count(bot, PrescreenCall) == 0


@pytest.mark.phi_surface("slack")
def test_duplicate_candidate_is_offered_the_existing_reference_code(bot: Bot) -> None:
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.OUTCOME_SELECT: "no_answer"}))
    view = bot.open_modal(CASEY)
    resp = submit(bot, CASEY, view, new_candidate(**{ids.PHONE_INPUT: "617.555.0142"}))
    errors = _errors(resp)
    assert "Already on file as ALZ-0001" in errors[ids.PHONE_BLOCK]
    assert count(bot, Candidate) == 1 and count(bot, PrescreenCall) == 1


def test_failed_criterion_logs_disqualified_naming_the_question_not_the_value(bot: Bot) -> None:
    resp = submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{"answer:age": "45"}))
    assert resp.status_code == 200
    summary = bot.standin.wait_for(lambda s: s.ephemerals(CASEY))[-1]
    assert summary["text"] == "ALZ-0001 · attempt 1 · disqualified · failed: age"
    assert "45" not in summary["text"]
    with bot.db.session() as s:
        call = s.scalars(select(PrescreenCall)).one()
        assert call.outcome == "disqualified" and call.failed_criteria == ["age"]
        assert s.scalar(select(func.count()).select_from(Referral)) == 0


def test_known_candidate_second_attempt_and_slack_retry_stores_one_call(bot: Bot) -> None:
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.OUTCOME_SELECT: "no_answer"}))
    view = bot.open_modal(CASEY, text="log ALZ-0001")
    info = next(b for b in view["blocks"] if b.get("block_id") == ids.CANDIDATE_INFO_BLOCK)
    assert "ALZ-0001" in info["text"]["text"] and "call attempt 2" in info["text"]["text"]
    assert ids.NAME_BLOCK not in [b.get("block_id") for b in view["blocks"]]

    values = bot.slack.fill(view["id"], {ids.OUTCOME_SELECT: "left_voicemail"})
    first = bot.slack.view_submission(CASEY, view["id"], values)
    assert first.status_code == 200
    # Slack retries the very same payload (e.g. after a slow answer): still one call
    payload_view = bot.standin.view(view["id"])
    retry = bot.slack._interactive({
        "type": "view_submission", "team": {"id": "T0TEST001"}, "user": {"id": CASEY},
        "api_app_id": "A0", "trigger_id": bot.standin.issue_trigger_id(CASEY), "view": payload_view,
    }, retry_num=1, retry_reason="http_timeout")
    assert retry.status_code == 200
    with bot.db.session() as s:
        attempts = [c.attempt_no for c in s.scalars(select(PrescreenCall).order_by(PrescreenCall.id))]
    assert attempts == [1, 2]
    texts = bot.ephemeral_texts(CASEY)
    assert any(t.startswith("ALZ-0001 · attempt 2 · left voicemail · next attempt ")
               and t.endswith(" candidate time · 3 attempts left") for t in texts), texts


def test_callback_requested_is_stored_in_the_candidates_time_zone(bot: Bot) -> None:
    day = dt.date(2026, 11, 27)
    resp = submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{
        ids.REGION_INPUT: "IL", ids.OUTCOME_SELECT: "callback_requested",
        ids.CB_DATE_INPUT: day, ids.CB_TIME_INPUT: "16:00"}))
    assert resp.status_code == 200
    with bot.db.session() as s:
        cb = s.scalars(select(Callback)).one()
        cand = s.scalars(select(Candidate)).one()
    assert cand.timezone == "America/Chicago"  # derived from the state
    local = cb.due_at.astimezone(__import__("zoneinfo").ZoneInfo("America/Chicago"))
    assert (local.date(), local.hour, local.minute) == (day, 16, 0)
    assert cb.status == "scheduled" and cb.remind_at == cb.due_at - dt.timedelta(minutes=10)
    summary = bot.standin.wait_for(lambda s: s.ephemerals(CASEY))[-1]["text"]
    assert "callback" in summary and "16:00" in summary and "candidate time" in summary


def test_do_not_call_flags_the_candidate_everywhere(bot: Bot) -> None:
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.OUTCOME_SELECT: "do_not_call"}))
    with bot.db.session() as s:
        assert s.scalars(select(Candidate)).one().do_not_call is True
    view = bot.open_modal(CASEY, text="log ALZ-0001")
    assert any("Do not call" in (b.get("text") or {}).get("text", "") for b in view["blocks"])
    resp = submit(bot, CASEY, view, {ids.OUTCOME_SELECT: "callback_requested",
                                     ids.CB_DATE_INPUT: dt.date(2026, 11, 26),
                                     ids.CB_TIME_INPUT: "11:00"})
    assert "do-not-call" in _errors(resp)[ids.OUTCOME_BLOCK]
    status = bot.slack.slash_command(CASEY, text="status ALZ-0001").json()
    assert "Do not call" in str(status["blocks"])


def test_people_outside_the_study_are_refused(bot: Bot) -> None:
    for user in (ROBIN, PAT):
        body = bot.slack.slash_command(user, text="").json()
        assert body["response_type"] == "ephemeral"
        assert "coordinator" in body["text"]
        assert bot.standin.open_view(user) is None
    body = bot.slack.slash_command(CASEY, text="log MDD").json()
    assert "You are not a member of MDD. Ask your admin to add you." in body["text"]
    body = bot.slack.slash_command(CASEY, text="log ALZ-9999").json()
    assert "No candidate ALZ-9999" in body["text"]


@pytest.mark.phi_surface("slack")
def test_status_shows_identity_only_to_study_staff_and_audits_it(bot: Bot) -> None:
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.OUTCOME_SELECT: "considering"}))
    mine = bot.slack.slash_command(CASEY, text="status ALZ-0001").json()
    assert mine["response_type"] == "ephemeral"
    assert NAME in str(mine["blocks"]) and E164 in str(mine["blocks"])
    sponsor = bot.slack.slash_command(PAT, text="status ALZ-0001").json()
    assert "ALZ-0001" in str(sponsor["blocks"]) and NAME not in str(sponsor) and E164 not in str(sponsor)
    stranger = bot.slack.slash_command(ROBIN, text="status ALZ-0001").json()
    assert "not a member of ALZ" in stranger["text"] and NAME not in str(stranger)
    with bot.db.session() as s:
        views = s.scalars(select(AuditEvent).where(AuditEvent.action == "phi.viewed")).all()
    assert [(v.actor, v.entity_id) for v in views] == [(CASEY, "ALZ-0001")]


@pytest.mark.phi_surface("slack")
def test_find_by_phone_or_name_returns_reference_codes(bot: Bot) -> None:
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.OUTCOME_SELECT: "considering"}))
    by_phone = bot.slack.slash_command(CASEY, text="find 617-555-0142").json()
    assert "ALZ-0001" in str(by_phone["blocks"])
    by_name = bot.slack.slash_command(CASEY, text=f"find {NAME.lower()}").json()
    assert "ALZ-0001" in str(by_name["blocks"])
    other = bot.slack.slash_command(SAM, text="find 312 555 0100").json()
    assert "No candidate" in other["text"]
    assert bot.slack.slash_command(PAT, text="find 617-555-0142").json()["text"].startswith(":warning:")


def test_app_home_shows_my_queue(bot: Bot) -> None:
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.OUTCOME_SELECT: "no_answer"}))
    bot.slack.app_home_opened(CASEY)
    home = bot.standin.wait_for(lambda s: s.home(CASEY), message="home published")
    text = str(home["blocks"])
    assert "Needs another attempt" in text and "ALZ-0001" in text
    button = next(el for b in home["blocks"] if b.get("accessory")
                  for el in [b["accessory"]] if el.get("action_id") == ids.HOME_LOG_CALL)
    before = len(bot.standin.view_stack(CASEY))
    bot.slack.click(CASEY, ids.HOME_LOG_CALL, button["value"], view=home["id"])
    bot.standin.wait_for(lambda s: len(s.view_stack(CASEY)) > before, message="modal from home")
    modal = bot.standin.open_view(CASEY)
    assert "ALZ-0001" in str(modal["blocks"])


@pytest.mark.phi_surface("slack")
def test_no_patient_identity_in_channels_dms_or_logs(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate())
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.PHONE_INPUT: "garbage"}))
    bot.deliver()
    bot.slack.app_home_opened(CASEY)
    bot.standin.wait_for(lambda s: s.home(CASEY))
    sent_anywhere_public = "\n".join(
        str(m) for m in bot.standin.messages()) + "\n".join(str(v) for v in bot.standin.views.values()
                                                           if v.get("type") == "home")
    logs = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    for phi in PHI_STRINGS:
        assert phi not in sent_anywhere_public, phi
        assert phi not in logs, phi
    assert bot.standin.messages("C0ALZ0001"), "the approval card was posted"


@pytest.mark.parametrize("outcome", ["pre_qualified", "disqualified", "callback_requested",
                                     "considering", "no_answer", "left_voicemail", "not_interested",
                                     "wrong_number", "do_not_call"])
def test_every_outcome_can_be_logged(bot: Bot, outcome: str) -> None:
    from bot.prescreen.outcomes import OUTCOMES

    extra: dict[str, Any] = {ids.OUTCOME_SELECT: outcome}
    if outcome == "callback_requested":
        extra |= {ids.REGION_INPUT: "NY", ids.CB_DATE_INPUT: dt.date(2026, 11, 28),
                  ids.CB_TIME_INPUT: "12:00"}
    resp = submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**extra))
    assert resp.status_code == 200 and "errors" not in resp.text, resp.text
    with bot.db.session() as s:
        call = s.scalars(select(PrescreenCall)).one()
        cand = s.scalars(select(Candidate)).one()
    assert call.outcome == outcome
    assert cand.status == OUTCOMES[outcome].status
    summary = bot.standin.wait_for(lambda s: s.ephemerals(CASEY))[-1]["text"]
    assert summary.startswith(f"ALZ-0001 · attempt 1 · {OUTCOMES[outcome].label.lower()}")


def test_a_retried_event_is_handled_once(bot: Bot) -> None:
    first = bot.slack.app_home_opened(CASEY)
    assert first.status_code == 200
    bot.standin.wait_for(lambda s: s.calls_to("views.publish"))
    event = {"type": "app_home_opened", "user": CASEY, "tab": "home",
             "channel": bot.standin.dm_channel(CASEY)}
    bot.slack.event(event, event_id="Ev0RETRY01")
    bot.standin.wait_for(lambda s: len(s.calls_to("views.publish")) == 2)
    again = bot.slack.event(event, event_id="Ev0RETRY01", retry_num=1, retry_reason="http_timeout")
    assert again.status_code == 200
    import time

    time.sleep(0.3)
    assert len(bot.standin.calls_to("views.publish")) == 2


def test_switching_to_an_existing_candidate_asks_for_the_code(bot: Bot) -> None:
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.OUTCOME_SELECT: "no_answer"}))
    view = bot.open_modal(CASEY)
    mode_el = next(b["element"] for b in view["blocks"] if b.get("block_id") == ids.MODE_BLOCK)
    picked = state_value(mode_el, "existing")
    action = {"type": "radio_buttons", "action_id": ids.MODE_SELECT, "block_id": ids.MODE_BLOCK,
              "selected_option": picked["selected_option"], "action_ts": "2.0"}
    resp = bot.slack.block_actions(CASEY, [action], view=view["id"],
                                   values={ids.MODE_BLOCK: {ids.MODE_SELECT: picked}})
    assert resp.status_code == 200

    def switched(s):  # type: ignore[no-untyped-def]
        blocks = [b.get("block_id") for b in s.view(view["id"])["blocks"]]
        return ids.REF_BLOCK in blocks and ids.NAME_BLOCK not in blocks

    bot.standin.wait_for(switched, message="reference-code field shown")
    wrong = submit(bot, CASEY, bot.standin.view(view["id"]),
                   {ids.REF_INPUT: "ALZ-0404", ids.OUTCOME_SELECT: "no_answer"})
    assert "No ALZ candidate ALZ-0404" in _errors(wrong)[ids.REF_BLOCK]
    ok = submit(bot, CASEY, bot.standin.view(view["id"]),
                {ids.REF_INPUT: "alz-0001", ids.OUTCOME_SELECT: "left_voicemail"})
    assert ok.status_code == 200 and "errors" not in ok.text
    bot.standin.wait_for(lambda _: bot.ephemeral_texts(CASEY)[-1].startswith(
        "ALZ-0001 · attempt 2 · left voicemail"), message="the second attempt's summary")


def test_home_refresh_button_republishes_the_queue(bot: Bot) -> None:
    bot.slack.app_home_opened(CASEY)
    home = bot.standin.wait_for(lambda s: s.home(CASEY))
    assert "No callbacks due today" in str(home["blocks"])
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.OUTCOME_SELECT: "no_answer"}))
    publishes = len(bot.standin.calls_to("views.publish"))
    bot.slack.click(CASEY, ids.HOME_REFRESH, view=bot.standin.home(CASEY)["id"])
    bot.standin.wait_for(lambda s: len(s.calls_to("views.publish")) > publishes)
    assert "ALZ-0001" in str(bot.standin.home(CASEY)["blocks"])


def test_a_database_error_is_logged_without_the_screening_answers(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    """The database refuses the call row (a constraint added for the test); the failure is
    logged with its SQL but never with the values bound to it: the answers, in plain text."""
    with bot.db.engine.begin() as conn:
        if bot.db.is_postgres:
            conn.exec_driver_sql("ALTER TABLE prescreen_calls ADD CONSTRAINT test_refuse_calls "
                                 "CHECK (attempt_no < 0) NOT VALID")
        else:
            conn.exec_driver_sql("CREATE TRIGGER test_refuse_calls BEFORE INSERT ON prescreen_calls "
                                 "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    caplog.set_level(logging.DEBUG)
    try:
        view = bot.open_modal(CASEY)
        resp = submit(bot, CASEY, view, new_candidate(**{"answer:region": "SE"}))
    finally:
        with bot.db.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE prescreen_calls DROP CONSTRAINT test_refuse_calls"
                                 if bot.db.is_postgres else "DROP TRIGGER test_refuse_calls")

    assert "Not saved" in " ".join(_errors(resp).values())
    logged = caplog.text
    assert "IntegrityError" in logged and "INSERT INTO prescreen_calls" in logged
    assert '"region": "SE"' not in logged and '"age": 67' not in logged
    assert count(bot, PrescreenCall) == 0


def test_a_replayed_submission_answers_only_its_author(bot: Bot) -> None:
    """Slack's retry of a submission gets the earlier result, but only after the role check:
    someone else replaying a coordinator's form (same view id) learns nothing about it."""
    view = bot.open_modal(CASEY)
    assert submit(bot, CASEY, view, new_candidate()).status_code == 200
    submitted = bot.standin.view(view["id"])
    calls = count(bot, PrescreenCall)

    for other, says in ((ROBIN, "not a member of ALZ"), (PAT, "Only coordinators or admins"),
                        (SAM, "submitted by someone else")):
        resp = bot.slack._interactive({
            "type": "view_submission", "team": {"id": "T0TEST001"}, "user": {"id": other},
            "api_app_id": "A0", "trigger_id": bot.standin.issue_trigger_id(other),
            "view": submitted}, retry_num=1, retry_reason="http_timeout")
        assert resp.status_code == 200
        assert says in str(_errors(resp)), resp.text
        assert "ALZ-0001" not in resp.text and "attempt" not in resp.text
    time.sleep(0.3)
    for other in (ROBIN, PAT, SAM):
        assert not any("ALZ-0001" in t for t in bot.ephemeral_texts(other))
    assert count(bot, PrescreenCall) == calls


@pytest.mark.phi_surface("slack")
def test_status_shows_a_typed_name_as_typed_never_as_a_mention(bot: Bot) -> None:
    """Names are typed by people: the status reply escapes them for Slack's formatting, so
    `<!channel>` or `<@U…>` in a name is shown, never acted on."""
    typed = "Ann <!channel> & <@U0LEAD001> <https://x.example|Smith>"
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{ids.NAME_INPUT: typed,
                                                               ids.OUTCOME_SELECT: "considering"}))
    reply = bot.slack.slash_command(CASEY, text="status ALZ-0001").json()
    shown = str(reply["blocks"])
    assert ("Ann &lt;!channel&gt; &amp; &lt;@U0LEAD001&gt; &lt;https://x.example|Smith&gt;"
            in shown)
    assert "<!channel>" not in shown and "<@U0LEAD001>" not in shown and "<https" not in shown
