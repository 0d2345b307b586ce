"""`prescreen-bot digest preview STUDY` and `prescreen-bot digest send STUDY --period DAY`."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import Any, TextIO

from app.cli.common import cli_context, open_db
from bot.config import Settings
from bot.digests import daily, runs, weekly
from storage import audit
from storage.repositories import digests as repo
from storage.repositories import studies as study_repo

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2
KINDS = ("daily", "weekly")


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dg = sub.add_parser("digest", help="preview a study digest, or send one again on purpose")
    dsub = dg.add_subparsers(dest="digest_cmd", required=True)
    pv = dsub.add_parser("preview", help="print the next digest of a study (nothing is sent)")
    pv.add_argument("study")
    pv.add_argument("--kind", choices=KINDS, default="daily")
    pv.add_argument("--period", help="the day reported on (weekly: first day of the week), "
                                     "YYYY-MM-DD; default: the next one to be sent")
    pv.set_defaults(func=cmd_digest_preview)
    sd = dsub.add_parser("send", help="queue a digest for the study channel again, even if it "
                                      "was already sent")
    sd.add_argument("study")
    sd.add_argument("--kind", choices=KINDS, default="daily")
    sd.add_argument("--period", required=True,
                    help="the day reported on (weekly: first day of the week), YYYY-MM-DD")
    sd.set_defaults(func=cmd_digest_send)


def _parse_day(value: str | None) -> dt.date | None:
    if value is None:
        return None
    return dt.date.fromisoformat(value)


def _plain(text: str) -> str:
    """mrkdwn → terminal: no *bold* / _italic_ markers, <@U…> as @U…."""
    text = re.sub(r"<@(\w+)>", r"@\1", text)
    text = text.replace("*", "")
    return re.sub(r"(?<!\w)_|_(?!\w)", "", text)


def blocks_as_text(blocks: list[dict[str, Any]]) -> str:
    """A terminal rendering of a Block Kit message."""
    lines: list[str] = []
    for b in blocks:
        kind = b.get("type")
        if kind == "header":
            title = b["text"]["text"]
            lines += [title, "=" * len(title)]
        elif kind == "section":
            if b.get("text"):
                lines.append(b["text"]["text"])
            for f in b.get("fields", []):
                lines.append(f["text"].replace("\n", ": ", 1))
        elif kind == "context":
            lines += [e.get("text", "") for e in b.get("elements", [])]
        elif kind == "divider":
            lines.append("-" * 40)
    return _plain("\n".join(lines))


def _prepare(args: argparse.Namespace, settings: Settings, db: Any) -> tuple[Any, Any, Any] | str:
    """(ctx, study, day) or the one-line reason the input is invalid."""
    try:
        day = _parse_day(args.period)
    except ValueError:
        return f"--period {args.period!r} is not a date like 2026-11-21"
    with db.session() as session:
        study = study_repo.get_study(session, args.study.upper())
        if study is not None:
            _ = study.sites
            session.expunge_all()
        known = sorted(study_repo.study_keys(session))
    if study is None:
        return f"no study {args.study!r}; studies: {', '.join(known) or 'none imported yet'}"
    ctx = cli_context(settings, db)
    if day is None:
        now = ctx.clock.now()
        if args.kind == "daily":
            day = daily.next_period(study, now)
        else:
            run = weekly.due_run(study, now)
            day = weekly.week_of(run.day + dt.timedelta(days=7))[0]
    return ctx, study, day


def _build(ctx: Any, study: Any, kind: str, day: dt.date) -> tuple[str, list[Any]]:
    if kind == "daily":
        return daily.scope_for(study.key), daily.build(ctx, study, day)
    return (weekly.scope_for(study.key),
            weekly.build(ctx, study, day, day + dt.timedelta(days=6)))


def _period_of(kind: str, day: dt.date) -> str:
    return day.isoformat() if kind == "daily" else weekly.period_key(day, day + dt.timedelta(days=6))


def cmd_digest_preview(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db:
        prepared = _prepare(args, settings, db)
        if isinstance(prepared, str):
            print(f"prescreen-bot: {prepared}", file=sys.stderr)
            return EXIT_INVALID
        ctx, study, day = prepared
        _, messages = _build(ctx, study, args.kind, day)
    for m in messages:
        if m.file is not None:
            print(f"[file {m.file[0]}, {len(m.file[1])} bytes, to {m.channel}]", file=out)
            continue
        print(f"to {m.channel}:", file=out)
        print(blocks_as_text(m.blocks or []) or m.text, file=out)
    return EXIT_OK


def cmd_digest_send(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db:
        prepared = _prepare(args, settings, db)
        if isinstance(prepared, str):
            print(f"prescreen-bot: {prepared}", file=sys.stderr)
            return EXIT_INVALID
        ctx, study, day = prepared
        scope, messages = _build(ctx, study, args.kind, day)
        period = _period_of(args.kind, day)
        now = ctx.clock.now()
        with db.session() as session:
            had_run = repo.exists(session, scope, period)
            # a resend before the scheduled run counts as that run: no second copy at the usual time
            repo.claim(session, scope=scope, period=period, status=repo.SENT, late=False, now=now)
            queued = runs.enqueue(ctx, session, scope, period, messages,
                                  resend=f"{now:%Y%m%dT%H%M%S.%f}")
            audit.record(session, actor="cli", action="digest.resent", entity="digest",
                         entity_id=f"{scope}:{period}",
                         after={"messages": queued, "channels": sorted({m.channel for m in messages}),
                                "already_sent": had_run},
                         reason="sent again with prescreen-bot digest send")
    for m in messages:
        what = f"file {m.file[0]}" if m.file else f"message \"{m.text}\""
        print(f"queued {what} to {m.channel}", file=out)
    print(f"{scope} {period}: {queued} queued"
          + (" (it had been sent before)" if had_run else ""), file=out)
    return EXIT_OK
