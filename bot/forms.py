"""Errors of a submitted form, keyed by field name ("phone", "answer:age", "callback_date"…).
Use cases raise them; the Slack layer maps field names to block ids. Nothing here knows Slack."""

from __future__ import annotations

SOMEONE_ELSES_FORM = "That form was submitted by someone else. Open your own with `/prescreen`."


class FormErrors(Exception):
    """One message per bad field; nothing was stored."""

    def __init__(self, errors: dict[str, str], *, duplicate_of: str | None = None) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors
        self.duplicate_of = duplicate_of  # the reference code a duplicate candidate already has
