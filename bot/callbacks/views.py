"""Block Kit for callbacks: the reminder DM, the escalation note, the reschedule and hand-off
modals and the `/prescreen callbacks` list. Reference codes only: no patient identity."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot import blocks as bk
from bot import ids


def clock(at: dt.datetime, tz_name: str, *, day: bool = False) -> str:
    local = at.astimezone(ZoneInfo(tz_name))
    return f"{local:%a %H:%M}" if day else f"{local:%H:%M}"


def _both(due_at: dt.datetime, owner_tz: str, candidate_tz: str, now: dt.datetime) -> str:
    owner = ZoneInfo(owner_tz)
    mine_at = due_at.astimezone(owner)
    mine = f"{mine_at:%H:%M}" if mine_at.date() == now.astimezone(owner).date() \
        else f"{mine_at:%a %H:%M}"
    theirs = due_at.astimezone(ZoneInfo(candidate_tz))
    if mine_at.utcoffset() == theirs.utcoffset():
        return f"{mine} your time (same for the candidate)"
    return f"{mine} your time ({theirs:%H:%M} candidate time)"


def reminder_text(*, ref: str, kind: str, due_at: dt.datetime, owner_tz: str, candidate_tz: str,
                  attempt: int, max_attempts: int, now: dt.datetime, late: bool) -> str:
    what = "Callback due" if kind == "requested" else "Next attempt due"
    if due_at < now:
        what = "Callback was due" if kind == "requested" else "Next attempt was due"
    text = f"{what} {_both(due_at, owner_tz, candidate_tz, now)} · {ref} · attempt {attempt}"
    if kind != "requested":
        text += f" of {max_attempts}"
    return text


def reminder_blocks(*, callback_id: int, ref: str, text: str, late: bool,
                    reminded_for: dt.datetime, owner_tz: str,
                    card_url: str | None = None) -> list[bk.Block]:
    """`card_url` (portal mode): an "Open contact card" link button for the number to call."""
    value = bk.encode({"cb": callback_id, "ref": ref})  # once, for the five buttons
    out: list[bk.Block] = [bk.section(f":telephone_receiver: *{text}*")]
    if late:
        out.append(bk.context(f":hourglass: Late reminder: it was due at {clock(reminded_for, owner_tz)} "
                              "your time while the bot was offline."))
    out.append(bk.actions([
        bk.button("Log call", ids.CALLBACK_LOG, value, style="primary"),
        bk.button("Done", ids.CALLBACK_DONE, value),
        bk.button("Snooze 15 min", ids.CALLBACK_SNOOZE, value),
        bk.button("Reschedule", ids.CALLBACK_RESCHEDULE, value),
        bk.button("Hand off", ids.CALLBACK_HANDOFF, value),
        *([bk.link_button("Open contact card", card_url, f"{ids.OPEN_PAGE_CARD}:{ref}")]
          if card_url else []),
    ], block_id=ids.CALLBACK_ACTIONS_BLOCK))
    return out


def call_row(ref: str) -> bk.Block:
    """RingCentral's click-to-call under a reminder (the reference code only)."""
    return bk.actions([bk.button("Call", ids.RC_CALL, {"ref": ref}, style="primary")],
                      block_id=ids.RC_CALL_BLOCK)


def result_blocks(message: str) -> list[bk.Block]:
    """What the reminder DM becomes once acted on (buttons gone)."""
    return [bk.section(message)]


def escalation_text(owner: str, count: int, study_key: str, earliest: dt.datetime,
                    study_tz: str) -> str:
    noun = "callback" if count == 1 else "callbacks"
    local = earliest.astimezone(ZoneInfo(study_tz))
    return (f":rotating_light: {count} {study_key} {noun} overdue for <@{owner}> "
            f"(due {local:%a %H:%M} {local.tzname()}). Log the call or reschedule it from the "
            "reminder DM.")


def handoff_dm(ref: str, study_key: str, by: str, due_at: dt.datetime, owner_tz: str,
               candidate_tz: str, now: dt.datetime) -> tuple[str, list[bk.Block]]:
    text = (f":handshake: <@{by}> handed you the callback to {ref} ({study_key}), due "
            f"{_both(due_at, owner_tz, candidate_tz, now)}. You'll get its reminder.")
    return text, [bk.section(text),
                  bk.context(f"`/prescreen status {ref}` for details · `/prescreen callbacks` for all yours")]


def reschedule_modal(callback_id: int, ref: str, due_at: dt.datetime, candidate_tz: str,
                     channel: str | None) -> bk.Block:
    local = due_at.astimezone(ZoneInfo(candidate_tz))
    return {
        "type": "modal", "callback_id": ids.RESCHEDULE_VIEW,
        "title": bk.plain("Reschedule callback", 24), "submit": bk.plain("Reschedule", 24),
        "close": bk.plain("Cancel", 24),
        "private_metadata": bk.encode({"cb": callback_id, "c": channel}),
        "blocks": [
            bk.section(f"New time for *{ref}*. Enter it in the candidate's time ({candidate_tz})."),
            {"type": "input", "block_id": ids.RS_DATE_BLOCK, "label": bk.plain("Day"),
             "element": {"type": "datepicker", "action_id": ids.RS_DATE_INPUT,
                         "initial_date": local.date().isoformat()}},
            {"type": "input", "block_id": ids.RS_TIME_BLOCK, "label": bk.plain("Time (candidate's)"),
             "element": {"type": "timepicker", "action_id": ids.RS_TIME_INPUT,
                         "initial_time": f"{local:%H:%M}"}},
        ],
    }


def handoff_modal(callback_id: int, ref: str, study_key: str, coordinators: list[tuple[str, str]],
                  channel: str | None) -> bk.Block:
    if not coordinators:
        return {"type": "modal", "title": bk.plain("Hand off callback", 24),
                "close": bk.plain("Close", 24),
                "blocks": [bk.section(f"No other {study_key} coordinator to hand *{ref}* to. "
                                      "Ask your admin to add one, or reschedule instead.")]}
    return {
        "type": "modal", "callback_id": ids.HANDOFF_VIEW,
        "title": bk.plain("Hand off callback", 24), "submit": bk.plain("Hand off", 24),
        "close": bk.plain("Cancel", 24),
        "private_metadata": bk.encode({"cb": callback_id, "c": channel}),
        "blocks": [
            bk.section(f"Who takes the callback to *{ref}*? They get a DM and its reminder."),
            {"type": "input", "block_id": ids.HANDOFF_BLOCK, "label": bk.plain(f"{study_key} coordinator"),
             "element": {"type": "static_select", "action_id": ids.HANDOFF_SELECT,
                         "placeholder": bk.plain("Pick a coordinator"),
                         "options": [bk.option(name, uid) for uid, name in coordinators][:100]}},
        ],
    }


def upcoming_blocks(viewer_tz: str, rows: list, total: int, now: dt.datetime) -> tuple[str, list[bk.Block]]:  # type: ignore[type-arg]
    if not rows:
        text = "No open callbacks. Log a call with outcome “Callback requested” to add one."
        return text, [bk.section(text)]
    lines = []
    for r in rows:
        overdue = " · *overdue*" if r.due_at < now else ""
        kind = "" if r.kind == "requested" else " · planned attempt"
        lines.append(f"• {_both(r.due_at, viewer_tz, r.candidate_tz, now).replace(' your time', '')} · "
                     f"*{r.ref}* · attempt {r.attempt}{kind}{overdue}")
    head = f"*Your callbacks* ({total})"
    blocks = [bk.section(head + "\n" + "\n".join(lines))]
    if total > len(rows):
        blocks.append(bk.context(f"and {total - len(rows)} more; the soonest are shown."))
    blocks.append(bk.context("Times are yours; the candidate's in brackets. `/prescreen log REF` "
                             "after each call."))
    return f"Your callbacks ({total})", blocks
