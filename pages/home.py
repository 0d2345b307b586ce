"""The secure page's home: the member's studies, a search box and "Add a candidate"."""

from __future__ import annotations

from bot.access import require_page_access
from pages.framework import PageRequest, Pages, Response


def register(pages: Pages) -> None:
    @pages.route("GET", "/")
    def home(req: PageRequest) -> Response:
        assert req.user_id is not None
        with req.ctx.db.session() as session:
            studies = [(s.key, s.title) for s in require_page_access(session, req.user_id)]
        return pages.render(req, "home.html", studies=studies)
