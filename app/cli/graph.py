"""`prescreen-bot graph check MAILBOX`: can this deployment read that Outlook calendar?"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any, TextIO

from bot.config import Settings
from integrations.graph.client import GraphClient
from integrations.graph.errors import (
    GraphAuthError,
    GraphConfigError,
    GraphError,
    GraphRequestError,
    GraphThrottled,
    GraphUnavailable,
)
from integrations.graph.factory import client_from_settings
from integrations.graph.slots import free_slots
from integrations.graph.types import WorkingHours, zone

EXIT_OK, EXIT_FAIL = 0, 1


def _fmt(value: dt.datetime, tz: str) -> str:
    return value.astimezone(zone(tz)).strftime("%a %H:%M")


def graph_check(
    settings: Settings,
    mailbox: str,
    out: TextIO,
    *,
    now: dt.datetime | None = None,
    timezone: str | None = None,
    verify: bool | str = True,
    client: GraphClient | None = None,
) -> int:
    """Acquire a token, read the next 24 h and the free slots of `mailbox`; print them or the reason."""
    tz = timezone or settings.default_timezone
    now = now or dt.datetime.now(dt.UTC)
    if client is None:
        if not settings.graph_configured:
            print(
                "FAIL Microsoft Graph is not configured: set MS_TENANT_ID, MS_CLIENT_ID and "
                "MS_CLIENT_SECRET or MS_CLIENT_CERT_PATH",
                file=out,
            )
            return EXIT_FAIL
        try:
            client = client_from_settings(settings, verify=verify, max_retries=2, max_delay=10.0)
        except GraphConfigError as exc:
            print(f"FAIL configuration: {exc}", file=out)
            return EXIT_FAIL
    step = "token"
    try:
        client.credential.token()
        authority = getattr(client.credential, "authority", "sandbox stand-in")
        print(f"ok   token acquired (app-only, {authority})", file=out)
        step = "calendar"
        end = now + dt.timedelta(hours=24)
        events = client.calendar_view(mailbox, now, end, timezone=tz)
        print(f"ok   {len(events)} event(s) in the next 24 h for {mailbox} ({tz}):", file=out)
        for ev in events:
            when = f"{ev.start_date} all day" if ev.is_all_day else f"{_fmt(ev.start, tz)}–{_fmt(ev.end, tz)}"
            title = "Busy (private)" if ev.is_private else (ev.subject or "(no subject)")
            link = "  [Teams]" if ev.join_url else ""
            print(f"     {when}  {title}  ({ev.show_as}){link}", file=out)
        step = "free/busy"
        info = client.get_schedule([mailbox], now, end, fallback_tz=tz)[mailbox]
        if info.error:
            print(f"FAIL free/busy for {mailbox}: {info.error}", file=out)
            return EXIT_FAIL
        hours = info.working_hours or WorkingHours.default(tz)
        slots = free_slots(info.busy, now, end, hours)
        print(f"ok   {len(slots)} free slot(s) in working hours ({hours.timezone}):", file=out)
        for s in slots:
            print(f"     {_fmt(s.start, tz)}–{_fmt(s.end, tz)}", file=out)
    except GraphAuthError as exc:
        print(f"FAIL cannot get a token: {exc}", file=out)
        return EXIT_FAIL
    except GraphThrottled as exc:
        print(f"FAIL throttled while reading the {step}: {exc}", file=out)
        return EXIT_FAIL
    except GraphUnavailable as exc:
        print(f"FAIL network while reading the {step}: {exc}", file=out)
        return EXIT_FAIL
    except GraphRequestError as exc:
        print(f"FAIL Graph refused the {step} read: {exc}", file=out)
        return EXIT_FAIL
    except GraphError as exc:
        print(f"FAIL {step}: {exc}", file=out)
        return EXIT_FAIL
    finally:
        client.close()
    return EXIT_OK


def _cmd_check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    verify: bool | str = args.ca_bundle or True
    return graph_check(settings, args.mailbox, out, timezone=args.timezone, verify=verify)


def add_cli(subparsers: Any) -> None:
    """Add `graph check MAILBOX` to the prescreen-bot argparse subparsers."""
    graph = subparsers.add_parser("graph", help="Microsoft Graph (Outlook calendars)")
    gsub = graph.add_subparsers(dest="graph_cmd", metavar="ACTION")
    gsub.required = True
    check = gsub.add_parser("check", help="acquire a token, read the next 24 h and free slots of a mailbox")
    check.add_argument("mailbox", help="the mailbox (user principal name or SMTP address)")
    check.add_argument("--timezone", help="IANA zone to print times in (default DEFAULT_TIMEZONE)")
    check.add_argument("--ca-bundle", help="CA bundle to trust instead of the system one")
    check.set_defaults(func=_cmd_check)
