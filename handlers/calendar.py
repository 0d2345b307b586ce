"""`/prescreen calendar`: my events today and my free slots, from the Outlook cache."""

from __future__ import annotations

from bot.calendar.views import calendar_blocks
from bot.calendar.workflow import my_calendar
from handlers.common import CommandRequest, Subcommand


def _calendar(req: CommandRequest) -> None:
    day = my_calendar(req.ctx, req.user_id, req.ctx.clock.now())
    req.reply("Your calendar today", blocks=calendar_blocks(day))


SUBCOMMANDS = [
    Subcommand("calendar", "/prescreen calendar", "my meetings today (Teams links) and free slots",
               _calendar),
]
