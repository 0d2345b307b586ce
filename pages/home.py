"""The secure page's home: the member's studies, a search box and "Add a candidate"."""

from __future__ import annotations

from bot.candidates.home import my_studies
from pages.framework import PageRequest, Pages, Response


def register(pages: Pages) -> None:
    @pages.route("GET", "/")
    def home(req: PageRequest) -> Response:
        assert req.user_id is not None
        studies = [s for s in my_studies(req.ctx, req.user_id) if s.may_view]
        return pages.render(req, "home.html", studies=studies)
