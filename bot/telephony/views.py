"""Block Kit for click-to-call: a Call button carries the reference code only."""

from __future__ import annotations

from typing import Any

from bot import blocks as bk
from bot import ids

Block = dict[str, Any]


def call_button(ref: str) -> Block:
    return bk.button("Call", ids.RC_CALL, {"ref": ref}, style="primary")


def with_call_buttons(blocks: list[Block], refs: list[str], limit: int = 5) -> list[Block]:
    """The blocks plus one actions row of Call buttons (the first `limit` references)."""
    if not refs:
        return blocks
    # action ids are unique within a block, as Slack requires: rc_call, rc_call:1, rc_call:2…
    row = [bk.button(f"Call {ref}" if len(refs) > 1 else "Call",
                     ids.RC_CALL if i == 0 else f"{ids.RC_CALL}:{i}", {"ref": ref},
                     style="primary" if i == 0 else None) for i, ref in enumerate(refs[:limit])]
    return [*blocks, bk.actions(row, block_id=ids.RC_CALL_BLOCK)]
