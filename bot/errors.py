"""Typed domain errors. Their message is safe to show to the user (never PHI)."""

from __future__ import annotations


class DomainError(Exception):
    """A rule said no. `str(err)` is a short, user-facing sentence saying what to do next."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAMember(DomainError):
    pass


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


class OutsideCallingWindow(DomainError):
    pass


class DoNotCall(DomainError):
    pass


class InvalidInput(DomainError):
    """Bad input; `field` names the modal block or CLI field when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CalendarUnavailable(DomainError):
    pass
