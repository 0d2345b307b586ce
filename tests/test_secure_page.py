"""Story: a coordinator adds a candidate on the secure page and opens their contact card.

Casey (ALZ coordinator) signs in, fills the add form (mistakes are shown next to the field they
concern and nothing is stored), lands on the new candidate's contact card with the phone as a
tap-to-call link and whether the candidate may be called right now, and adds a note. Every card
view is in the audit trail with the fields shown; stakeholders and members of other studies are
refused and leave no view behind. Search by phone or name stays within the member's studies.
Coming from the log-call modal, the page hands the new reference code back to that modal. No
identifier ever reaches Slack."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import time_machine
from sqlalchemy import select, update

from bot.prescreen.handback import new_handback
from bot.prescreen.queries import log_modal_setup
from bot.prescreen.views import ModalState, log_call_modal
from bot.studies.importer import import_studies
from storage.models import AuditEvent, Candidate, CandidateNote, Member
from storage.repositories import candidates as cand_repo
from tests.conftest import FIXTURES, Bot

CASEY = "U0COORD01"  # ALZ coordinator
SAM = "U0COORD02"  # ALZ and MDD coordinator
ALZ_CHANNEL = "C0ALZ0001"  # where the log-call modal is opened from
LEE = "U0LEAD001"  # ALZ approver
PAT = "U0SPONS01"  # ALZ stakeholder
NAME, PHONE, E164, DOB = "Theodora Quimbleworth", "(617) 555-0177", "+16175550177", "1971-06-05"
NOTE = "Asked us to call after five; her daughter Marisol may answer."
PHI = [NAME, "Quimbleworth", PHONE, E164, "617-555-0177", "6175550177", DOB, NOTE, "Marisol"]
# Tuesday 24 November 2026, 10:42 in Boston
NOW = dt.datetime(2026, 11, 24, 15, 42, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def tuesday_morning() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def signed_in(bot: Bot, user_id: str) -> requests.Session:
    return bot.signed_in(user_id)


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "a form with a CSRF token"
    return m.group(1)


def form_token(html: str) -> str:
    m = re.search(r'name="form_token" value="([^"]+)"', html)
    assert m, "the add form's token"
    return m.group(1)


def field_error(html: str, name: str) -> str | None:
    """The error shown under field `name`, or None."""
    m = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', html)
    return None if m is None else m.group(1).replace("&#39;", "'")


def add_form(web: requests.Session, bot: Bot, study: str = "ALZ", **extra: str) -> str:
    resp = web.get(f"{bot.url}/secure/candidates/new", params={"study": study, **extra})
    assert resp.status_code == 200, resp.text
    return resp.text


def submit(web: requests.Session, bot: Bot, html: str, **fields: str) -> requests.Response:
    data = {"csrf_token": csrf(html), "form_token": form_token(html),
            "study": re.search(r'name="study" value="([^"]+)"', html).group(1),  # type: ignore[union-attr]
            "name": NAME, "phone": PHONE, "dob": DOB, "state": "MA", "source": "other",
            "consent": "yes"}
    handback = re.search(r'name="handback" value="([^"]+)"', html)
    if handback:
        data["handback"] = handback.group(1)
    data.update(fields)
    return web.post(f"{bot.url}/secure/candidates/new",
                    data={k: v for k, v in data.items() if v is not None}, allow_redirects=False)


def add(web: requests.Session, bot: Bot, study: str = "ALZ", **fields: str) -> str:
    resp = submit(web, bot, add_form(web, bot, study), **fields)
    assert resp.status_code == 303, resp.text
    return resp.headers["location"].rsplit("/", 1)[-1]


def candidates(bot: Bot) -> list[Candidate]:
    with bot.db.session() as s:
        return list(s.scalars(select(Candidate).order_by(Candidate.id)))


def audit(bot: Bot, action: str) -> list[tuple[str, str, Any]]:
    with bot.db.session() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == action)
                         .order_by(AuditEvent.seq)).all()
        return [(a.actor, a.entity_id, a.after) for a in rows]


def assert_nothing_reached_slack(bot: Bot) -> None:
    sent = bot.standin.all_outgoing_text()
    assert not [p for p in PHI if p in sent]


# ----- the story -----------------------------------------------------------------------------

def test_coordinator_adds_a_candidate_and_opens_their_contact_card(bot: Bot) -> None:
    web = signed_in(bot, CASEY)
    home = web.get(f"{bot.url}/secure/").text
    assert 'href="/secure/candidates/new?study=ALZ">Add a candidate</a>' in home
    assert "Add a candidate</a>" not in signed_in(bot, LEE).get(f"{bot.url}/secure/").text
    html = add_form(web, bot)
    assert "Add a candidate to ALZ" in html

    # three mistakes at once: each is shown next to its field, what was typed is kept
    resp = submit(web, bot, html, phone="617 555 01", dob="2031-02-30", consent="")
    assert resp.status_code == 400
    assert field_error(resp.text, "phone") == \
        "That phone number is not valid. Check the digits and area code."
    assert field_error(resp.text, "dob") == \
        "Date of birth is not a date (use YYYY-MM-DD or MM/DD/YYYY)."
    assert field_error(resp.text, "consent").startswith("Add only leads who agreed")
    assert field_error(resp.text, "name") is None
    assert f'value="{NAME}"' in resp.text and 'value="617 555 01"' in resp.text
    assert "Nothing was saved" in resp.text
    assert candidates(bot) == []

    # fixed: the candidate is stored and the browser goes to their card
    resp = submit(web, bot, resp.text, phone=PHONE, dob=DOB, consent="yes")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/secure/c/ALZ-0001"
    # the same form sent twice (a double tap) adds nobody twice
    again = submit(web, bot, html)
    assert again.status_code == 303 and again.headers["location"] == "/secure/c/ALZ-0001"
    assert [c.ref_code for c in candidates(bot)] == ["ALZ-0001"]
    cand = candidates(bot)[0]
    assert (cand.status, cand.region, cand.timezone, cand.source) == \
        ("needs_call", "MA", "America/New_York", "other")
    assert audit(bot, "candidate.created")[0][2]["via"] == "secure page"

    card = web.get(bot.url + resp.headers["location"])
    assert card.status_code == 200
    page = card.text
    assert NAME in page
    assert f'href="tel:{E164}"' in page and "(617) 555-0177" in page
    assert "1971-06-05 · age 55" in page
    assert "Calling window" in page and "open now (10:42 for them)" in page
    assert "Massachusetts" in page and "America/New_York" in page
    assert "needs another attempt" in page
    assert card.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in card.headers["content-security-policy"]
    assert "<script>" not in page and "style=" not in page

    assert audit(bot, "phi.viewed") == [
        (CASEY, "ALZ-0001", {"fields": ["name", "phone", "dob"], "via": "contact card"})]
    assert_nothing_reached_slack(bot)


def test_the_card_says_when_the_calling_window_opens(bot: Bot) -> None:
    web = signed_in(bot, CASEY)
    add(web, bot, state="FL")  # Florida: 08:00-20:00, at most 3 calls in 24 hours

    def window_at(at: dt.datetime) -> str:
        with time_machine.travel(at, tick=True):
            page = signed_in(bot, CASEY).get(f"{bot.url}/secure/c/ALZ-0001").text
        m = re.search(r'<dd class="window [a-z]+">([^<]*)<span class="muted">([^<]*)', page)
        assert m, page
        return " ".join((m.group(1) + m.group(2)).split())

    assert window_at(dt.datetime(2026, 11, 25, 11, 30, tzinfo=dt.UTC)) == \
        "closed — opens 08:00 their time · 08:00–20:00 their time (Florida rules)"  # 06:30 there
    assert window_at(dt.datetime(2026, 11, 25, 1, 30, tzinfo=dt.UTC)).startswith(
        "closed — opens tomorrow 08:00 their time")  # 20:30 there: too late for Florida
    assert window_at(dt.datetime(2026, 11, 25, 0, 30, tzinfo=dt.UTC)).startswith(
        "open now (19:30 for them)")


def test_duplicates_and_do_not_call_are_refused_as_in_slack(bot: Bot) -> None:
    casey = signed_in(bot, CASEY)
    assert add(casey, bot) == "ALZ-0001"

    resp = submit(casey, bot, add_form(casey, bot), name="Theo Q.")
    assert resp.status_code == 400
    assert field_error(resp.text, "phone") == "Already a candidate: ALZ-0001."
    assert 'href="/secure/c/ALZ-0001"' in resp.text

    # she asked not to be called: no study may add her number again, and nobody learns where
    with bot.db.session() as s:
        s.execute(update(Candidate).values(do_not_call=True))
    sam = signed_in(bot, SAM)
    resp = submit(sam, bot, add_form(sam, bot, "MDD"))
    assert resp.status_code == 400
    assert field_error(resp.text, "phone") == \
        "This number asked not to be called. It can't be added."
    assert "ALZ-0001" not in resp.text
    assert [c.ref_code for c in candidates(bot)] == ["ALZ-0001"]
    assert [a[2] for a in audit(bot, "lead.do_not_call_checked")][-1] == \
        {"outcome": "do_not_call"}

    # the flag is the first thing on the card
    page = casey.get(f"{bot.url}/secure/c/ALZ-0001").text
    assert 'class="dnc"' in page and "Do not call." in page
    assert_nothing_reached_slack(bot)


def test_stakeholders_and_members_of_other_studies_see_no_identifiers(
        bot: Bot, tmp_path: Any) -> None:
    assert add(signed_in(bot, SAM), bot, "MDD") == "MDD-0001"
    # Lee approves in ALZ (so the page lets him in) and only follows MDD as a stakeholder
    studies = (FIXTURES / "studies.yaml").read_text()
    lee = "{slack_id: U0LEAD001, email: lee@example.org, timezone: America/Chicago, roles: {ALZ: approver"
    assert lee in studies
    (tmp_path / "studies.yaml").write_text(studies.replace(lee, lee + ", MDD: stakeholder"))
    import_studies(bot.db, tmp_path / "studies.yaml", actor="test")

    resp = signed_in(bot, CASEY).get(f"{bot.url}/secure/c/MDD-0001")
    assert resp.status_code == 403
    assert "You are not a member of MDD. Ask your admin to add you." in resp.text

    resp = signed_in(bot, LEE).get(f"{bot.url}/secure/c/MDD-0001")
    assert resp.status_code == 403
    assert ("Only coordinators, approvers or admins of MDD can see candidates&#39; names and "
            "phone numbers; you are a stakeholder.") in resp.text

    resp = signed_in(bot, CASEY).get(f"{bot.url}/secure/c/ALZ-0099")
    assert resp.status_code == 404
    assert "No candidate ALZ-0099." in resp.text

    # Pat follows ALZ in the channel only: a link to an ALZ card ends at the sign-in's refusal
    assert add(signed_in(bot, CASEY), bot, "ALZ", phone="617 555 0178") == "ALZ-0001"
    pat = requests.Session()
    bot.standin.sign_in_as(PAT)
    try:
        resp = pat.get(f"{bot.url}/secure/c/ALZ-0001", timeout=15)
    finally:
        bot.standin.sign_in_as(None)
    assert resp.status_code == 403
    assert "You are a stakeholder of ALZ: contact cards are for" in resp.text
    assert NAME not in resp.text and "555-0178" not in resp.text

    assert audit(bot, "phi.viewed") == []


def test_a_note_added_on_the_card_shows_in_the_history_and_is_encrypted(bot: Bot) -> None:
    web = signed_in(bot, CASEY)
    ref = add(web, bot)
    with bot.db.session() as s:  # an earlier call with its notes, as the log-call form stores them
        cand = cand_repo.by_ref(s, ref)
        casey = s.scalars(select(Member).where(Member.slack_user_id == CASEY)).one()
        assert cand is not None
        cand_repo.add_call(s, candidate_id=cand.id, study_id=cand.study_id, coordinator_id=casey.id,
                           attempt_no=1, outcome="no_answer", answers={},
                           notes_enc=bot.ctx.cipher.encrypt("Voicemail full."),
                           called_at=NOW - dt.timedelta(days=1))
    page = web.get(f"{bot.url}/secure/c/{ref}").text

    too_long = web.post(f"{bot.url}/secure/c/{ref}/notes",
                        data={"csrf_token": csrf(page), "text": "x" * 2001}, allow_redirects=False)
    assert too_long.status_code == 400
    assert field_error(too_long.text, "text").startswith("A note is at most 2,000 characters")
    empty = web.post(f"{bot.url}/secure/c/{ref}/notes",
                     data={"csrf_token": csrf(page), "text": "  "}, allow_redirects=False)
    assert empty.status_code == 400 and field_error(empty.text, "text") == "Write the note first."

    resp = web.post(f"{bot.url}/secure/c/{ref}/notes", data={"csrf_token": csrf(page), "text": NOTE},
                    allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == f"/secure/c/{ref}"
    page = web.get(f"{bot.url}/secure/c/{ref}").text
    notes = re.findall(r'<p class="text">([^<]*)</p>', page)
    assert notes == [NOTE.replace("'", "&#39;"), "Voicemail full."]  # newest first
    assert "call: No answer" in page

    with bot.db.session() as s:
        stored = s.scalars(select(CandidateNote)).one()
        assert NOTE not in stored.text_enc and bot.ctx.cipher.decrypt(stored.text_enc) == NOTE
    added = audit(bot, "note.added")
    assert [(a[0], a[1]) for a in added] == [(CASEY, ref)]
    assert "Marisol" not in str(added)
    assert audit(bot, "phi.viewed")[-1][2]["fields"] == ["name", "phone", "dob", "notes"]
    assert_nothing_reached_slack(bot)


def test_search_by_phone_and_name_stays_within_the_members_studies(bot: Bot) -> None:
    sam, casey = signed_in(bot, SAM), signed_in(bot, CASEY)
    assert add(sam, bot, "MDD") == "MDD-0001"
    assert add(casey, bot, "ALZ") == "ALZ-0001"  # the same person, a lead for both studies

    def hits(web: requests.Session, q: str) -> list[str]:
        resp = web.get(f"{bot.url}/secure/search", params={"q": q})
        assert resp.status_code == 200, resp.text
        return re.findall(r'<a href="/secure/c/([A-Z]+-\d+)">', resp.text)

    assert hits(casey, "617.555.0177") == ["ALZ-0001"]
    assert hits(casey, "theodora quimbleworth") == ["ALZ-0001"]
    assert hits(sam, "+1 617 555 0177") == ["ALZ-0001", "MDD-0001"]
    page = sam.get(f"{bot.url}/secure/search", params={"q": NAME}).text
    assert NAME in page and "MDD" in page and "needs another attempt" in page
    assert hits(casey, "Someone Else") == []

    short = casey.get(f"{bot.url}/secure/search", params={"q": "th"})
    assert short.status_code == 400 and field_error(short.text, "q").startswith("Type a phone")

    searched = audit(bot, "candidate.searched")
    assert [(a[0], a[2]["by"], a[2]["results"]) for a in searched[:2]] == [
        (CASEY, "phone", ["ALZ-0001"]), (CASEY, "name", ["ALZ-0001"])]
    assert searched[0][2]["fields"] == ["name"]
    assert not [p for p in [*PHI, "617.555.0177", "theodora"] if p in str(searched)]
    assert_nothing_reached_slack(bot)


# ----- from the log-call modal and back --------------------------------------------------------

def open_log_call_modal(bot: Bot, user_id: str) -> tuple[str, str]:
    """The log-call modal as Slack shows it when it sends the coordinator to the page: opened with
    an external id, the handback token in its link. Returns (view id, token)."""
    handback = new_handback(bot.ctx, user_id, ALZ_CHANNEL)
    setup = log_modal_setup(bot.ctx, user_id, "ALZ")
    view = {**log_call_modal(setup.studies, ModalState(study="ALZ", channel=ALZ_CHANNEL)),
            "external_id": handback.external_id}
    opened = bot.ctx.slack.views_open(trigger_id=bot.standin.issue_trigger_id(user_id), view=view)
    return opened["view"]["id"], handback.token


def test_the_new_reference_code_goes_back_to_the_log_call_modal(bot: Bot) -> None:
    view_id, token = open_log_call_modal(bot, CASEY)
    web = signed_in(bot, CASEY)
    resp = submit(web, bot, add_form(web, bot, "ALZ", handback=token))
    assert resp.status_code == 200, resp.text
    assert "ALZ-0001 added. Go back to Slack to finish logging the call." in resp.text
    assert "Your log-call form in Slack now shows ALZ-0001" in resp.text

    modal = bot.standin.view(view_id)
    assert bot.standin.is_open(view_id)
    assert '"r":"ALZ-0001"' in modal["private_metadata"].replace(" ", "")
    # and still knows its channel: the call summary goes there, not to a DM
    assert f'"c":"{ALZ_CHANNEL}"' in modal["private_metadata"].replace(" ", "")
    assert "ALZ-0001" in str(modal["blocks"])
    updates = bot.standin.calls_to("views.update")
    assert len(updates) == 1

    # the modal was closed meanwhile: the page says how to carry on
    bot.standin.close_view(view_id)
    resp = submit(web, bot, add_form(web, bot, "ALZ", handback=token), phone="617 555 0178")
    assert "ALZ-0002 added. Go back to Slack to finish logging the call." in resp.text
    assert "Back in Slack, type <code>/prescreen log ALZ-0002</code>" in resp.text
    assert_nothing_reached_slack(bot)


def test_someone_elses_handback_token_changes_nothing_in_slack(bot: Bot) -> None:
    view_id, token = open_log_call_modal(bot, CASEY)
    before = bot.standin.view(view_id)
    sam = signed_in(bot, SAM)
    resp = submit(sam, bot, add_form(sam, bot, "ALZ", handback=token))
    assert resp.status_code == 200
    assert "ALZ-0001 added. Go back to Slack to finish logging the call." in resp.text
    assert "type <code>/prescreen log ALZ-0001</code>" in resp.text
    # nor does her own token with another channel put in
    casey = signed_in(bot, CASEY)
    moved = token.replace(f".{ALZ_CHANNEL}.", ".C0MDD0001.")
    assert moved != token
    resp = submit(casey, bot, add_form(casey, bot, "ALZ", handback=moved), phone="617 555 0178")
    assert "type <code>/prescreen log ALZ-0002</code>" in resp.text
    assert bot.standin.calls_to("views.update") == []
    assert bot.standin.view(view_id) == before
    assert_nothing_reached_slack(bot)
