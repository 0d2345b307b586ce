"""Story: access can be taken away, and it is gone at once. An admin runs `prescreen-bot members
deactivate U0COORD01`: Casey's next slash command, App Home, and the Done / Snooze buttons on her
reminder DM are refused with the usual "not a member" answer, and nothing changes. An approver
who is deactivated cannot approve. `studies import --prune --dry-run` lists exactly which member
loses which role in which study and changes nothing; `--prune` removes them. A user deactivated
in the Slack workspace (the `user_change` event, `deleted: true`) loses access as soon as Slack
tells the bot, once however often Slack retries. A callback's owner who is no longer a
coordinator cannot mark it done or snooze it. Every revocation is in the audit trail, with the
operating-system user and host for the CLI."""

from __future__ import annotations

import datetime as dt
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
import yaml
from sqlalchemy import func, select

from app import cli
from bot import ids
from storage.models import AuditEvent, Member, Membership
from tests.conftest import BOT_TOKEN, ENCRYPTION_KEY, FIXTURES, PORTAL_ENV, SIGNING_SECRET, Bot
from tests.test_callback_reminders import DUE, START, at, callback, log_callback, reminders, tick
from tests.test_log_prescreen_call import CASEY, LEE, PAT, SAM
from tests.test_referral_pipeline import CHANNEL, pre_qualify

NOT_A_COORDINATOR = ("Only coordinators or admins of a study can log calls; you are not a member "
                     "of any study yet.")


@pytest.fixture
def clock(bot: Bot) -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def admin_shell(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    """The admin's terminal: the production settings of the running bot."""
    monkeypatch.chdir(tmp_path)
    for name, value in (("DATABASE_URL", database_url), ("SLACK_BOT_TOKEN", BOT_TOKEN),
                        ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
                        ("PRESCREEN_ENCRYPTION_KEYS", ENCRYPTION_KEY), *PORTAL_ENV.items()):
        monkeypatch.setenv(name, value)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def audit_events(bot_or_db: Any, action: str) -> list[AuditEvent]:
    db = getattr(bot_or_db, "db", bot_or_db)
    with db.session() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id)))
        s.expunge_all()
    return rows


def roles(db: Any) -> dict[str, dict[str, str]]:
    from storage.repositories.members import list_all, roles_of

    with db.session() as s:
        return {m.slack_user_id: roles_of(m) for m in list_all(s)}


def is_active(db: Any, slack_id: str) -> bool:
    with db.session() as s:
        return bool(s.scalars(select(Member.active).where(Member.slack_user_id == slack_id)).one())


def slash(bot: Bot, user: str, text: str = "") -> str:
    resp = bot.slack.slash_command(user, text=text)
    assert resp.status_code == 200
    return resp.json().get("text") or ""


def click(bot: Bot, user: str, action_id: str, message: dict[str, Any]) -> str:
    """Click a button on the reminder DM; return the ephemeral answer the user sees."""
    before = len(bot.standin.responses)
    resp = bot.slack.click(user, action_id, message=message,
                           channel_id=bot.standin.dm_channel(user))
    assert resp.status_code == 200
    answer = bot.standin.wait_for(lambda s: s.responses[before:], message="an answer")
    return str(answer[-1]["payload"].get("text"))


def write_studies(tmp_path: Path, edit: Any) -> Path:
    data = yaml.safe_load((FIXTURES / "studies.yaml").read_text())
    edit(data)
    path = tmp_path / "studies.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_admin_deactivates_a_coordinator_and_her_next_actions_are_refused(
        bot: Bot, clock: Any, admin_shell: None) -> None:
    log_callback(bot)  # Casey owns a callback to ALZ-0001
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    reminder = reminders(bot)[0]

    code, out = run("members", "deactivate", CASEY, "--reason", "left the team")
    assert code == 0, out
    assert f"{CASEY} deactivated" in out and "Roles removed: ALZ coordinator." in out
    assert "1 open callbacks (ALZ-0001)" in out and "/prescreen assign" in out

    # the next slash commands: the usual refusal, no modal opened
    views_before = len(bot.standin.views)
    assert NOT_A_COORDINATOR in slash(bot, CASEY)
    assert len(bot.standin.views) == views_before
    assert "not a member of ALZ" in slash(bot, CASEY, "status ALZ-0001")
    assert "not a member of any study" in slash(bot, CASEY, "callbacks")

    # the buttons on the reminder she already has
    assert "not a member of ALZ" in click(bot, CASEY, ids.CALLBACK_DONE, reminder)
    assert "not a member of ALZ" in click(bot, CASEY, ids.CALLBACK_SNOOZE, reminder)
    assert "not a member of ALZ" in click(bot, CASEY, ids.CALLBACK_RESCHEDULE, reminder)
    cb = callback(bot)
    assert cb.status == "scheduled" and cb.completed_at is None and cb.version == 2

    # App Home shows her nothing of the study
    old_home = bot.standin.home(CASEY)
    bot.slack.app_home_opened(CASEY)
    home = bot.standin.wait_for(lambda s: s.home(CASEY) != old_home and s.home(CASEY),
                                message="App Home published again")
    assert "not a member of any study" in str(home["blocks"]) and "ALZ-0001" not in str(home)

    # no more reminder DMs to her: the study channel hears it is overdue instead
    dms_before = len(reminders(bot))
    at(clock, DUE + dt.timedelta(minutes=31))
    tick(bot)
    assert len(reminders(bot)) == dms_before
    assert any("overdue" in m["text"] for m in bot.standin.messages(CHANNEL))

    [event] = audit_events(bot, "member.deactivated")
    assert event.entity_id == CASEY and event.reason == "left the team"
    assert event.actor.startswith("cli:") and event.actor.endswith("@" + socket.gethostname()[:40])
    assert event.before == {"active": True, "roles": {"ALZ": "coordinator"}}
    assert event.after == {"active": False, "roles": {}}

    # a second deactivation changes nothing; `members list` says who is deactivated
    assert run("members", "deactivate", CASEY)[1].startswith(f"{CASEY} was already deactivated")
    assert len(audit_events(bot, "member.deactivated")) == 1
    code, listing = run("members", "list")
    line = next(ln for ln in listing.splitlines() if ln.startswith(CASEY))
    assert "DEACTIVATED" in line and "no roles" in line and event.actor in line


def test_no_reminder_goes_to_a_deactivated_owner(bot: Bot, clock: Any, admin_shell: None) -> None:
    log_callback(bot)
    assert run("members", "deactivate", CASEY)[0] == 0
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    assert reminders(bot) == []
    [skipped] = audit_events(bot, "callback.reminder_skipped")
    assert skipped.after == {"candidate": "ALZ-0001", "owner": "deactivated"}
    at(clock, DUE + dt.timedelta(minutes=31))
    tick(bot)  # the team hears the callback is overdue, so someone takes it
    assert any("overdue" in m["text"] for m in bot.standin.messages(CHANNEL))


def test_a_deactivated_approver_cannot_approve(bot: Bot, admin_shell: None) -> None:
    card = pre_qualify(bot)
    value = next(el["value"] for b in card["blocks"] if b.get("type") == "actions"
                 for el in b["elements"] if el["action_id"] == ids.REFERRAL_APPROVE)
    assert run("members", "deactivate", LEE)[0] == 0

    bot.slack.click(LEE, ids.REFERRAL_APPROVE, value, message=card, channel_id=CHANNEL)
    refusal = bot.standin.wait_for(lambda s: s.responses, message="refusal")[-1]["payload"]
    assert "You are not a member of ALZ" in refusal["text"]
    from storage.models import Referral

    with bot.db.session() as s:
        assert s.scalars(select(Referral)).one().state == "pending_approval"


def test_unknown_member_id_is_refused_with_exit_2(bot: Bot, admin_shell: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run("members", "deactivate", "U0NOBODY1")[0] == 2
    assert "No member U0NOBODY1" in capsys.readouterr().err
    assert run("members", "deactivate", "casey")[0] == 2
    assert audit_events(bot, "member.deactivated") == []


def test_reactivated_member_gets_roles_only_from_the_next_import(
        bot: Bot, admin_shell: None) -> None:
    run("members", "deactivate", SAM)
    # a routine import does not quietly give a deactivated member their access back
    code, out = run("studies", "import", str(FIXTURES / "studies.yaml"))
    assert code == 0 and f"{SAM} is deactivated and was left as is" in out
    assert not is_active(bot.db, SAM) and roles(bot.db)[SAM] == {}

    code, out = run("members", "reactivate", SAM)
    assert code == 0 and "reactivated with no roles" in out
    assert NOT_A_COORDINATOR in slash(bot, SAM)
    assert run("studies", "import", str(FIXTURES / "studies.yaml"))[0] == 0
    assert roles(bot.db)[SAM] == {"ALZ": "coordinator", "MDD": "coordinator"}
    assert [e.action for e in audit_events(bot, "member.reactivated")] == ["member.reactivated"]


def test_prune_dry_run_lists_exactly_what_prune_then_removes(
        bot: Bot, admin_shell: None, tmp_path: Path) -> None:
    def drop_pat_and_sams_alz(data: dict[str, Any]) -> None:
        data["members"] = [m for m in data["members"] if m["slack_id"] != PAT]
        for m in data["members"]:
            if m["slack_id"] == SAM:
                m["roles"] = {"MDD": "coordinator"}

    path = write_studies(tmp_path, drop_pat_and_sams_alz)
    before = roles(bot.db)
    assert before[PAT] == {"ALZ": "stakeholder"}

    with bot.db.session() as s:
        audit_count = s.scalar(select(func.count()).select_from(AuditEvent))
    code, out = run("studies", "import", str(path), "--prune", "--dry-run")
    assert code == 0, out
    assert out.splitlines() == [
        "Dry run: the file is valid; nothing was changed.",
        "Would remove 2 roles:",
        f"  {SAM}  ALZ coordinator",
        f"  {PAT}  ALZ stakeholder",
        f"Would deactivate (absent from the file): {PAT}",
    ]
    assert roles(bot.db) == before and is_active(bot.db, PAT)
    with bot.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == audit_count

    code, out = run("studies", "import", str(path), "--prune")
    assert code == 0, out
    assert f"  {PAT}  ALZ stakeholder" in out and f"Deactivated (absent from the file): {PAT}" in out
    after = roles(bot.db)
    assert after[PAT] == {} and not is_active(bot.db, PAT)
    assert after[SAM] == {"MDD": "coordinator"}
    assert after[CASEY] == before[CASEY] and after[LEE] == before[LEE]
    assert "You are not a member of ALZ. Ask your admin to add you." in slash(bot, PAT, "stats ALZ")

    [event] = audit_events(bot, "member.deactivated")
    assert event.entity_id == PAT and "studies.yaml" in (event.reason or "")
    assert event.actor.startswith("cli:") and "@" in event.actor
    [pruned] = audit_events(bot, "members.pruned")
    assert pruned.after == {"removed": [[SAM, "ALZ", "coordinator"], [PAT, "ALZ", "stakeholder"]],
                            "deactivated": [PAT]}


def test_import_without_prune_keeps_members_left_out_of_the_file(
        bot: Bot, admin_shell: None, tmp_path: Path) -> None:
    path = write_studies(tmp_path, lambda d: d.update(
        members=[m for m in d["members"] if m["slack_id"] != PAT]))
    assert run("studies", "import", str(path))[0] == 0
    assert roles(bot.db)[PAT] == {"ALZ": "stakeholder"} and is_active(bot.db, PAT)


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_user_deactivated_in_slack_loses_access_at_once(bot: Bot) -> None:
    # a profile change is a user_change too, and changes nothing
    resp = bot.slack.user_change(SAM, {"real_name": "Sam Okafor-Reyes"})
    assert resp.status_code == 200
    time.sleep(0.2)
    assert is_active(bot.db, SAM)

    resp = bot.slack.user_change(SAM, {"deleted": True}, event_id="Ev0SAMGONE1")
    assert resp.status_code == 200
    wait_until(lambda: not is_active(bot.db, SAM))
    assert NOT_A_COORDINATOR in slash(bot, SAM)
    assert "not a member" in slash(bot, SAM, "stats MDD")
    with bot.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Membership)
                        .join(Member).where(Member.slack_user_id == SAM)) == 0

    # Slack's retry of the same event, and a later change of the deleted user: no second event
    assert bot.slack.user_change(SAM, {"deleted": True}, event_id="Ev0SAMGONE1",
                                 retry_num=1).status_code == 200
    assert bot.slack.user_change(SAM, {"deleted": True, "real_name": "S."}).status_code == 200
    time.sleep(0.3)
    [event] = audit_events(bot, "member.deactivated")
    assert event.entity_id == SAM and event.actor == "slack:user_change"
    assert event.before == {"active": True, "roles": {"ALZ": "coordinator", "MDD": "coordinator"}}


def test_callback_owner_who_is_no_longer_a_coordinator_cannot_act_on_it(
        bot: Bot, clock: Any, tmp_path: Path) -> None:
    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    reminder = reminders(bot)[0]

    def casey_becomes_stakeholder(data: dict[str, Any]) -> None:
        for m in data["members"]:
            if m["slack_id"] == CASEY:
                m["roles"] = {"ALZ": "stakeholder"}

    from bot.studies.importer import import_studies

    import_studies(bot.db, write_studies(tmp_path, casey_becomes_stakeholder), actor="test")
    for action in (ids.CALLBACK_DONE, ids.CALLBACK_SNOOZE, ids.CALLBACK_HANDOFF):
        answer = click(bot, CASEY, action, reminder)
        assert "Only coordinators or admins of ALZ can change this callback; you are a " \
               "stakeholder." in answer, answer
    cb = callback(bot)
    assert cb.status == "scheduled" and cb.completed_at is None
    assert [e.action for e in audit_events(bot, "callback.done")] == []
    assert [e.action for e in audit_events(bot, "callback.snoozed")] == []
