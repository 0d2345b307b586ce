"""Story: a lead phones in or a physician refers someone; the coordinator types
`/prescreen lead MDD`, fills name, phone, state and source, and the lead waits in needs_call for
its first call. Problems show next to the field; a known phone names only the existing ref code."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import ids
from sandbox.slack_standin.sender import state_value
from storage.models import AuditEvent, Candidate
from tests.conftest import Bot

SAM = "U0COORD02"  # ALZ + MDD coordinator
CASEY = "U0COORD01"  # ALZ coordinator only
PAT = "U0SPONS01"  # ALZ stakeholder
NAME, PHONE, E164 = "Theodora Quimbleworth", "(312) 555-0177", "+13125550177"
PHI = [NAME, "Quimbleworth", PHONE, E164, "312-555-0177", "3125550177", "1971-06-05"]

# The subject is the add-lead modal (identifiers typed in Slack); in portal mode `/prescreen lead`
# points to the page instead (tests/test_identifiers_stay_off_slack.py).
pytestmark = pytest.mark.phi_surface("slack")


def lead(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {ids.LEAD_NAME_INPUT: NAME, ids.LEAD_PHONE_INPUT: PHONE,
                              ids.LEAD_DOB_INPUT: dt.date(1971, 6, 5), ids.LEAD_STATE_SELECT: "IL",
                              ids.LEAD_SOURCE_SELECT: "physician"}
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def candidates(bot: Bot) -> list[Candidate]:
    with bot.db.session() as s:
        return list(s.scalars(select(Candidate).order_by(Candidate.id)))


def errors(resp: Any) -> dict[str, str]:
    body = resp.json()
    assert body["response_action"] == "errors", body
    return body["errors"]


def test_coordinator_adds_an_inbound_lead(bot: Bot) -> None:
    view = bot.open_modal(SAM, "lead MDD", channel_id="C0MDD0001")
    assert view["callback_id"] == ids.LEAD_VIEW
    source = next(b for b in view["blocks"] if b.get("block_id") == ids.LEAD_SOURCE_BLOCK)
    assert [o["value"] for o in source["element"]["options"]] == ["web-ads", "physician", "other"]

    resp = bot.slack.submit(SAM, view["id"], lead())
    assert resp.status_code == 200
    assert not resp.content or resp.json().get("response_action") is None
    text = bot.standin.wait_for(lambda s: s.ephemerals(SAM), message="confirmation")[-1]["text"]
    assert "MDD-0001 added · needs first call" in text and "source physician" in text
    cand = candidates(bot)[0]
    assert (cand.ref_code, cand.status, cand.source, cand.owner_id) == \
        ("MDD-0001", "needs_call", "physician", None)
    assert (cand.region, cand.timezone, cand.consent_to_contact) == ("IL", "America/Chicago", True)
    assert bot.ctx.cipher.decrypt(cand.phone_enc) == E164
    assert cand.phone_index == bot.ctx.cipher.index(E164)
    assert cand.dedupe_index == bot.ctx.cipher.index("MDD", E164, "1971-06-05")
    with bot.db.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "candidate.created")).one()
    assert event.actor == SAM and event.entity_id == "MDD-0001"
    assert not any(p in str(event.after) for p in PHI)


def test_study_choice_shows_that_studys_sources(bot: Bot) -> None:
    view = bot.open_modal(SAM, "lead")  # two studies: pick one first
    select_el = view["blocks"][0]["element"]
    source = next(b for b in view["blocks"] if b.get("block_id") == ids.LEAD_SOURCE_BLOCK)
    assert [o["value"] for o in source["element"]["options"]] == ["other"]
    action = {"type": "static_select", "action_id": ids.LEAD_STUDY_SELECT,
              "block_id": ids.LEAD_STUDY_BLOCK,
              "selected_option": state_value(select_el, "MDD")["selected_option"], "action_ts": "1.0"}
    values = {ids.LEAD_STUDY_BLOCK: {ids.LEAD_STUDY_SELECT: state_value(select_el, "MDD")}}
    assert bot.slack.block_actions(SAM, [action], view=view["id"], values=values).status_code == 200

    def sources(s: Any) -> list[str] | None:
        block = next(b for b in s.view(view["id"])["blocks"]
                     if b.get("block_id") == ids.LEAD_SOURCE_BLOCK)
        got = [o["value"] for o in block["element"]["options"]]
        return got if len(got) > 1 else None

    assert bot.standin.wait_for(sources, message="MDD sources") == ["web-ads", "physician", "other"]


@pytest.mark.parametrize(("case", "overrides", "block", "says"), [
    ("bad phone", {ids.LEAD_PHONE_INPUT: "555-12"}, ids.LEAD_PHONE_BLOCK, "not valid"),
    ("future birth", {ids.LEAD_DOB_INPUT: dt.date(2999, 1, 1)}, ids.LEAD_DOB_BLOCK, "future"),
    ("no source", {ids.LEAD_SOURCE_SELECT: None}, ids.LEAD_SOURCE_BLOCK, "where the lead came"),
    ("no consent", {ids.LEAD_CONSENT_INPUT: []}, ids.LEAD_CONSENT_BLOCK, "agreed to be contacted"),
])
def test_problems_are_shown_next_to_the_field_and_nothing_is_stored(
        bot: Bot, case: str, overrides: dict[str, Any], block: str, says: str) -> None:
    view = bot.open_modal(SAM, "lead MDD")
    if overrides.get(ids.LEAD_SOURCE_SELECT, "x") is None:
        # the source select is required in Slack; a hand-made payload without it still arrives
        values = bot.slack.fill(view["id"], lead(**{ids.LEAD_SOURCE_SELECT: "physician"}))
        values[ids.LEAD_SOURCE_BLOCK][ids.LEAD_SOURCE_SELECT]["selected_option"] = {
            "text": {"type": "plain_text", "text": "Radio"}, "value": "radio"}
        resp = bot.slack.view_submission(SAM, view["id"], values)
        says = "Pick where the lead came from"
    else:
        resp = bot.slack.submit(SAM, view["id"], lead(**overrides))
    assert says.lower() in errors(resp)[block].lower()
    assert candidates(bot) == []
    assert bot.standin.is_open(view["id"])


def test_a_known_phone_names_only_the_existing_ref(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first = bot.open_modal(SAM, "lead MDD")
    assert bot.slack.submit(SAM, first["id"], lead()).status_code == 200
    bot.standin.wait_for(lambda s: s.ephemerals(SAM), message="first added")

    again = bot.open_modal(SAM, "lead MDD")
    resp = bot.slack.submit(SAM, again["id"], lead(**{ids.LEAD_NAME_INPUT: "Teddy Q.",
                                                      ids.LEAD_PHONE_INPUT: "312.555.0177",
                                                      ids.LEAD_DOB_INPUT: None}))
    message = errors(resp)[ids.LEAD_PHONE_BLOCK]
    assert message.startswith("Already a candidate: MDD-0001.")
    assert not any(p in message for p in PHI)
    assert len(candidates(bot)) == 1
    # ...but the same phone is a new lead for another study
    alz = bot.open_modal(SAM, "lead ALZ")
    assert bot.slack.submit(SAM, alz["id"], lead(**{ids.LEAD_SOURCE_SELECT: "other"})).status_code == 200
    refs = bot.standin.wait_for(lambda s: [e["text"] for e in s.ephemerals(SAM)
                                           if "ALZ-0001 added" in e["text"]], message="ALZ lead")
    assert refs and "source other" in refs[0]
    assert not any(p in caplog.text for p in PHI)


def test_who_may_add_leads(bot: Bot) -> None:
    resp = bot.slack.slash_command(PAT, text="lead ALZ")
    assert "Only coordinators or admins of ALZ can add leads; you are a stakeholder." in resp.json()["text"]
    resp = bot.slack.slash_command(CASEY, text="lead MDD")
    assert "You are not a member of MDD. Ask your admin to add you." in resp.json()["text"]
    with bot.db.session() as s:
        assert s.scalar(select(func.count(Candidate.id))) == 0


def test_a_slack_retry_of_the_same_submission_adds_one_lead(bot: Bot) -> None:
    from bot.leads.intake import InboundLead, add_lead

    form = InboundLead(study_key="MDD", user_id=SAM, name=NAME, phone=PHONE, dob=None, state="IL",
                       source="web-ads", consent=True, idempotency_key="lead:V0RETRY")
    first, again = add_lead(bot.ctx, form), add_lead(bot.ctx, form)
    assert first.ref == again.ref == "MDD-0001" and again.replay and not first.replay
    assert len(candidates(bot)) == 1


def test_a_do_not_call_phone_is_refused_without_naming_the_other_study(bot: Bot) -> None:
    """Do-not-call holds across studies, but the answer names no other study and no reference
    code: an ALZ coordinator must not learn who is a candidate in MDD. Each check is audited."""
    from sqlalchemy import update

    first = bot.open_modal(SAM, "lead MDD")
    assert bot.slack.submit(SAM, first["id"], lead()).status_code == 200
    bot.standin.wait_for(lambda s: s.ephemerals(SAM), message="MDD lead added")
    with bot.db.session() as s:
        s.execute(update(Candidate).values(do_not_call=True))

    view = bot.open_modal(CASEY, "lead ALZ")  # Casey works on ALZ only
    resp = bot.slack.submit(CASEY, view["id"], lead(**{ids.LEAD_SOURCE_SELECT: "other"}))
    message = errors(resp)[ids.LEAD_PHONE_BLOCK]
    assert message == "This number asked not to be called. It can't be added."
    assert "MDD" not in resp.text and "0001" not in resp.text
    assert [c.ref_code for c in candidates(bot)] == ["MDD-0001"]
    with bot.db.session() as s:
        checks = s.scalars(select(AuditEvent).where(AuditEvent.action == "lead.do_not_call_checked")
                           .order_by(AuditEvent.id)).all()
        trail = [(a.actor, a.entity, a.entity_id, a.after) for a in checks]
        stored = " ".join(str((a.before, a.after, a.reason)) for a in checks)
    assert trail == [(SAM, "study", "MDD", {"outcome": "clear"}),
                     (CASEY, "study", "ALZ", {"outcome": "do_not_call"})]
    assert not any(p in stored for p in PHI)


def test_a_replayed_submission_is_answered_only_to_whoever_may_add_leads(bot: Bot) -> None:
    """A form's id is not a key to someone else's result: the role is checked before a retry
    is answered, so replaying a coordinator's submission tells an outsider nothing."""
    from bot.errors import NotAllowed
    from bot.leads.intake import InboundLead, add_lead

    form = InboundLead(study_key="MDD", user_id=SAM, name=NAME, phone=PHONE, dob=None, state="IL",
                       source="web-ads", consent=True, idempotency_key="lead:V0REPLAY")
    assert add_lead(bot.ctx, form).ref == "MDD-0001"
    for outsider in ("U0STRANGER", CASEY, PAT):  # no MDD role, and an ALZ coordinator
        with pytest.raises(NotAllowed) as refused:
            add_lead(bot.ctx, InboundLead(**{**form.__dict__, "user_id": outsider}))
        assert "MDD-0001" not in refused.value.message
    assert len(candidates(bot)) == 1
