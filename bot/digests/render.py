"""Block Kit for digests, within Slack's limits (50 blocks a message, 3,000 characters a
section). Long lists end with "…and N more" and where to see the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.blocks import MAX_MESSAGE_BLOCKS, MAX_SECTION_TEXT, Block, context, section
from bot.leads.sla import STAGE_LABELS


def fit_items(title: str, items: Sequence[str], *, more_hint: str, sep: str = "\n",
              max_items: int | None = None, limit: int = MAX_SECTION_TEXT) -> str:
    """`title` then as many items as fit in `limit` characters (and `max_items`), then
    "…and N more — hint" for the rest."""
    head = f"{title}\n" if title else ""
    shown: list[str] = []
    for i, item in enumerate(items):
        rest = len(items) - i - 1
        tail = f"{sep}…and {rest} more — {more_hint}" if rest else ""
        candidate = head + sep.join([*shown, item])
        over_count = max_items is not None and len(shown) >= max_items
        if over_count or len(candidate) + len(tail) > limit:
            break
        shown.append(item)
    text = head + sep.join(shown)
    hidden = len(items) - len(shown)
    if hidden:
        text += f"{sep if shown else ''}…and {hidden} more — {more_hint}"
    return text[:limit]


def list_section(title: str, items: Sequence[str], *, more_hint: str, sep: str = "\n",
                 max_items: int | None = None, empty: str = "none") -> Block:
    if not items:
        return section(f"{title} {empty}")
    return section(fit_items(title, items, more_hint=more_hint, sep=sep, max_items=max_items))


def fit_blocks(blocks: list[Block], *, more_hint: str,
               limit: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    """At most `limit` blocks; the last one says how many were left out and where to look."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    return [*kept, context(f"…and {len(blocks) - len(kept)} more — {more_hint}")]


def arrow(today: float, average: float) -> str:
    """↑ / ↓ against the previous 7-day average (→ when equal)."""
    if today > average:
        return "↑"
    if today < average:
        return "↓"
    return "→"


STALE_TITLE = "*Stale items (past SLA)"
STALE_LINE_LIMIT = 500  # per breakdown line; five lines stay well inside one section


def stale_section(stale: dict[str, Any]) -> Block:
    """The "Stale items (past SLA)" section from bot.leads.sla.stale_summary: the total, one
    compact line per breakdown, and where to work them. Counts and Slack mentions only."""
    study_key = stale["study"]
    queue = f"`/prescreen queue {study_key}`"
    total = int(stale.get("total") or 0)
    if not total:
        return section(f"{STALE_TITLE}:* No items past SLA.")
    site_label = {"none": "no site yet"}
    breakdowns = (
        ("By stage", [f"{n} {STAGE_LABELS.get(k, k)}" for k, n in stale["by_stage"].items()]),
        ("By source", [f"{n} {k}" for k, n in stale["by_source"].items()]),
        ("By site", [f"{n} {site_label.get(k, k)}" for k, n in stale["by_site"].items()]),
        ("By owner", [f"{k} {n}" if k == "unassigned" else f"<@{k}> {n}"
                      for k, n in stale["by_owner"].items()]),
        ("By reason", [f"{n} {k}" for k, n in stale["by_reason"].items()]),
    )
    lines = [f"{STALE_TITLE}:* {total}"]
    lines += [f"{name}: " + fit_items("", items, more_hint=queue, sep=" · ", max_items=10,
                                      limit=STALE_LINE_LIMIT - len(name) - 2)
              for name, items in breakdowns if items]
    lines.append(f"Run {queue}.")
    return section("\n".join(lines))
