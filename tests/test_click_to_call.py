"""Story: a coordinator is told whom to call (`/prescreen next`, the queue, a reminder, the
contact card) and presses Call. At that moment the bot checks their role, do-not-call, consent,
the candidate's calling window and the state's calls-per-24-hours limit; then RingCentral rings
the coordinator's phone first and the candidate when they answer (RingOut). Slack gets its
acknowledgement at once; the answer comes privately: progress, or exactly why not. The number
never appears in Slack."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
import time_machine
from sqlalchemy import select, update

from bot import ids
from bot.config import Settings
from sandbox.ringcentral_standin import RingCentralStandin
from storage.models import AuditEvent, Candidate, Membership, RcRingOut
from tests.conftest import Bot
from tests.leads_factory import LEAD_PHONE, import_yaml, make_lead
from tests.ringcentral_support import extension_of, rc_settings, rc_standin  # noqa: F401
from tests.test_sandbox_console import RunningSandbox, sandbox  # noqa: F401  (the console's fixture)

CASEY = "U0COORD01"  # ALZ coordinator, casey@example.org has a RingCentral extension
PAT = "U0SPONS01"  # ALZ stakeholder
TUESDAY_10AM_NY = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
PHONE_FORMS = [LEAD_PHONE, "3125550199", "(312) 555-0199", "312-555-0199"]


@pytest.fixture
def settings(settings: Settings, rc_standin: RingCentralStandin) -> Settings:  # noqa: F811
    return rc_settings(settings, rc_standin)


@pytest.fixture(autouse=True)
def tuesday_morning() -> Iterator[None]:
    with time_machine.travel(TUESDAY_10AM_NY, tick=True):
        yield


def lead(bot: Bot, region: str = "MA", **extra: object) -> str:
    return make_lead(bot.ctx, "ALZ", TUESDAY_10AM_NY - dt.timedelta(hours=2), owner=CASEY,
                     tz="America/New_York", region=region, **extra)


def next_message(bot: Bot, user: str = CASEY) -> dict:  # type: ignore[type-arg]
    resp = bot.slack.slash_command(user, text="next ALZ")
    assert resp.status_code == 200
    # an ephemeral answer to the command, as Slack shows it
    return {**resp.json(), "ts": "1764000000.000100", "is_ephemeral": True}


def press_call(bot: Bot, user: str, message: dict, ref: str) -> tuple[float, str]:  # type: ignore[type-arg]
    before = len(bot.standin.ephemerals(user))
    started = time.monotonic()
    resp = bot.slack.click(user, ids.RC_CALL, json.dumps({"ref": ref}, separators=(",", ":")),
                           message=message, channel_id="C0ALZ0001")
    elapsed = time.monotonic() - started
    assert resp.status_code == 200
    answer = bot.standin.wait_for(lambda s: s.ephemerals(user)[before:] or None,
                                  message="the Call button's answer")[0]["text"]
    return elapsed, answer


def assert_no_number_in_slack(bot: Bot) -> None:
    seen = json.dumps([c.args for c in bot.standin.calls])
    for form in PHONE_FORMS:
        assert form not in seen


def test_call_on_prescreen_next_rings_the_coordinator_first_then_the_candidate(
        bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(bot)
    message = next_message(bot)
    assert any(b.get("block_id") == ids.RC_CALL_BLOCK for b in message["blocks"])

    elapsed, answer = press_call(bot, CASEY, message, ref)

    assert elapsed < 3.0
    assert answer.startswith(f":telephone_receiver: Calling {ref}… your phone rings first")
    (ringout,) = rc_standin.ringouts.values()
    assert ringout["from"] == "+16175550101"  # Casey's direct number rings first
    assert ringout["to"] == LEAD_PHONE
    with bot.db.session() as s:
        assert s.scalars(select(RcRingOut.status)).one() == "placed"
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "call.placed")).one()
    assert_no_number_in_slack(bot)


def test_the_click_is_acknowledged_before_ringcentral_answers(
        bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(bot)
    message = next_message(bot)
    slow = rc_standin.handle

    def slow_handle(method, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "ring-out" in path:
            time.sleep(3.2)  # the RingOut takes longer than Slack's 3 seconds
        return slow(method, path, *args, **kwargs)

    rc_standin.handle = slow_handle  # type: ignore[method-assign]
    elapsed, answer = press_call(bot, CASEY, message, ref)
    assert elapsed < 3.0
    assert "Calling" in answer


def refusal(bot: Bot, user: str = CASEY, ref: str | None = None) -> str:
    ref = ref or lead(bot)
    message = next_message(bot)
    _elapsed, answer = press_call(bot, user, message, ref)
    return answer


def test_a_stakeholder_may_not_call(bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(bot)
    message = next_message(bot)  # the coordinator's next lead…
    _elapsed, answer = press_call(bot, PAT, message, ref)  # …clicked by a stakeholder
    assert answer == ("Only coordinators or admins of ALZ can call candidates from Slack; you are "
                      "a stakeholder.")
    assert not rc_standin.ringouts


def test_do_not_call_is_refused_at_the_click(bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(bot)
    message = next_message(bot)
    with bot.db.session() as s:  # flagged after the button was shown
        s.execute(update(Candidate).values(do_not_call=True))
    _elapsed, answer = press_call(bot, CASEY, message, ref)
    assert answer == f"{ref} is on do-not-call: no calls. Nothing was dialled."
    assert not rc_standin.ringouts


def test_no_consent_is_refused(bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(bot)
    message = next_message(bot)
    with bot.db.session() as s:
        s.execute(update(Candidate).values(consent_to_contact=False))
    _elapsed, answer = press_call(bot, CASEY, message, ref)
    assert answer == f"{ref} has not consented to be contacted: no calls. Nothing was dialled."
    assert not rc_standin.ringouts


def test_outside_the_calling_window_is_refused(bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    ref = lead(bot)
    message = next_message(bot)
    with time_machine.travel(dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC), tick=True):
        _elapsed, answer = press_call(bot, CASEY, message, ref)  # 21:30 in Boston
    assert answer.startswith(f"It is Tue 21:30 for {ref}: outside calling hours")
    assert "Next allowed: Wed 08:00 their time. Nothing was dialled." in answer
    assert not rc_standin.ringouts


def test_the_states_24_hour_limit_counts_calls_placed_from_slack(
        bot: Bot, rc_standin: RingCentralStandin, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ref = lead(bot, region="FL")  # Florida: at most 3 calls in 24 h
    message = next_message(bot)
    answers = [press_call(bot, CASEY, message, ref)[1] for _ in range(4)]
    assert all("Calling" in a for a in answers[:3])
    assert answers[3].startswith(f"{ref} has had 3 calls in 24 hours, the most allowed "
                                 "(Florida rules). Earliest: Wed")
    assert len(rc_standin.ringouts) == 3


def test_a_member_without_an_extension_is_told_what_to_do(
        bot: Bot, rc_standin: RingCentralStandin, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import_yaml(bot.db, tmp_path, """
        studies: [{key: ALZ, title: Early Alzheimer's prevention, channel: C0ALZ0001,
                   timezone: America/New_York}]
        members:
          - {slack_id: U0ADMIN01, email: alex@example.org, timezone: America/New_York,
             roles: {ALZ: coordinator}}
    """)
    ref = lead(bot)
    message = next_message(bot)
    _elapsed, answer = press_call(bot, "U0ADMIN01", message, ref)
    assert answer.startswith("Your RingCentral extension is not known")
    with bot.db.session() as s:
        assert s.scalars(select(Membership)).all()


def test_the_extension_named_in_the_studies_file_wins(
        bot: Bot, rc_standin: RingCentralStandin, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    sam_ext = rc_standin.extensions[extension_of(rc_standin, "sam@example.org")]
    import_yaml(bot.db, tmp_path, f"""
        studies: [{{key: ALZ, title: Early Alzheimer's prevention, channel: C0ALZ0001,
                   timezone: America/New_York}}]
        members:
          - {{slack_id: U0ADMIN01, email: alex@example.org, timezone: America/New_York,
             ringcentral_extension: "{sam_ext.number}", roles: {{ALZ: coordinator}}}}
    """)
    ref = lead(bot)
    _elapsed, answer = press_call(bot, "U0ADMIN01", next_message(bot), ref)
    assert "Calling" in answer
    (ringout,) = rc_standin.ringouts.values()
    assert ringout["from"] == sam_ext.direct_number


def test_without_ringcentral_there_is_no_call_button(bot: Bot) -> None:
    bot.ctx.extras["ringcentral"] = None  # as when RINGCENTRAL_* are not set
    lead(bot)
    message = next_message(bot)
    assert not any(b.get("block_id") == ids.RC_CALL_BLOCK for b in message["blocks"])


# ----- the contact card and the sandbox ------------------------------------------------------

def test_call_from_the_contact_card(bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    import re

    ref = lead(bot)
    browser = bot.signed_in(CASEY, f"/secure/c/{ref}")
    page = browser.get(f"{bot.url}/secure/c/{ref}", timeout=10).text
    assert f'action="/secure/c/{ref}/call"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    resp = browser.post(f"{bot.url}/secure/c/{ref}/call", data={"csrf_token": token}, timeout=10)
    assert resp.status_code == 200 and "your phone rings first" in resp.text
    assert len(rc_standin.ringouts) == 1


def test_in_the_sandbox_call_then_the_attempt_appears_without_typing(
        sandbox: RunningSandbox) -> None:  # noqa: F811
    """`prescreen-bot run` without tokens: press Call on /prescreen next in the console; the
    stand-in answers the first call and misses the second; the call log brings both back."""
    import requests

    sb = sandbox
    standin = sb.runtime.sandbox.standin
    rc = sb.runtime.ctx.extras["ringcentral"]
    assert rc is not None

    def press() -> str:
        before = len(standin.ephemerals(CASEY))
        requests.post(sb.url + "/sandbox/command", json={"user": CASEY, "channel": "C0ALZ0001",
                      "text": "/prescreen next ALZ"}, timeout=10).raise_for_status()
        msg = standin.wait_for(lambda s: next((e for e in s.ephemerals(CASEY)[before:]
                                               if ids.RC_CALL_BLOCK in json.dumps(e)), None),
                               message="/prescreen next with a Call button: "
                               + json.dumps(standin.ephemerals(CASEY)[before:])[:600])
        ref = json.loads(msg["blocks"][-1]["elements"][0]["value"])["ref"]
        answer = requests.post(sb.url + "/sandbox/action", json={
            "user": CASEY, "channel": "C0ALZ0001", "ts": msg["ts"],
            "block_id": ids.RC_CALL_BLOCK, "action_id": ids.RC_CALL}, timeout=10).json()
        assert answer["ok"], answer
        return str(ref)

    # the demo opens at 07:30 in New York: two hours later the calling window is open
    requests.post(sb.url + "/sandbox/clock", json={"minutes": 120}, timeout=60).raise_for_status()
    ref = press()  # answered: Casey is asked to log the outcome
    standin.wait_for(lambda s: any(f"Call with {ref} ended" in (m.get("text") or "")
                                   for m in s.messages(s.dm_channel(CASEY))),
                     timeout=15, message="the call-ended DM")
    ref2 = press()  # missed: an attempt appears by itself
    with sb.runtime.ctx.db.session() as s:
        def outcome() -> str | None:
            s.expire_all()
            return s.scalars(select(Candidate.last_outcome)
                             .where(Candidate.ref_code == ref2)).one()
        deadline = time.monotonic() + 15
        while outcome() != "no_answer" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert outcome() == "no_answer"


def test_call_from_a_callback_reminder(bot: Bot, rc_standin: RingCentralStandin) -> None:  # noqa: F811
    from app.scheduler import run_job
    from bot.callbacks.service import schedule_callback
    from storage.models import Member

    ref = lead(bot)
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate).where(Candidate.ref_code == ref)).one()
        owner = s.scalars(select(Member).where(Member.slack_user_id == CASEY)).one()
        schedule_callback(bot.ctx, s, candidate=cand, study=cand.study, owner=owner,
                          due_at=bot.ctx.clock.now() + dt.timedelta(minutes=5), call=None,
                          actor=CASEY)
    run_job(bot.ctx, "callbacks")
    bot.deliver()
    dm = bot.standin.wait_for(lambda s: [m for m in s.messages(s.dm_channel(CASEY))
                                         if ids.RC_CALL_BLOCK in json.dumps(m)] or None,
                              message="a reminder with a Call button")[0]
    before = len(bot.standin.ephemerals(CASEY))
    bot.slack.click(CASEY, ids.RC_CALL, message=dm, channel_id=bot.standin.dm_channel(CASEY))
    bot.standin.wait_for(lambda s: len(s.calls_to("chat.postMessage")) and (
        len(s.ephemerals(CASEY)) > before or any("Calling" in (m.get("text") or "")
                                                 for m in s.messages(s.dm_channel(CASEY)))),
                         message="the call's progress")
    assert len(rc_standin.ringouts) == 1
