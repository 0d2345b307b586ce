"""Block Kit for `/prescreen next`, `/prescreen queue` and the App Home "My queue" section.
Reference codes, study keys and wait reasons only."""

from __future__ import annotations

from bot import blocks as bk
from bot import ids
from bot.leads.queue import NextLead, NoLead, WorkItem, WorkQueue


def next_blocks(result: NextLead | NoLead) -> tuple[str, list[bk.Block]]:
    if isinstance(result, NoLead):
        return result.message, [bk.section(result.message)]
    text = f"Next: {result.ref} · {result.why}"
    blocks = [
        bk.section(f":telephone_receiver: *Next: {result.ref}* · {result.study_key}\n"
                   f"Why now: {result.why}",
                   accessory=bk.button("Log call", ids.HOME_LOG_CALL, {"ref": result.ref})),
        bk.context(f"Attempts: {result.attempts} of {result.max_attempts} · waits: "
                   f"{result.reason} · their time zone: {result.candidate_tz}"),
    ]
    return text, blocks


def item_line(it: WorkItem) -> str:
    closed = " · :crescent_moon: outside calling hours now" if it.window_closed else ""
    return f"*{it.ref}* · {it.study_key} · {it.what} · _{it.reason}_{closed}"


def queue_blocks(q: WorkQueue, study_key: str | None, shown: int = 20) -> tuple[str, list[bk.Block]]:
    scope = f" in {study_key.upper()}" if study_key else ""
    if not q.items:
        text = f"Your queue{scope} is empty: nothing waits on you."
        return text, [bk.section(text)]
    text = f"Your queue{scope}: {q.total} item{'s' if q.total != 1 else ''}, most urgent first"
    lines = [item_line(it) for it in q.items[:shown]]
    blocks: list[bk.Block] = [bk.section(f"*{text}*"), bk.section("\n".join(lines))]
    if q.total > shown:
        blocks.append(bk.context(f"and {q.total - shown} more"))
    blocks.append(bk.context("`/prescreen next` gives you the one to call now · "
                             "`/prescreen reason REF REASON` says why an item waits."))
    return text, blocks


def home_section(q: WorkQueue, shown: int = 10) -> list[bk.Block]:
    out: list[bk.Block] = [bk.header("My queue")]
    if not q.items:
        out.append(bk.context("Nothing waits on you."))
        return out
    for it in q.items[:shown]:
        out.append(bk.section(item_line(it),
                              accessory=bk.button("Log call", ids.HOME_LOG_CALL, {"ref": it.ref})))
    if q.total > shown:
        out.append(bk.context(f"and {q.total - shown} more · `/prescreen queue` lists them"))
    return out
