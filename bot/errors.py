"""Typed domain errors. Their message is safe to show to the user (never PHI)."""

from __future__ import annotations


class DomainError(Exception):
    """A rule said no. `str(err)` is a short, user-facing sentence saying what to do next."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAllowed(DomainError):
    pass


class UnknownStudy(DomainError):
    pass


class UnknownCandidate(DomainError):
    pass


class IllegalTransition(DomainError):
    pass


class AlreadyDecided(DomainError):
    pass


class InvalidInput(DomainError):
    """Bad input; `field` names the modal block or CLI field when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BadPayload(DomainError):
    """A button value, private_metadata, form state or command that our own views never produce:
    out of date, damaged or forged. `where` says where the user can open it again; `block` is the
    form block to show the refusal under, when known. The message never repeats the payload."""

    def __init__(self, where: str = "where you found it", *, form: bool = False,
                 block: str | None = None, detail: str = "") -> None:
        thing = "form" if form else "button"
        super().__init__(f"That {thing} is out of date or damaged — open it again from {where}.")
        self.where = where
        self.form = form
        self.block = block
        self.detail = detail  # field names only, for the log line; never values
