"""`prescreen-bot ringcentral check [EMAIL]`: can this deployment call, read call logs and text?

Gets a token with the JWT, finds the extension (EMAIL's, or the JWT user's), reads the last
day's call log and says exactly what is missing. Exit 0 when everything works, 1 otherwise."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any, TextIO

from bot.config import Settings
from integrations.ringcentral import (
    RcAuthError,
    RcError,
    RcNotFound,
    RcPermissionError,
    RcRateLimited,
    RcUnavailable,
    RingCentralClient,
    client_from_settings,
)

EXIT_OK, EXIT_FAIL = 0, 1
NEEDED = {"ReadAccounts": "find members' extensions", "ReadCallLog": "turn calls into attempts",
          "RingOut": "place calls from the Call button", "SMS": "send texts",
          "ReadMessages": "read inbound texts (STOP, HELP, replies)",
          "WebhookSubscriptions": "be told of inbound texts"}


def ringcentral_check(settings: Settings, email: str | None, out: TextIO, *,
                      now: dt.datetime | None = None,
                      client: RingCentralClient | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    if client is None:
        client = client_from_settings(settings, max_retries=1, max_delay=10.0)
    if client is None:
        print("FAIL RingCentral is not configured: set RINGCENTRAL_CLIENT_ID, "
              "RINGCENTRAL_CLIENT_SECRET and RINGCENTRAL_JWT (see the README's RingCentral "
              "section). Without them the bot works as before, without calling or texting.",
              file=out)
        return EXIT_FAIL
    step = "token"
    try:
        client.token()
        print(f"ok   token acquired with the JWT ({client.server_url})", file=out)
        missing = [p for p in NEEDED if client.scope and p not in client.scope]
        for perm in missing:
            print(f"FAIL the app lacks the {perm} permission (needed to {NEEDED[perm]}): add it "
                  "in the RingCentral developer console, then create a new JWT", file=out)
        step = "extension"
        if email:
            ext = next((e for e in client.extensions() if e.email == email.strip().lower()), None)
            if ext is None:
                print(f"FAIL no extension with the email {email} in this RingCentral account: "
                      "use the same email in RingCentral and Slack, or set "
                      "ringcentral_extension for the member in the studies file", file=out)
                return EXIT_FAIL
        else:
            ext = client.extension("~")
        print(f"ok   extension {ext.number} (id {ext.id}, {ext.status or 'status unknown'})",
              file=out)
        step = "call log"
        records = client.call_log(ext.id, date_from=now - dt.timedelta(days=1))
        print(f"ok   {len(records)} call(s) in the last day's call log", file=out)
        if not settings.public_url:
            print("note PUBLIC_URL is not set: the webhook for inbound texts cannot be created",
                  file=out)
        if missing:
            return EXIT_FAIL
    except RcAuthError as exc:
        print(f"FAIL cannot get a token: {exc}", file=out)
        return EXIT_FAIL
    except RcRateLimited as exc:
        print(f"FAIL rate limited while reading the {step}: {exc}. Try again in a minute.",
              file=out)
        return EXIT_FAIL
    except RcUnavailable as exc:
        print(f"FAIL network: {exc}. Check RINGCENTRAL_SERVER_URL and the outbound firewall.",
              file=out)
        return EXIT_FAIL
    except RcPermissionError as exc:
        print(f"FAIL {exc}", file=out)
        return EXIT_FAIL
    except RcNotFound as exc:
        print(f"FAIL {step}: {exc}", file=out)
        return EXIT_FAIL
    except RcError as exc:
        print(f"FAIL {step}: {exc}", file=out)
        return EXIT_FAIL
    finally:
        client.close()
    return EXIT_OK


def _cmd_check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    return ringcentral_check(settings, args.email, out)


def add_cli(subparsers: Any) -> None:
    rc = subparsers.add_parser("ringcentral", help="RingCentral (click-to-call, call log, texts)")
    sub = rc.add_subparsers(dest="ringcentral_cmd", metavar="ACTION")
    sub.required = True
    check = sub.add_parser("check", help="get a token, find the extension, read the last day's "
                           "call log; say what is missing")
    check.add_argument("email", nargs="?", help="a member's email (default: the JWT's own user)")
    check.set_defaults(func=_cmd_check)
