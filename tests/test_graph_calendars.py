"""Outlook calendars through Microsoft Graph: real msal against a local HTTPS identity provider and
Graph stand-in (own test CA), the delta cache, free slots, throttling, and what coordinators see."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from graph_fake import (
    CLIENT_ID,
    SECRET,
    TENANT,
    FakePKI,
    https_standin,
    make_client_certificate,
    make_pki,
    msal_client,
)
from slack_sdk import WebClient
from sqlalchemy import select

from app.cli.graph import add_cli, graph_check
from bot.calendar import views
from bot.calendar.jobs import graph_sync_job
from bot.calendar.workflow import OK, callback_collision, my_calendar, site_free_slots
from bot.config import Settings
from bot.context import AppContext
from integrations.graph import (
    DeltaSpec,
    GraphAuthError,
    GraphClient,
    GraphThrottled,
    GraphUnavailable,
    Interval,
    free_slots,
)
from sandbox.graph_standin import GraphStandin
from storage.crypto import PHICipher
from storage.db import Database
from storage.models import Base, CalendarEvent, GraphSyncState, Member, Site, Study
from storage.repositories import calendar as repo

NY = ZoneInfo("America/New_York")
NOW = dt.datetime(2025, 3, 6, 15, 0, tzinfo=dt.UTC)  # Thursday 10:00 in New York
CASEY = "casey@example.org"
SITE = "bos-sched@example.org"


def ny(day: int, hh: int, mm: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2025, month, day, hh, mm, tzinfo=NY)


class FixedClock:
    def __init__(self, now: dt.datetime) -> None:
        self.value = now

    def now(self) -> dt.datetime:
        return self.value


@dataclass
class Env:
    pki: FakePKI
    standin: GraphStandin
    db: Database
    tmp: Path

    def client(self, **kw: object) -> GraphClient:
        return msal_client(self.standin, self.pki, **kw)  # type: ignore[arg-type]

    def ctx(self, graph: GraphClient | None) -> AppContext:
        settings = Settings(_env_file=None, default_timezone="America/New_York")  # type: ignore[call-arg]
        return AppContext(
            settings=settings,
            db=self.db,
            cipher=PHICipher([Fernet.generate_key().decode()]),
            slack=WebClient(token="xoxb-unused"),
            clock=FixedClock(NOW),
            graph=graph,
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> FakePKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def env(pki: FakePKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    # The environment's CA bundle must not override the CA the client is given.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.unrelated_ca_path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(pki.unrelated_ca_path))
    db = Database(f"sqlite:///{tmp_path / 'calendar.db'}")
    Base.metadata.create_all(db.engine)
    with https_standin(pki) as standin:
        standin.add_mailbox(CASEY, "America/New_York")
        standin.add_mailbox(SITE, "America/New_York")
        yield Env(pki, standin, db, tmp_path)
    db.dispose()


def seed_people(db: Database) -> None:
    with db.session() as s:
        study = Study(
            key="ALZ", title="Alzheimer prevention", channel_id="C0ALZ0001", timezone="America/New_York"
        )
        s.add(study)
        s.flush()
        s.add(
            Site(
                study_id=study.id,
                key="BOS",
                name="Boston Memory Clinic",
                mailbox=SITE,
                timezone="America/New_York",
            )
        )
        s.add(
            Member(slack_user_id="U0COORD01", email=CASEY, timezone="America/New_York", mailbox=CASEY.upper())
        )
        s.add(Member(slack_user_id="U0COORD02", email="sam@example.org", timezone="America/Chicago"))


# ----- authentication -----


def test_token_is_acquired_once_for_many_graph_calls(env: Env) -> None:
    env.standin.add_event(CASEY, "Stand-up", ny(6, 9, 30), ny(6, 9, 45))
    client = env.client()
    for _ in range(3):
        client.calendar_view(CASEY, NOW, NOW + dt.timedelta(days=1))
    client.get_schedule([CASEY, SITE], NOW, NOW + dt.timedelta(days=1))
    client.delta(DeltaSpec(CASEY, NOW, NOW + dt.timedelta(days=14)))

    assert env.standin.calls["token"] == 1
    assert env.standin.calls["discovery"] == 1
    assert client.credential.token_requests == 1  # type: ignore[attr-defined]
    graph = env.standin.graph_requests()
    assert len(graph) == 5
    assert len({r.headers["authorization"] for r in graph}) == 1


def test_certificate_credential_signs_a_client_assertion(env: Env) -> None:
    cert_path, cert_pem = make_client_certificate(env.tmp)
    env.standin.certificate_pem = cert_pem
    env.standin.add_event(CASEY, "Stand-up", ny(6, 11), ny(6, 11, 30))
    client = env.client(secret=None, cert_path=cert_path)
    assert [e.subject for e in client.calendar_view(CASEY, NOW, NOW + dt.timedelta(days=1))] == ["Stand-up"]
    token_call = next(r for r in env.standin.recorded if r.path.endswith("/oauth2/v2.0/token"))
    assert token_call.method == "POST"


@pytest.mark.parametrize(
    ("kwargs", "standin_change", "code", "words"),
    [
        ({"secret": "not-the-secret"}, None, "AADSTS7000215", "client secret is wrong"),
        ({}, "expire", "AADSTS7000222", "expired"),
        ({"tenant": "no-such-tenant"}, None, "AADSTS90002", "tenant is not found"),
        (
            {"client_id": "00000000-0000-0000-0000-000000000000"},
            None,
            "AADSTS700016",
            "client) id is not known",
        ),
    ],
)
def test_credential_problems_are_explained_in_plain_words(
    env: Env, kwargs: dict[str, str], standin_change: str | None, code: str, words: str
) -> None:
    if standin_change == "expire":
        env.standin.secret_expired = True
    client = env.client(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(GraphAuthError) as err:
        client.calendar_view(CASEY, NOW, NOW + dt.timedelta(hours=1))
    message = str(err.value)
    assert message.startswith(code)
    assert words in message
    assert SECRET not in message and "not-the-secret" not in message
    assert env.standin.graph_requests() == []  # no Graph call without a token


# ----- reading calendars -----


def test_calendar_view_follows_next_links_across_three_pages(env: Env) -> None:
    for i in range(25):
        start = NOW + dt.timedelta(hours=i)
        env.standin.add_event(CASEY, f"Call block {i:02d}", start, start + dt.timedelta(minutes=20))
    client = env.client(page_size=10)

    events = client.calendar_view(CASEY, NOW, NOW + dt.timedelta(days=2), timezone="America/Chicago")

    assert [e.subject for e in events] == [f"Call block {i:02d}" for i in range(25)]
    assert events[3].start == NOW + dt.timedelta(hours=3)  # returned in Chicago time, read back as UTC
    pages = env.standin.graph_requests("/calendarView")
    assert len(pages) == 3
    for page in pages:
        assert page.headers["prefer"] == 'outlook.timezone="America/Chicago", odata.maxpagesize=10'
    assert "isAllDay" in pages[0].query["$select"][0] and "body" not in pages[0].query["$select"][0]
    assert "$skip" in pages[1].query and "$skip" in pages[2].query


def test_event_semantics_all_day_private_cancelled_teams_series(env: Env) -> None:
    s = env.standin
    s.add_all_day(CASEY, "Investigator meeting", dt.date(2025, 3, 7))
    s.add_event(CASEY, "Dentist", ny(6, 13), ny(6, 14), sensitivity="private")
    s.add_event(CASEY, "Protocol training", ny(6, 15), ny(6, 16), is_cancelled=True)
    s.add_event(
        CASEY,
        "Sponsor check-in",
        ny(6, 11),
        ny(6, 11, 30),
        join_url="https://teams.microsoft.com/l/meetup-join/abc",
    )
    s.add_series(CASEY, "Stand-up", ny(6, 9, 30), dt.timedelta(minutes=15), count=3)
    client = env.client()

    events = client.calendar_view(
        CASEY, NOW - dt.timedelta(hours=6), NOW + dt.timedelta(days=3), timezone="Pacific Standard Time"
    )

    by_subject = {e.subject: e for e in events}
    assert "Protocol training" not in by_subject
    all_day = by_subject["Investigator meeting"]
    assert all_day.is_all_day and all_day.start_date == dt.date(2025, 3, 7)
    assert all_day.end_date == dt.date(2025, 3, 8)
    private = next(e for e in events if e.sensitivity == "private")
    assert private.subject is None and private.row()["subject"] is None
    assert by_subject["Sponsor check-in"].join_url == "https://teams.microsoft.com/l/meetup-join/abc"
    assert by_subject["Sponsor check-in"].start == ny(6, 11).astimezone(dt.UTC)
    standups = [e for e in events if e.subject == "Stand-up"]
    assert len(standups) == 3 and {e.type for e in standups} == {"occurrence"}


# ----- delta sync into the cache -----


def cached(db: Database, mailbox: str) -> dict[str, CalendarEvent]:
    with db.session() as s:
        return {
            e.event_id: e for e in s.scalars(select(CalendarEvent).where(CalendarEvent.mailbox == mailbox))
        }


def test_delta_sync_applies_changes_removals_and_restarts_after_410(env: Env) -> None:
    from integrations.graph.sync import sync_mailboxes

    s = env.standin
    keep = s.add_event(CASEY, "Keep", ny(6, 11), ny(6, 12))
    move = s.add_event(CASEY, "Move", ny(7, 11), ny(7, 12))
    drop = s.add_event(CASEY, "Drop", ny(10, 11), ny(10, 12))
    for day in range(11, 20):
        s.add_event(CASEY, f"Filler {day}", ny(day, 9), ny(day, 9, 30))
    ctx = env.ctx(env.client(page_size=4))

    first = sync_mailboxes(ctx, {CASEY: "America/New_York"}, NOW)
    assert first.full == 1 and first.upserted == 12 and not first.failed
    with env.db.session() as session:
        state = session.get(GraphSyncState, CASEY)
        assert state is not None and state.delta_link is not None
        assert state.delta_link.startswith(s.graph_url) and "$deltatoken=" in state.delta_link
    assert "$select" not in env.standin.graph_requests("/delta")[0].query

    s.delete_event(CASEY, drop)
    s.update_event(CASEY, move, start=ny(7, 14), end=ny(7, 15))
    added = s.add_event(CASEY, "New", ny(8, 10), ny(8, 10, 30))
    far = s.add_event(CASEY, "Far future", ny(20, 10, month=4), ny(20, 11, month=4))
    for i in range(6):  # enough changes to page, with items repeated across pages
        s.update_event(CASEY, keep, subject=f"Keep v{i}")
    s.repeat_items = True

    second = sync_mailboxes(ctx, {CASEY: "America/New_York"}, NOW + dt.timedelta(minutes=5))
    rows = cached(env.db, CASEY)
    assert second.incremental == 1 and second.full == 0
    assert drop not in rows and far not in rows
    assert rows[move].start_at == ny(7, 14).astimezone(dt.UTC)
    assert rows[keep].subject == "Keep v5"
    assert added in rows

    s.expire_delta_tokens(CASEY)
    gone = s.add_event(CASEY, "Deleted while the token was stale", ny(9, 10), ny(9, 11))
    sync_mailboxes(ctx, {CASEY: "America/New_York"}, NOW + dt.timedelta(minutes=10))  # 410 → full round
    s.delete_event(CASEY, gone)
    s.expire_delta_tokens(CASEY)
    third = sync_mailboxes(ctx, {CASEY: "America/New_York"}, NOW + dt.timedelta(minutes=15))
    assert third.full == 1 and not third.failed
    statuses = s.graph_requests("/delta")
    assert any("$deltatoken" in r.query for r in statuses)
    rows = cached(env.db, CASEY)
    expected = {e.id for e in s.mailboxes[CASEY].events.values()} - {far}
    assert set(rows) == expected


def test_many_mailboxes_sync_through_batch_requests(env: Env) -> None:
    from integrations.graph.sync import sync_mailboxes

    mailboxes = {f"coord{i:02d}@example.org": "America/New_York" for i in range(25)}
    for i, mb in enumerate(mailboxes):
        env.standin.add_mailbox(mb)
        env.standin.add_event(mb, f"Meeting {i}", ny(7, 10), ny(7, 11))
    client = env.client()
    ctx = env.ctx(client)

    report = sync_mailboxes(ctx, mailboxes, NOW)

    assert report.full == 25 and not report.failed
    assert report.graph_calls == 2  # 20 + 5 delta requests in two $batch calls
    assert env.standin.calls["$batch"] == 2 and env.standin.calls["batch:delta"] == 25
    assert sum(len(cached(env.db, mb)) for mb in mailboxes) == 25


# ----- free slots -----


def test_get_schedule_free_slots_across_dst_change_and_all_day_event(env: Env) -> None:
    s = env.standin
    s.add_event(SITE, "Screening visit", ny(10, 10), ny(10, 11))  # Monday after clocks sprang forward
    s.add_event(SITE, "Lunch (free)", ny(7, 12), ny(7, 13), show_as="free")
    s.add_all_day(SITE, "Site closed", dt.date(2025, 3, 11))  # Tuesday
    client = env.client()
    start, end = ny(7, 0), ny(12, 0)

    info = client.get_schedule([SITE], start, end, interval_minutes=30)[SITE]
    assert info.error is None and info.working_hours is not None
    assert info.working_hours.timezone == "America/New_York"  # from "Eastern Standard Time"
    slots = free_slots(info.busy, start, end, info.working_hours)

    utc = lambda d, h: dt.datetime(2025, 3, d, h, tzinfo=dt.UTC)  # noqa: E731
    assert slots == [
        Interval(utc(7, 14), utc(7, 22)),  # Friday 09–17 EST = 14–22 UTC
        Interval(utc(10, 13), utc(10, 14)),  # Monday 09–17 EDT = 13–21 UTC, minus 10–11
        Interval(utc(10, 15), utc(10, 21)),
    ]
    request = env.standin.graph_requests("/getSchedule")[0]
    assert request.headers["prefer"] == 'outlook.timezone="UTC"'


def test_get_schedule_splits_more_than_twenty_mailboxes(env: Env) -> None:
    boxes = [f"room{i:02d}@example.org" for i in range(23)]
    for mb in boxes:
        env.standin.add_mailbox(mb)
    result = env.client()
    infos = result.get_schedule([*boxes, "ghost@example.org"], NOW, NOW + dt.timedelta(days=1))
    assert len(infos) == 24 and infos["ghost@example.org"].error == "ErrorMailRecipientNotFound"
    assert all(infos[mb].error is None for mb in boxes)
    assert env.standin.calls["$batch"] == 1 and env.standin.calls["batch:getSchedule"] == 2


# ----- throttling and faults -----


def test_429_with_fractional_retry_after_is_honoured(env: Env) -> None:
    env.standin.add_event(CASEY, "Stand-up", ny(6, 11), ny(6, 11, 30))
    client = env.client()
    client.credential.token()  # warm msal so only the retry is timed
    env.standin.fail_next(429, retry_after="1.5", path_contains="/calendarView")
    throttled_before = throttled()

    started = time.monotonic()
    events = client.calendar_view(CASEY, NOW, NOW + dt.timedelta(days=1))
    elapsed = time.monotonic() - started

    assert [e.subject for e in events] == ["Stand-up"]
    assert 1.5 <= elapsed < 4.0
    assert len(env.standin.graph_requests("/calendarView")) == 2
    assert throttled() == throttled_before + 1  # counted for /metrics


def throttled() -> float:
    from prometheus_client.parser import text_string_to_metric_families

    from integrations import metrics

    return sum(s.value for fam in text_string_to_metric_families(metrics.render()[0].decode())
               for s in fam.samples if s.name == "prescreen_graph_throttled_total")


def test_503_storm_gives_up_after_bounded_retries_with_a_clear_error(env: Env) -> None:
    sleeps: list[float] = []
    client = env.client(sleep=sleeps.append, max_retries=4)
    env.standin.fail_next(503, count=1000, path_contains="/calendarView")

    with pytest.raises(GraphUnavailable) as err:
        client.calendar_view(CASEY, NOW, NOW + dt.timedelta(days=1))

    assert "unavailable (HTTP 503)" in str(err.value) and "after 5 attempts" in str(err.value)
    assert len(env.standin.graph_requests("/calendarView")) == 5
    assert len(sleeps) == 4 and all(0 < d <= client.max_delay for d in sleeps)
    assert sleeps[-1] > sleeps[0]  # exponential backoff (with jitter)


def test_long_retry_after_is_not_waited_out_and_network_errors_are_typed(env: Env) -> None:
    sleeps: list[float] = []
    client = env.client(sleep=sleeps.append)
    env.standin.fail_next(429, retry_after="300", path_contains="/calendarView")
    with pytest.raises(GraphThrottled) as err:
        client.calendar_view(CASEY, NOW, NOW + dt.timedelta(days=1))
    assert err.value.retry_after == 300 and sleeps == []

    client.credential.token()
    dead = GraphClient(
        client.credential,
        base_url="https://127.0.0.1:9/v1.0",
        verify=str(env.pki.ca_path),
        sleep=sleeps.append,
        max_retries=1,
        timeout=(1.0, 1.0),
    )
    with pytest.raises(GraphUnavailable, match="cannot reach Microsoft Graph"):
        dead.calendar_view(CASEY, NOW, NOW + dt.timedelta(days=1))


def test_sync_job_records_failures_per_mailbox_and_keeps_others(env: Env) -> None:
    seed_people(env.db)
    env.standin.add_event(SITE, "Visit", ny(7, 10), ny(7, 11))
    ctx = env.ctx(env.client(sleep=lambda _s: None, max_retries=1))
    env.standin.fail_next(503, count=1000, path_contains=f"/users/{CASEY}/")

    result = graph_sync_job(ctx)

    assert result is not None and "1 failed" in result
    with env.db.session() as s:
        casey = s.get(GraphSyncState, CASEY)
        site = s.get(GraphSyncState, SITE)
        assert casey is not None and casey.last_error and "HTTP 503" in casey.last_error
        assert site is not None and site.last_error is None and site.delta_link
    assert len(cached(env.db, SITE)) == 1


# ----- what coordinators see (cache only) -----


def test_my_calendar_site_slots_and_callback_collision_read_the_cache(env: Env) -> None:
    seed_people(env.db)
    s = env.standin
    s.add_event(CASEY, "Earlier today", ny(6, 8), ny(6, 9))
    s.add_event(
        CASEY,
        "Sponsor check-in",
        ny(6, 11),
        ny(6, 11, 30),
        join_url="https://teams.microsoft.com/l/meetup-join/xyz",
    )
    s.add_event(CASEY, "Dentist", ny(6, 14), ny(6, 15), sensitivity="private")
    s.add_event(CASEY, "Tomorrow", ny(7, 9), ny(7, 10))
    s.add_all_day(SITE, "Site closed", dt.date(2025, 3, 10))
    ctx = env.ctx(env.client())
    assert graph_sync_job(ctx) is not None
    calls_after_sync = len(s.graph_requests())

    day = my_calendar(ctx, "U0COORD01", NOW)
    assert day.status == OK and day.day == dt.date(2025, 3, 6)
    assert [e.title for e in day.events] == ["Sponsor check-in", "Busy"]
    assert day.events[0].join_url == "https://teams.microsoft.com/l/meetup-join/xyz"
    assert day.free == [
        Interval(NOW, ny(6, 11).astimezone(dt.UTC)),
        Interval(ny(6, 11, 30).astimezone(dt.UTC), ny(6, 14).astimezone(dt.UTC)),
        Interval(ny(6, 15).astimezone(dt.UTC), ny(6, 17).astimezone(dt.UTC)),
    ]
    blocks = views.calendar_blocks(day)
    text = str(blocks)
    assert "Dentist" not in text and "Join Teams meeting" in text and len(blocks) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
    assert "Meetings today (2)" in str(views.your_day_blocks(day))

    with env.db.session() as session:
        site = session.scalars(select(Site)).one()
        member = session.scalars(select(Member).where(Member.slack_user_id == "U0COORD01")).one()
    slots = site_free_slots(ctx, site, NOW, business_days=10)
    local_days = {sl.start.astimezone(NY).date() for sl in slots.slots}
    assert dt.date(2025, 3, 10) not in local_days  # closed all day
    assert dt.date(2025, 3, 8) not in local_days  # Saturday
    assert len(local_days) == 9 and max(local_days) == dt.date(2025, 3, 19)
    assert views.visit_slot_options(slots)[0]["value"] == "2025-03-06T15:00Z"

    hit = callback_collision(ctx, member, ny(6, 14, 30).astimezone(dt.UTC))
    assert hit is not None and hit.title == "Busy"
    assert "overlaps *Busy*" in views.collision_warning(hit, "America/New_York")
    assert callback_collision(ctx, member, ny(6, 12).astimezone(dt.UTC)) is None
    assert len(s.graph_requests()) == calls_after_sync  # none of the above called Graph


def test_member_without_mailbox_and_unsynced_mailbox_say_so(env: Env) -> None:
    seed_people(env.db)
    ctx = env.ctx(None)
    assert my_calendar(ctx, "U0COORD02", NOW).status == "no_mailbox"
    day = my_calendar(ctx, "U0COORD01", NOW)
    assert day.status == "not_configured" and day.events == []
    assert "not connected" in str(views.calendar_blocks(day))
    with env.db.session() as s:
        assert repo.configured_mailboxes(s) == {CASEY: "America/New_York", SITE: "America/New_York"}


# ----- operator check -----


def graph_settings(env: Env, **overrides: str) -> Settings:
    values = {
        "ms_tenant_id": TENANT,
        "ms_client_id": CLIENT_ID,
        "ms_client_secret": SECRET,
        "ms_authority_host": env.standin.authority_host,
        "graph_api_url": env.standin.graph_url,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_graph_check_prints_events_and_free_slots(env: Env) -> None:
    env.standin.add_event(
        CASEY,
        "Sponsor check-in",
        ny(6, 11),
        ny(6, 11, 30),
        join_url="https://teams.microsoft.com/l/meetup-join/xyz",
    )
    out = io.StringIO()
    code = graph_check(graph_settings(env), CASEY, out, now=NOW, verify=str(env.pki.ca_path))
    text = out.getvalue()
    assert code == 0, text
    assert "token acquired" in text and "Sponsor check-in" in text and "[Teams]" in text
    assert "Thu 10:00–Thu 11:00" in text  # free before the meeting, New York time


def test_graph_check_reports_the_exact_reason(env: Env) -> None:
    out = io.StringIO()
    code = graph_check(
        graph_settings(env, ms_client_secret="wrong"), CASEY, out, now=NOW, verify=str(env.pki.ca_path)
    )
    assert code == 1 and "AADSTS7000215" in out.getvalue() and "wrong" in out.getvalue()

    env.standin.roles = []
    out = io.StringIO()
    code = graph_check(graph_settings(env), CASEY, out, now=NOW, verify=str(env.pki.ca_path))
    assert code == 1 and "ErrorAccessDenied" in out.getvalue() and "Calendars.ReadBasic.All" in out.getvalue()

    out = io.StringIO()
    assert graph_check(Settings(_env_file=None), CASEY, out) == 1  # type: ignore[call-arg]
    assert "not configured" in out.getvalue()


def test_add_cli_registers_graph_check() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["graph", "check", "casey@example.org", "--timezone", "America/Chicago"])
    assert args.mailbox == "casey@example.org" and args.timezone == "America/Chicago" and callable(args.func)


def test_at_most_four_concurrent_requests_per_mailbox(env: Env) -> None:
    import threading

    env.standin.latency = 0.15
    client = env.client()
    client.credential.token()
    errors: list[BaseException] = []

    def read(mailbox: str) -> None:
        try:
            client.calendar_view(mailbox, NOW, NOW + dt.timedelta(hours=1))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(CASEY,)) for _ in range(10)]
    threads.append(threading.Thread(target=read, args=(SITE,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert env.standin.max_in_flight[CASEY] == 4
    assert env.standin.max_in_flight[SITE] == 1


def test_sandbox_shows_demo_calendars_without_a_tenant(env: Env) -> None:
    from sandbox.graph import start_sandbox_graph

    seed_people(env.db)
    ctx = env.ctx(None)
    standin = start_sandbox_graph(ctx)
    try:
        assert standin is not None and standin.url.startswith("http://")
        day = my_calendar(ctx, "U0COORD01", NOW)
        assert day.status == OK and day.events
        assert any(e.join_url for e in day.events)
    finally:
        if standin is not None:
            standin.stop()
