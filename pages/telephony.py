"""The secure page's RingCentral pages: Call from the contact card, and a candidate's texts (read
and send). Thin: parse, call a use case in bot/telephony/, render."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.errors import DomainError
from bot.telephony.calls import call_candidate
from bot.telephony.connection import enabled
from bot.telephony.texts import read_texts, send_text
from pages.framework import PageRequest, Pages, Response


def register(pages: Pages) -> None:
    ctx = pages.ctx
    pages.env.globals["rc_enabled"] = lambda: enabled(ctx)

    def texts_page(req: PageRequest, ref: str, *, message: str = "", error: str = "",
                   status: int = 200) -> Response:
        assert req.user_id is not None
        thread = read_texts(req.ctx, req.user_id, ref)
        tz = ZoneInfo(thread.timezone)
        lines = [(t, f"{t.at.astimezone(tz):%a %d %b %H:%M}") for t in thread.lines]
        return pages.render(req, "texts.html", status=status, thread=thread, lines=lines,
                            message=message, error=error)

    @pages.route("GET", "/c/{ref}/texts")
    def texts(req: PageRequest) -> Response:
        return texts_page(req, req.params["ref"])

    @pages.route("POST", "/c/{ref}/texts")
    def send(req: PageRequest) -> Response:
        assert req.user_id is not None
        ref = req.params["ref"]
        try:
            sent = send_text(req.ctx, req.user_id, ref, req.form.get("template", ""))
        except DomainError as exc:
            return texts_page(req, ref, error=exc.message, status=400)
        return texts_page(req, ref, message=sent.message)

    @pages.route("POST", "/c/{ref}/call")
    def call(req: PageRequest) -> Response:
        assert req.user_id is not None
        ref = req.params["ref"]
        try:
            placed = call_candidate(req.ctx, req.user_id, ref)
        except DomainError as exc:
            return pages.render(req, "call_placed.html", status=400, ref=ref.upper(),
                                message=exc.message, ok=False)
        return pages.render(req, "call_placed.html", ref=placed.ref,
                            message=placed.message.removeprefix(":telephone_receiver: "), ok=True)

