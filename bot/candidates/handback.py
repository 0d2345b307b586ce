"""Back to Slack after adding a candidate: the log-call modal that sent the coordinator to the
page, re-rendered for the new candidate (reference code only, no identifier)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.context import AppContext
from bot.prescreen.handback import open_handback
from bot.prescreen.queries import log_modal_setup
from bot.prescreen.views import ModalState, log_call_modal


@dataclass(frozen=True)
class ModalUpdate:
    external_id: str  # views.update finds the open modal by it
    view: dict[str, Any]


def handback_update(ctx: AppContext, user_id: str, token: str | None,
                    ref: str) -> ModalUpdate | None:
    """The update for the modal behind `token`, or None when the token is not `user_id`'s
    (forged, damaged, someone else's): then nothing is sent to Slack."""
    handback = open_handback(ctx, user_id, token)
    if handback is None:
        return None
    setup = log_modal_setup(ctx, user_id, ref)
    # the channel the modal was opened from travels in the token: the summary goes there
    state = ModalState(study=setup.study_key, ref=ref, mode="existing", channel=handback.channel)
    view = dict(log_call_modal(setup.studies, state, setup.candidate))
    view["external_id"] = handback.external_id  # kept, so a second update still finds it
    return ModalUpdate(handback.external_id, view)
