"""CSV exports for sponsors and QA: calls, referrals, callbacks, audit of one study.

Rows are streamed from the database. Without `include_phi` only ref codes identify patients;
with it, name/phone/dob/notes are decrypted and an `export_phi` audit entry records who
exported what and why: the stated reason, the operating-system account and the host (counts
only, no patient data). Cells a spreadsheet would run as a formula are neutralised
(bot/csv_cells.py). The file is created readable by its owner only (0600) and appears only
when complete; an existing file is replaced only when asked to.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.context import AppContext
from bot.csv_cells import SafeWriter
from bot.errors import DomainError, UnknownStudy
from bot.kpis import Period, range_period
from bot.operator import operator_actor, os_user
from bot.prescreen.outcomes import OUTCOMES
from storage import audit
from storage.crypto import PHICipher
from storage.repositories import exports as repo
from storage.repositories.studies import get_study

KINDS = ("calls", "referrals", "callbacks", "audit")
MAX_DAYS = 3660
MAX_REASON = 200


@dataclass(frozen=True)
class Kind:
    columns: tuple[str, ...]
    phi_columns: tuple[str, ...]
    rows: Callable[[Session, int, dt.datetime, dt.datetime], Iterator[Any]]
    render: Callable[[Any, str, int], dict[str, Any]]  # row, study tz, escalate minutes
    phi: Callable[[Any, PHICipher], dict[str, Any]]


def _iso(t: dt.datetime | None) -> str:
    return "" if t is None else t.astimezone(dt.UTC).isoformat(timespec="seconds")


def _local(t: dt.datetime | None, tz: str) -> str:
    return "" if t is None else t.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def _call(r: Any, tz: str, _grace: int) -> dict[str, Any]:
    o = OUTCOMES.get(r.outcome)
    return {"call_id": r.id, "called_at_utc": _iso(r.called_at), "called_at_local": _local(r.called_at, tz),
            "ref_code": r.ref_code, "coordinator": r.coordinator, "attempt": r.attempt_no,
            "outcome": r.outcome, "reached": "" if o is None else str(o.reached).lower(),
            "eligible": "" if r.eligible is None else str(r.eligible).lower(),
            "failed_criteria": ";".join(r.failed_criteria or []), "source": r.source or ""}


def _referral(r: Any, tz: str, _grace: int) -> dict[str, Any]:
    return {"at_utc": _iso(r.at), "at_local": _local(r.at, tz), "referral_id": r.referral_id,
            "ref_code": r.ref_code, "site": r.site or "", "from_state": r.from_state or "",
            "to_state": r.to_state, "actor": r.actor, "reason": r.reason or "",
            "current_state": r.current_state, "referred_at_utc": _iso(r.referred_at),
            "visit_date": r.visit_date.isoformat() if r.visit_date else "", "source": r.source or ""}


def _callback(r: Any, tz: str, grace: int) -> dict[str, Any]:
    settled = r.status in ("done", "missed")
    on_time = (settled and r.completed_at is not None
               and r.completed_at <= r.due_at + dt.timedelta(minutes=grace))
    return {"callback_id": r.id, "due_at_utc": _iso(r.due_at), "due_at_local": _local(r.due_at, tz),
            "ref_code": r.ref_code, "owner": r.owner, "kind": r.kind, "status": r.status,
            "completed_at_utc": _iso(r.completed_at), "escalated_at_utc": _iso(r.escalated_at),
            "on_time": str(on_time).lower() if settled else ""}


def _audit(r: Any, tz: str, _grace: int) -> dict[str, Any]:
    def js(v: Any) -> str:
        return "" if v is None else json.dumps(v, sort_keys=True, default=str)

    return {"at_utc": _iso(r.at), "actor": r.actor, "action": r.action, "entity": r.entity,
            "entity_id": r.entity_id, "reason": r.reason or "", "before": js(r.before),
            "after": js(r.after), "seq": r.seq, "prev_hash": r.prev_hash, "hash": r.hash}


def _person(r: Any, c: PHICipher) -> dict[str, Any]:
    return {"name": c.decrypt(r.name_enc), "phone": c.decrypt(r.phone_enc),
            "dob": c.decrypt_optional(r.dob_enc) or ""}


KIND_TABLE: dict[str, Kind] = {
    "calls": Kind(
        ("call_id", "called_at_utc", "called_at_local", "ref_code", "coordinator", "attempt",
         "outcome", "reached", "eligible", "failed_criteria", "source"),
        ("name", "phone", "dob", "notes"), repo.calls, _call,
        lambda r, c: {**_person(r, c), "notes": c.decrypt_optional(r.notes_enc) or ""}),
    "referrals": Kind(
        ("at_utc", "at_local", "referral_id", "ref_code", "site", "from_state", "to_state", "actor",
         "reason", "current_state", "referred_at_utc", "visit_date", "source"),
        ("name", "phone", "dob", "notes"), repo.referral_events, _referral,
        lambda r, c: {**_person(r, c), "notes": c.decrypt_optional(r.reason_note_enc) or ""}),
    "callbacks": Kind(
        ("callback_id", "due_at_utc", "due_at_local", "ref_code", "owner", "kind", "status",
         "completed_at_utc", "escalated_at_utc", "on_time"),
        ("name", "phone"), repo.callbacks, _callback,
        lambda r, c: {"name": c.decrypt(r.name_enc), "phone": c.decrypt(r.phone_enc)}),
    "audit": Kind(
        ("at_utc", "actor", "action", "entity", "entity_id", "reason", "before", "after", "seq",
         "prev_hash", "hash"),
        (), repo.audit, _audit, lambda r, c: {}),
}


def columns(kind: str, include_phi: bool) -> list[str]:
    k = KIND_TABLE[kind]
    return [*k.columns, *(k.phi_columns if include_phi else ())]


def parse_dates(date_from: str, date_to: str) -> tuple[dt.date, dt.date]:
    try:
        a, b = dt.date.fromisoformat(date_from), dt.date.fromisoformat(date_to)
    except ValueError as exc:
        raise DomainError(f"dates must be YYYY-MM-DD (got --from {date_from} --to {date_to})") from exc
    if b < a:
        raise DomainError(f"--to {b} is before --from {a}")
    if (b - a).days > MAX_DAYS:
        raise DomainError(f"at most {MAX_DAYS} days per export")
    return a, b


def phi_reason(include_phi: bool, raw: str | None) -> str | None:
    """The reason an export gives: required (and cleaned) with patient identity, refused
    without it, where nothing would record it."""
    if include_phi:
        return clean_reason(raw)
    if raw is not None:
        raise DomainError("--reason is recorded only for --include-phi exports; drop it or add "
                          "--include-phi")
    return None


def clean_reason(raw: str | None) -> str:
    """Why patient identity is exported, on one line; DomainError when missing or too long."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in raw or "").split())
    if not text:
        raise DomainError('--include-phi needs --reason "why", e.g. --reason "sponsor audit, '
                          'ticket 123" (kept in the audit trail; no patient names)')
    if len(text) > MAX_REASON:
        raise DomainError(f"--reason is {len(text)} characters; keep it under {MAX_REASON} "
                          "(a ticket number or a short sentence)")
    return text


@dataclass(frozen=True)
class ExportResult:
    kind: str
    study_key: str
    period: Period
    rows: int
    path: Path
    include_phi: bool


class ExportFileError(DomainError):
    """The output file cannot be created or already exists."""


def _exists(out: Path) -> ExportFileError:
    return ExportFileError(f"{out} already exists; choose another --out, or add --force to "
                           "replace it")


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Give the finished temporary file its name; without `overwrite` never replace a file."""
    try:
        if overwrite:
            os.replace(tmp, out)  # a new file: the old one's permissions do not carry over
        else:
            try:
                os.link(tmp, out)  # fails if `out` exists, even if it appeared a moment ago
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                if out.exists() or out.is_symlink():  # no hard links here (some shares)
                    raise _exists(out) from None
                os.replace(tmp, out)
    except FileExistsError:
        raise _exists(out) from None
    except IsADirectoryError:
        raise ExportFileError(f"{out} is a folder; give a file name to --out") from None
    except OSError as exc:
        raise ExportFileError(f"cannot write {out} ({exc.strerror})") from None


def export_csv(ctx: AppContext, kind: str, study_key: str, date_from: dt.date, date_to: dt.date,
               out: Path, *, include_phi: bool = False, reason: str | None = None,
               overwrite: bool = False, actor: str | None = None) -> ExportResult:
    """Write one CSV (study-local days date_from..date_to). The file appears only when complete,
    mode 0600; a PHI export is audited (and committed) before its file appears."""
    if kind not in KIND_TABLE:
        raise DomainError(f"unknown export {kind!r}; choose one of {', '.join(KINDS)}")
    why = clean_reason(reason) if include_phi else None
    if not overwrite and (out.exists() or out.is_symlink()):
        raise _exists(out)
    spec = KIND_TABLE[kind]
    cols = columns(kind, include_phi)
    n = 0
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=out.name + ".", suffix=".partial", dir=out.parent)
    except OSError as exc:
        raise ExportFileError(f"cannot write in {out.parent} ({exc.strerror})") from None
    tmp = Path(tmp_name)  # mkstemp: created exclusively, mode 0600
    fh = open(fd, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        with ctx.db.session() as s:
            study = get_study(s, study_key)
            if study is None:
                raise UnknownStudy(f"no study {study_key!r}")
            period = range_period(date_from, date_to, study.timezone)
            tz, grace = study.timezone, ctx.settings.callback_escalate_minutes
            with fh:
                w = SafeWriter(fh)
                w.writerow(cols)
                for row in spec.rows(s, study.id, period.start, period.end):
                    rec = spec.render(row, tz, grace)
                    if include_phi:
                        rec.update(spec.phi(row, ctx.cipher))
                    w.writerecord(cols, rec)
                    n += 1
            if include_phi:
                audit.record(s, actor=actor or operator_actor(), action="export_phi",
                             entity="export", entity_id=study.key, reason=why,
                             after={"kind": kind, "from": str(date_from), "to": str(date_to),
                                    "rows": n, "phi_columns": list(spec.phi_columns),
                                    "file": out.name, "os_user": os_user(), "uid": os.getuid(),
                                    "host": socket.gethostname()})
        _publish(tmp, out, overwrite)
    finally:
        fh.close()
        tmp.unlink(missing_ok=True)
    return ExportResult(kind, study.key, period, n, out, include_phi)
