"""Story: one access policy. An admin gives Rory a role in ALZ (coordinator, approver,
stakeholder, admin) or none at all. Whatever Rory then asks of the bot — log a call, add a lead,
work the queue, assign a lead, set a wait reason, look a candidate up, search, list referrals,
approve one, see the stats — is allowed or refused exactly as the one table in `bot.access`
says, and every refusal reads the same way: "Only coordinators or admins of ALZ can log calls;
you are a stakeholder." or "You are not a member of ALZ. Ask your admin to add you." Change the
table and the bot changes with it: there is no other place that decides."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import access
from bot.access import Action, allows, nowhere_text, refusal_text
from bot.studies.importer import import_studies
from storage.models import Referral
from tests.conftest import FIXTURES, Bot
from tests.leads_factory import make_lead
from tests.test_log_prescreen_call import CASEY
from tests.test_referral_pipeline import pre_qualify

RORY = "U0RORY001"
NO_ROLE = None
ROLES_AND_NONE = [*access.ROLES, NO_ROLE]

# one sentence, whatever the action: the role-holder form and the non-member form
ONE_WORDING = re.compile(
    r":warning: (Only [a-z, ]+ of (ALZ|a study) can [^;]+; you are (an? [a-z]+ of ALZ|an? [a-z]+|"
    r"not a member of any study yet\. Ask your admin to add you)\.?"
    r"|You are not a member of (ALZ|any study yet)\. Ask your admin to add you\.)")


def give_rory(bot: Bot, tmp_path: Path, role: str | None) -> None:
    """`prescreen-bot studies import` with Rory in ALZ as `role` (not listed at all for None)."""
    if role is None:
        return
    data = yaml.safe_load((FIXTURES / "studies.yaml").read_text())
    data["members"].append({"slack_id": RORY, "email": "rory@example.org",
                            "timezone": "America/New_York", "roles": {"ALZ": role}})
    path = tmp_path / "studies.yaml"
    path.write_text(yaml.safe_dump(data))
    import_studies(bot.db, path, actor="test")


@dataclass(frozen=True)
class Ask:
    """One thing Rory asks for through Slack, and how to tell that the bot did it."""

    action: Action
    command: str
    done: Callable[[Bot, dict[str, Any], int], bool]  # (bot, answer, forms open before)
    study_scoped: bool = True  # names ALZ (or an ALZ candidate); otherwise "any of your studies"


def opened_a_form(bot: Bot, body: dict[str, Any], views_before: int) -> bool:
    """The form opens just after the answer (views.open follows the acknowledgement)."""
    return bool(bot.standin.wait_for(lambda s: len(s.views) > views_before, message="a form"))


def offered_to_add_a_lead(bot: Bot, body: dict[str, Any], views_before: int) -> bool:
    """The add-lead form opens (PHI_SURFACE=slack), or the answer links to the secure page's
    add-candidate form (portal: identifiers are never typed in Slack)."""
    if bot.ctx.settings.portal:
        return "/secure/candidates/new?study=ALZ" in str(body.get("blocks"))
    return opened_a_form(bot, body, views_before)


def answered(bot: Bot, body: dict[str, Any], views_before: int = 0) -> bool:
    return not str(body.get("text", "")).startswith(":warning:")


ASKS = [
    Ask(Action.LOG_CALL, "log ALZ", opened_a_form),
    Ask(Action.ADD_LEAD, "lead ALZ", offered_to_add_a_lead),
    Ask(Action.WORK_QUEUE, "queue ALZ", answered),
    Ask(Action.VIEW_STATS, "stats ALZ", answered),
    Ask(Action.VIEW_REFERRALS, "referrals ALZ", answered),
    Ask(Action.VIEW_CANDIDATE, "status {lead}", answered),
    Ask(Action.SET_WAIT_REASON, "reason {lead} no_response",
        lambda bot, body, _: "waits: no response" in body["text"]),
    Ask(Action.ASSIGN_LEAD, f"assign {{lead}} <@{CASEY}|casey>",
        lambda bot, body, _: "is now" in body["text"]),
    Ask(Action.DECIDE_REFERRAL, "referral {referral} approved",
        lambda bot, body, _: answered(bot, body) and referral_state(bot) != "pending_approval"),
    Ask(Action.FIND_CANDIDATE, "find Jane Roe", answered, study_scoped=False),
]


def referral_state(bot: Bot) -> str:
    with bot.db.session() as s:
        return str(s.query(Referral.state).one()[0])


def expected_refusal(role: str | None, ask: Ask) -> str:
    if ask.study_scoped:
        return ":warning: " + refusal_text("ALZ", role, ask.action)
    return ":warning: " + nowhere_text([("ALZ", role)] if role else [], ask.action)


@pytest.mark.parametrize("role", ROLES_AND_NONE, ids=lambda r: r or "not-a-member")
def test_each_request_is_allowed_or_refused_exactly_as_the_table_says(
        bot: Bot, tmp_path: Path, role: str | None) -> None:
    pre_qualify(bot)  # ALZ-0001, its referral pending approval
    lead = make_lead(bot.ctx, "ALZ", bot.ctx.clock.now() - dt.timedelta(hours=1))
    give_rory(bot, tmp_path, role)

    wrong: list[str] = []
    for ask in ASKS:
        views_before = len(bot.standin.views)
        rorys_form = bot.standin.open_view(RORY)
        resp = bot.slack.slash_command(RORY, text=ask.command.format(lead=lead,
                                                                       referral="ALZ-0001"))
        assert resp.status_code == 200
        body = resp.json() if resp.text else {}
        text = str(body.get("text", ""))
        if allows(role, ask.action):
            if not ask.done(bot, body, views_before):
                wrong.append(f"{ask.action.name}: refused or not done: {text!r}")
        else:
            if text != expected_refusal(role, ask):
                wrong.append(f"{ask.action.name}: {text!r} != {expected_refusal(role, ask)!r}")
            if bot.standin.open_view(RORY) != rorys_form:
                wrong.append(f"{ask.action.name}: a form opened although refused")
    assert wrong == []
    if not allows(role, Action.DECIDE_REFERRAL):
        assert referral_state(bot) == "pending_approval"


def test_every_refusal_reads_the_same_way(bot: Bot, tmp_path: Path) -> None:
    give_rory(bot, tmp_path, "stakeholder")
    lead = make_lead(bot.ctx, "ALZ", bot.ctx.clock.now() - dt.timedelta(hours=1))
    refusals = []
    for ask in ASKS:
        if ask.action is Action.DECIDE_REFERRAL or allows("stakeholder", ask.action):
            continue
        refusals.append(bot.slack.slash_command(RORY, text=ask.command.format(lead=lead))
                        .json()["text"])
    stranger = [bot.slack.slash_command("U0NOBODY1", text=t).json()["text"]
                for t in ("log ALZ", "lead ALZ", "queue ALZ", "stats ALZ", f"status {lead}")]
    assert len(refusals) >= 5
    for text in refusals + stranger:
        assert ONE_WORDING.fullmatch(text), text
    assert set(stranger) <= {":warning: You are not a member of ALZ. Ask your admin to add you.",
                             ":warning: Only coordinators or admins of ALZ can log calls; you are "
                             "not a member.",
                             ":warning: You are not a member of any study yet. Ask your admin to "
                             "add you."}, stranger
    assert ":warning: Only coordinators or admins of ALZ can log calls; you are a stakeholder." \
        in refusals


def test_the_table_is_the_only_source(bot: Bot, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Allow stakeholders to add leads in the table alone, and the bot lets Rory add one;
    take coordinators off logging calls, and Casey is refused in the one wording."""
    give_rory(bot, tmp_path, "stakeholder")
    assert bot.slack.slash_command(RORY, text="lead ALZ").json()["text"].startswith(":warning:")

    monkeypatch.setitem(access.POLICY, Action.ADD_LEAD, ("stakeholder",))
    monkeypatch.setitem(access.POLICY, Action.LOG_CALL, ("admin",))
    views_before = len(bot.standin.views)
    resp = bot.slack.slash_command(RORY, text="lead ALZ")
    body = resp.json() if resp.content else {}
    assert not str(body.get("text", "")).startswith(":warning:"), resp.text
    assert offered_to_add_a_lead(bot, body, views_before)
    assert bot.slack.slash_command(CASEY, text="log ALZ").json()["text"] == \
        ":warning: Only admins of ALZ can log calls; you are a coordinator."
