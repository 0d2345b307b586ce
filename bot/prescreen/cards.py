"""Block Kit for status replies, search results, call summaries and the App Home queue."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot import blocks as bk
from bot import ids
from bot.leads.views import CardLink, card_button, card_link_text, home_section
from bot.prescreen.outcomes import label
from bot.prescreen.queries import CandidateStatus, FoundCandidate, Queue, QueueItem, status_label
from bot.prescreen.workflow import CallLogged
from bot.referrals import states as ref_states


def _when(at: dt.datetime | None, tz: str) -> str:
    if at is None:
        return "—"
    local = at.astimezone(ZoneInfo(tz))
    return f"{local:%a %b} {local.day} {local:%H:%M} {local.tzname()}"


def status_blocks(s: CandidateStatus, card_url: str | None = None) -> list[bk.Block]:
    out: list[bk.Block] = [bk.section(f"*{s.ref}* · {s.study_key} · {status_label(s.status)}")]
    if s.do_not_call:
        out.append(bk.section(":no_entry: *Do not call.* No callbacks or reminders for this candidate."))
    next_cb = "—"
    if s.next_callback:
        theirs = _when(s.next_callback, s.timezone)
        next_cb = f"{_when(s.next_callback, s.viewer_tz)} your time ({theirs} theirs)"
    out.append(bk.fields([
        ("Attempts", f"{s.attempts} of {s.max_attempts}"),
        ("Last outcome", label(s.last_outcome)
         + (" (from RingCentral)" if s.last_from_ringcentral and s.last_outcome else "")),
        ("Last call", _when(s.last_called_at, s.viewer_tz)),
        ("Next callback", next_cb),
        ("Referral", ref_states.label(s.referral_state) if s.referral_state else "none"),
        ("Time zone", s.timezone),
    ]))
    if s.name is not None:
        out.append(bk.section(f":lock: {bk.escape(s.name)} · {bk.escape(s.phone or '')}"))
        out.append(bk.context("Only you see this. Your view is recorded in the audit trail."))
    buttons = [bk.button("Log a call", ids.HOME_LOG_CALL, {"ref": s.ref})]
    if card_url is not None:
        buttons.append(card_button(card_url, s.ref))
        out.append(bk.context("Name, phone and notes are on the contact card (secure page)."))
    out.append(bk.actions(buttons))
    return out


def status_text(s: CandidateStatus) -> str:
    return f"{s.ref} · {status_label(s.status)} · {s.attempts} attempts"


def found_blocks(query_kind: str, rows: list[FoundCandidate]) -> tuple[str, list[bk.Block]]:
    if not rows:
        text = f"No candidate in your studies matches that {query_kind}."
        return text, [bk.section(text + " Check the spelling or digits, or log a new candidate.")]
    lines = [f"• *{r.ref}* · {status_label(r.status)}"
             + (" · :no_entry: do not call" if r.do_not_call else "") for r in rows]
    text = f"{len(rows)} match{'es' if len(rows) != 1 else ''}"
    return text, [bk.section(f"{text}:\n" + "\n".join(lines)),
                  bk.context("Use `/prescreen status CODE` for details.")]


def search_on_page(url: str) -> tuple[str, list[bk.Block]]:
    """`/prescreen find` in portal mode: names and phone numbers are searched on the page."""
    text = f"Search on the secure page: {url}"
    return text, [bk.section("Search by phone or name on the secure page: what you type there "
                             "never passes through Slack.",
                             accessory=bk.link_button("Search", url, ids.OPEN_PAGE_SEARCH))]


def logged_blocks(result: CallLogged, card_url: str | None = None) -> list[bk.Block]:
    icon = {"pre_qualified": ":white_check_mark:", "disqualified": ":x:",
            "callback_requested": ":telephone_receiver:", "do_not_call": ":no_entry:"}.get(
        result.outcome, ":memo:")
    out = [bk.section(f"{icon} Logged: {result.summary}")]
    if result.warning:
        out.append(bk.section(result.warning))
    if result.outcome == "disqualified" and result.failed_criteria:
        out.append(bk.context("Failed criteria: " + ", ".join(result.failed_criteria)))
    if card_url is not None and not result.replay:
        out.append(bk.section("Add notes on the contact card.",
                              accessory=card_button(card_url, result.ref)))
    return out


def _items(title: str, items: list[QueueItem], empty: str, button: bool = True,
           card: CardLink | None = None) -> list[bk.Block]:
    out: list[bk.Block] = [bk.header(title)]
    if not items:
        out.append(bk.context(empty))
        return out
    for it in items[:15]:
        acc = bk.button("Log call", ids.HOME_LOG_CALL, {"ref": it.ref}) if button else None
        line = f"*{it.ref}* · {it.study_key} · {it.detail}"
        if card is not None:
            line += " · " + card_link_text(card, it.ref)
        out.append(bk.section(line, accessory=acc))
    if len(items) > 15:
        out.append(bk.context(f"and {len(items) - 15} more"))
    return out


def home_view(q: Queue, now: dt.datetime, card: CardLink | None = None) -> bk.Block:
    if not q.is_member:
        blocks = [bk.header("prescreen-bot"),
                  bk.section("You are not a member of any study yet. Ask your admin to add you; "
                             "then your callbacks and approvals show up here.")]
        return {"type": "home", "blocks": blocks}
    local = now.astimezone(ZoneInfo(q.timezone))
    blocks: list[bk.Block] = [
        bk.section(f"*My queue* · {local:%A %b} {local.day}, {local:%H:%M} {local.tzname()}",
                   accessory=bk.button("Refresh", ids.HOME_REFRESH)),
    ]
    if q.work is not None:
        blocks += home_section(q.work, card=card)
    blocks += _items("Callbacks today", q.callbacks_today, "No callbacks due today.", card=card)
    blocks += _items("Needs another attempt", q.needs_attempt,
                     "Nobody is waiting for another attempt.", card=card)
    if q.approvals:
        blocks += _items("Waiting for your approval", q.approvals, "", button=False)
        blocks.append(bk.context("Approve or reject on the card in the study channel."))
    blocks.append(bk.divider())
    blocks.append(bk.context("Type `/prescreen` to log a call · `/prescreen help` for everything else."))
    return {"type": "home", "blocks": bk.truncate_blocks(blocks, 100, "and {n} more")}
