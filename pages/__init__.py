"""The secure page: server-rendered HTML under /secure, signed in with Slack.

A sibling of handlers/ (thin: parse, call a use case in bot/, render). It never imports the
composition root: app/runtime.py builds :class:`pages.framework.Pages`, registers the feature
modules and mounts ``Pages.handle`` under /secure. See pages/framework.py for the contract."""

from __future__ import annotations

from bot.context import AppContext
from pages import approvals, candidates, home, signin, telephony
from pages.framework import Pages, RawRequest, Response

__all__ = ["Pages", "RawRequest", "Response", "build_pages"]


def build_pages(ctx: AppContext) -> Pages:
    """The secure page with every feature registered."""
    pages = Pages(ctx)
    for module in (signin, home, candidates, approvals, telephony):
        module.register(pages)
    return pages
