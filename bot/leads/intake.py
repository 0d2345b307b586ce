"""Lead intake: a CSV file of leads (or one inbound lead from the modal) becomes candidates in
status `needs_call`, unowned, with their source.

A file is read twice, streaming, never held in memory:

1. pass 1 checks every row (no database writes) and counts the problems;
2. pass 2, only when the file is acceptable (no rejected rows, or `skip_invalid`), checks each row
   again, finds duplicates (same study and phone: in the database or earlier in the file) a batch
   at a time, and inserts the new candidates in ONE transaction. Any failure rolls everything
   back; a dry run rolls back at the end.

Reports carry line numbers and reasons, never names or phone numbers.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import re
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import regions
from bot.access import Action, require_role, require_somewhere
from bot.candidate_fields import MAX_NAME, age_on
from bot.context import AppContext
from bot.csv_cells import SafeWriter
from bot.errors import DomainError, NotAllowed
from bot.forms import SOMEONE_ELSES_FORM, FormErrors
from bot.phones import normalise_phone
from bot.studies.lookup import study_or_error
from storage import audit
from storage.crypto import PHICipher
from storage.models import Study
from storage.repositories import candidates as cand_repo
from storage.repositories import requests as req_repo
from storage.repositories import studies as study_repo
from storage.vocabulary import LEAD_FIELDS

REQUIRED_COLUMNS = ("name", "phone")
SOURCE_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
OTHER_SOURCE = "other"
BATCH = 500  # rows per INSERT; memory is about 5 kB per row of a batch
KEEP_PROBLEMS = 1000  # kept in memory for the report; all of them go to `on_problem`
YES = frozenset({"yes", "y", "true", "t", "1", "x", "agreed", "opt-in", "opted in"})
NO = frozenset({"no", "n", "false", "f", "0", "declined", "opt-out", "opted out"})
ZIP = re.compile(r"^(\d{3,5})(?:-\d{4})?$")
US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


class LeadFileError(DomainError):
    """The whole file (or the command) is unusable: unknown study or source, missing columns…"""


@dataclass(frozen=True)
class Problem:
    line: int
    kind: str  # rejected | duplicate
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.reason}"


@dataclass
class Lead:
    """One validated lead (PHI: never logged, never put in a report)."""

    line: int
    name: str
    phone: str  # E.164
    dob: dt.date | None
    region: str | None
    timezone: str
    timezone_assumed: bool
    consent: bool
    consent_to_text: bool = False  # the optional consent_to_text column (yes/no; empty: no)


@dataclass
class ImportResult:
    study_key: str
    source: str
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    rejected: int = 0
    timezone_assumed: int = 0
    written: bool = False
    dry_run: bool = False
    first_ref: str | None = None
    last_ref: str | None = None
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return f"created {self.created}, duplicates {self.duplicates}, rejected {self.rejected}"


# ----- study configuration -----

@dataclass(frozen=True)
class SourceConfig:
    slug: str
    label: str
    columns: dict[str, str]  # field → header, case-insensitive


def lead_sources(study: Study) -> dict[str, dict[str, Any]]:
    raw = (study.options or {}).get("lead_sources") or {}
    return raw if isinstance(raw, dict) else {}


def source_config(study: Study, source: str, *, allow_other: bool = False) -> SourceConfig:
    """The study's source `source`. A study with `lead_sources` accepts only those (and `other`
    from the modal); a study without any accepts any slug."""
    slug = (source or "").strip()
    known = lead_sources(study)
    if known:
        if slug in known:
            cfg = known[slug] or {}
            cols = {k: str(v) for k, v in (cfg.get("columns") or {}).items()}
            return SourceConfig(slug, str(cfg.get("label") or slug), cols)
        if allow_other and slug == OTHER_SOURCE:
            return SourceConfig(slug, "Other", {})
        raise LeadFileError(f"{study.key} has no lead source {slug!r}; use one of "
                            f"{', '.join(sorted(known))} (lead_sources in the studies file).")
    if not SOURCE_SLUG.match(slug):
        raise LeadFileError("The source must be a short slug like web-ads "
                            "(lowercase letters, digits, - and _).")
    return SourceConfig(slug, slug, {})


# ----- one row -----

def parse_dob(raw: str, today: dt.date) -> dt.date:
    """YYYY-MM-DD or MM/DD/YYYY; ValueError with a short reason."""
    m = US_DATE.match(raw)
    try:
        day = (dt.date(int(m.group(3)), int(m.group(1)), int(m.group(2))) if m
               else dt.date.fromisoformat(raw))
    except ValueError:
        raise ValueError("date of birth is not a date (use YYYY-MM-DD or MM/DD/YYYY)") from None
    if day > today:
        raise ValueError("date of birth is in the future")
    if age_on(day, today) > 120:
        raise ValueError("date of birth is over 120 years ago")
    return day


def parse_consent(raw: str) -> bool:
    value = raw.strip().casefold()
    if not value or value in YES:
        return True  # leads from pre-screeners, ads and referrals agreed to be contacted
    if value in NO:
        raise ValueError("consent is 'no': this lead may not be called")
    raise ValueError("consent must be yes or no")


def parse_consent_to_text(raw: str) -> bool:
    """The optional consent_to_text column: yes → True; empty or no → False (texts need a yes)."""
    value = raw.strip().casefold()
    if not value or value in NO:
        return False
    if value in YES:
        return True
    raise ValueError("consent_to_text must be yes or no")


def validate_lead(values: dict[str, str], *, line: int, today: dt.date, study_tz: str,
                  known_phone: str | None = None) -> tuple[Lead | None, str | None]:
    """(lead, None) or (None, reason). `values` maps LEAD_FIELDS to raw text. `known_phone` is this
    row's E.164 number from an earlier pass (parsing is the costly step); it is used only when
    the raw digits still end with its national number."""
    name = " ".join(values.get("name", "").split())
    if not name:
        return None, "name missing"
    if len(name) > MAX_NAME:
        return None, f"name longer than {MAX_NAME} characters"
    raw_phone = values.get("phone", "").strip()
    if not raw_phone:
        return None, "phone missing"
    if known_phone and "".join(ch for ch in raw_phone if ch.isdigit()).endswith(known_phone[2:]):
        phone = known_phone
    else:
        try:
            phone = normalise_phone(raw_phone)
        except ValueError:
            return None, "phone not valid"
    dob = None
    raw_dob = values.get("dob", "").strip()
    if raw_dob:
        try:
            dob = parse_dob(raw_dob, today)
        except ValueError as exc:
            return None, str(exc)
    raw_state = values.get("state", "").strip()
    state = regions.state_code(raw_state)
    if raw_state and state is None:
        return None, "state is not a US state or territory"
    zip5 = None
    raw_zip = values.get("zip", "").strip()
    if raw_zip:
        m = ZIP.match(raw_zip)
        if not m:
            return None, "ZIP is not a 5-digit ZIP code"
        zip5 = m.group(1).zfill(5)  # spreadsheets drop leading zeros
    if state is None and zip5:
        state = regions.state_for_zip(zip5)
    tz = regions.timezone_for(state, zip5)
    try:
        consent = parse_consent(values.get("consent", ""))
    except ValueError as exc:
        return None, str(exc)
    try:
        consent_to_text = parse_consent_to_text(values.get("consent_to_text", ""))
    except ValueError as exc:
        return None, str(exc)
    return Lead(line=line, name=name, phone=phone, dob=dob, region=state,
                timezone=tz or study_tz, timezone_assumed=tz is None, consent=consent,
                consent_to_text=consent_to_text), None


# ----- reading the file -----

def _header_map(header: list[str], cfg: SourceConfig) -> dict[str, int]:
    """field → column index. Raises LeadFileError naming what is missing."""
    position = {h.strip().casefold(): i for i, h in reversed(list(enumerate(header)))}
    out: dict[str, int] = {}
    for fld in LEAD_FIELDS:
        wanted = cfg.columns.get(fld, fld)
        idx = position.get(wanted.strip().casefold())
        if idx is not None:
            out[fld] = idx
        elif fld in REQUIRED_COLUMNS:
            how = (f"source {cfg.slug} maps {fld} to {wanted!r}" if fld in cfg.columns
                   else "headers are matched without regard to case")
            raise LeadFileError(f"The file has no {wanted!r} column ({how}). "
                                f"Line 1 must be the header row.")
    return out


ENCODINGS = {"utf-8": "UTF-8", "cp1252": "Windows-1252"}  # --encoding → name in messages
SAVE_AS = 'Save it as CSV UTF-8 (Excel: File › Save As › "CSV UTF-8 (Comma delimited)")'


def _codec(path: Path, encoding: str) -> str:
    """The codec to read `path` with. A UTF-8 byte-order mark (Excel's CSV UTF-8 writes one)
    is honoured, and skipped, whatever --encoding says."""
    if encoding not in ENCODINGS:
        raise LeadFileError(f"Unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}.")
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return encoding  # the text open below names the problem
    return "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") or encoding == "utf-8" else encoding


def _not_text(path: Path, codec: str, encoding: str) -> LeadFileError:
    """Where the first byte that is not `codec` text is, and what to do about it."""
    what = ENCODINGS.get(encoding, encoding)
    with path.open("rb") as fh:
        head = fh.read(4)
        if head.startswith(b"PK\x03\x04"):
            return LeadFileError(f"{path.name} is an Excel workbook, not a CSV file. {SAVE_AS}.")
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return LeadFileError(f"{path.name} is UTF-16 (Excel's \"Unicode Text\"), not CSV. "
                                 f"{SAVE_AS}.")
        fh.seek(0)
        offset = 0
        for number, raw in enumerate(fh, start=1):  # UTF-8 and cp1252 never hide a \n in a char
            try:
                raw.decode(codec)
            except UnicodeDecodeError as exc:
                column = len(raw[:exc.start].decode(codec, errors="replace")) + 1
                where = (f"line {number}, column {column} (byte {offset + exc.start + 1} of the "
                         f"file, 0x{raw[exc.start]:02X})")
                break
            offset += len(raw)
        else:
            where = "somewhere"
    fix = (f'{SAVE_AS}, or, if it was saved as plain "CSV" on Windows, run again with '
           "--encoding cp1252" if encoding == "utf-8" else f"{SAVE_AS} and run without --encoding")
    return LeadFileError(f"{path.name} is not {what} text: {where}. {fix}.")


def _rows(path: Path, cfg: SourceConfig, encoding: str = "utf-8",
          ) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line of the record, field → raw text), streaming; blank lines are skipped."""
    codec = _codec(path, encoding)
    try:
        fh = path.open(encoding=codec, newline="")
    except FileNotFoundError:
        raise LeadFileError(f"{path.name}: file not found.") from None
    except OSError as exc:
        raise LeadFileError(f"{path.name}: cannot read it ({exc.strerror}).") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if not header:
                raise LeadFileError(f"{path.name} is empty: line 1 must be the header row.")
            cols = _header_map(header, cfg)
            last = reader.line_num
            for record in reader:
                start, last = last + 1, reader.line_num
                if not any(cell.strip() for cell in record):
                    continue
                yield start, {f: (record[i] if i < len(record) else "") for f, i in cols.items()}
        except UnicodeDecodeError:
            raise _not_text(path, codec, encoding) from None
        except csv.Error as exc:
            raise LeadFileError(f"{path.name} is not a readable CSV near line "
                                f"{reader.line_num}: {exc}.") from None


# ----- import -----

def import_leads(ctx: AppContext, path: Path, *, study_key: str, source: str,
                 skip_invalid: bool = False, dry_run: bool = False, actor: str = "cli",
                 on_problem: Callable[[Problem], None] | None = None,
                 batch_size: int = BATCH, encoding: str = "utf-8") -> ImportResult:
    """Import a leads CSV (`encoding`: utf-8 or cp1252). Raises LeadFileError (nothing written)
    when the file is unusable. Rejected rows, or no rows at all, make the result
    `written=False` unless `skip_invalid`."""
    started = time.perf_counter()
    with ctx.db.session() as session:
        study = study_repo.get_study(session, study_key.upper())
        if study is None:
            raise LeadFileError(f"There is no study {study_key!r}. "
                                "`prescreen-bot studies list` shows them.")
        cfg = source_config(study, source)
        study_id, key, study_tz = study.id, study.key, study.timezone
    today = ctx.clock.now().astimezone(ZoneInfo(study_tz)).date()
    result = ImportResult(study_key=key, source=cfg.slug, dry_run=dry_run)

    def problem(p: Problem) -> None:
        if p.kind == "rejected":
            result.rejected += 1
        else:
            result.duplicates += 1
        if len(result.problems) < KEEP_PROBLEMS:
            result.problems.append(p)
        if on_problem is not None:
            on_problem(p)

    # pass 1: check every row, write nothing; keep only each row's phone (8 bytes) for pass 2
    phones = array("q")
    for line, values in _rows(path, cfg, encoding):
        result.rows += 1
        lead, reason = validate_lead(values, line=line, today=today, study_tz=study_tz)
        if lead is None:
            problem(Problem(line, "rejected", reason or "not valid"))
        phones.append(int(lead.phone[1:]) if lead is not None else 0)
    if (result.rejected and not skip_invalid) or not result.rows:
        result.seconds = time.perf_counter() - started
        return result

    # pass 2: dedupe and insert, one transaction
    writer = _Writer(ctx, study_id, key, cfg.slug, problem, result)
    try:
        with ctx.db.session() as session:
            cand_repo.lock_study(session, study_id)
            cand_repo.prefer_indexes(session)
            batch: list[Lead] = []
            for i, (line, values) in enumerate(_rows(path, cfg, encoding)):
                if i < len(phones) and phones[i] == 0:
                    continue  # rejected in pass 1
                lead = None
                if i < len(phones):
                    lead, _reason = validate_lead(values, line=line, today=today,
                                                  study_tz=study_tz, known_phone=f"+{phones[i]}")
                if lead is None:
                    raise LeadFileError(f"{path.name} changed while it was being imported; "
                                        "nothing was changed. Run the import again.")
                batch.append(lead)
                if len(batch) >= batch_size:
                    writer.write(session, batch)
                    batch = []
            if batch:
                writer.write(session, batch)
            if dry_run:
                session.rollback()  # nothing of this import is kept
            else:
                audit.record(session, actor=actor, action="leads.imported", entity="study",
                             entity_id=key, after={
                                 "file": path.name, "source": cfg.slug, "rows": result.rows,
                                 "created": result.created, "duplicates": result.duplicates,
                                 "rejected": result.rejected, "first_ref": result.first_ref,
                                 "last_ref": result.last_ref,
                                 "timezone_assumed": result.timezone_assumed})
        result.written = not dry_run
    except BaseException:
        result.created, result.first_ref, result.last_ref = 0, None, None
        raise
    result.seconds = time.perf_counter() - started
    return result


class _Writer:
    """Pass 2 state: which line each candidate created by this import came from (4 bytes a
    row), to name the earlier line when a later row of the file has the same phone."""

    def __init__(self, ctx: AppContext, study_id: int, study_key: str, source: str,
                 problem: Callable[[Problem], None], result: ImportResult) -> None:
        self.ctx, self.study_id, self.study_key, self.source = ctx, study_id, study_key, source
        self.problem, self.result = problem, result
        self.now = ctx.clock.now()
        self.batches: list[tuple[int, int]] = []  # (first seq, index of its first line)
        self.lines = array("I")  # source line of each candidate created, in seq order

    def _line_of(self, seq: int) -> int | None:
        i = bisect.bisect_right(self.batches, (seq, 1 << 62)) - 1
        if i < 0:
            return None
        first, start = self.batches[i]
        end = self.batches[i + 1][1] if i + 1 < len(self.batches) else len(self.lines)
        pos = start + seq - first
        return self.lines[pos] if pos < end else None

    def write(self, session: Session, leads: list[Lead]) -> None:
        c = self.ctx.cipher
        phone_keys = [c.indexes(lead.phone) for lead in leads]
        wanted = [i for keys in phone_keys for i in keys]
        found = cand_repo.phone_matches(session, self.study_id, wanted)
        refused = cand_repo.do_not_call_phones(session, wanted)
        in_batch: dict[str, tuple[int, str | None]] = {}
        rows: list[dict[str, Any]] = []
        lines: list[int] = []
        for lead, keys in zip(leads, phone_keys, strict=True):
            match = next((found[k] for k in keys if k in found), None)
            dnc = next((refused[k] for k in keys if k in refused), None)
            if dnc is not None:  # a person who asked not to be called, in any study
                self.problem(Problem(lead.line, "duplicate",
                                     f"same phone as {dnc}, who asked not to be called"))
                continue
            dedupe = (c.index(self.study_key, lead.phone, lead.dob.isoformat())
                      if lead.dob else None)
            if match is not None:
                ref, seq, other_dedupe = match
                same_dob = bool(lead.dob) and other_dedupe in c.indexes(
                    self.study_key, lead.phone, lead.dob.isoformat() if lead.dob else "")
                earlier = self._line_of(seq)
                where = f"line {earlier}" if earlier is not None else ref
                what = "same phone and date of birth" if same_dob else "same phone"
                self.problem(Problem(lead.line, "duplicate", f"{what} as {where}"))
                continue
            if keys[0] in in_batch:
                earlier, earlier_dedupe = in_batch[keys[0]]
                what = "same phone and date of birth" if dedupe and dedupe == earlier_dedupe \
                    else "same phone"
                self.problem(Problem(lead.line, "duplicate", f"{what} as line {earlier}"))
                continue
            in_batch[keys[0]] = (lead.line, dedupe)
            rows.append(self._row(lead, keys[0], dedupe))
            lines.append(lead.line)
            if lead.timezone_assumed:
                self.result.timezone_assumed += 1
        if not rows:
            return
        first = cand_repo.insert_many(session, self.study_id, self.study_key, rows)
        self.batches.append((first, len(self.lines)))
        self.lines.extend(lines)
        self.result.created += len(rows)
        self.result.first_ref = self.result.first_ref or cand_repo.ref_code(self.study_key, first)
        self.result.last_ref = cand_repo.ref_code(self.study_key, first + len(rows) - 1)

    def _row(self, lead: Lead, phone_index: str, dedupe: str | None) -> dict[str, Any]:
        return lead_row(self.ctx.cipher, lead, source=self.source, now=self.now,
                        phone_index=phone_index, dedupe_index=dedupe)


def lead_row(cipher: PHICipher, lead: Lead, *, source: str, now: dt.datetime, phone_index: str,
             dedupe_index: str | None) -> dict[str, Any]:
    """The candidates row of a new lead: PHI encrypted, blind indexes as the log-call form
    computes them, needs_call, no owner (the assignment job picks it up)."""
    return {
        "name_enc": cipher.encrypt(lead.name),
        "phone_enc": cipher.encrypt(lead.phone),
        "dob_enc": cipher.encrypt(lead.dob.isoformat()) if lead.dob else None,
        "phone_index": phone_index,
        "name_index": cipher.index(lead.name),
        "dedupe_index": dedupe_index,
        "region": lead.region,
        "timezone": lead.timezone,
        "consent_to_contact": lead.consent,
        "consent_to_text": lead.consent_to_text,
        "do_not_call": False,
        "status": "needs_call",
        "attempts": 0,
        "source": source,
        "owner_id": None,
        "created_at": now,
        "updated_at": now,
    }


# ----- one inbound lead (the /prescreen lead modal) -----

DO_NOT_CALL_TEXT = "This number asked not to be called. It can't be added."


@dataclass
class InboundLead:
    study_key: str
    user_id: str
    name: str
    phone: str
    dob: dt.date | None
    state: str | None
    source: str | None
    consent: bool
    idempotency_key: str | None = None
    via: str = "inbound lead"  # where it was entered, for the audit trail
    dob_text: str = ""  # the date of birth as typed, when `dob` is None (YYYY-MM-DD, MM/DD/YYYY)
    consent_to_text: bool = False  # agreed to receive texts about this study


@dataclass
class LeadAdded:
    ref: str
    study_key: str
    source: str
    timezone: str
    timezone_assumed: bool
    replay: bool = False

    @property
    def summary(self) -> str:
        return f"{self.ref} added · needs first call"


@dataclass
class LeadForm:
    """What the add-lead form offers: the studies the user may add leads to, and the one to
    preselect (None: the user picks)."""

    studies: list[Study]
    study_key: str | None


def lead_form(ctx: AppContext, user_id: str, wanted: str | None) -> LeadForm:
    """`/prescreen lead [STUDY]`: a named study must exist and allow the user to add leads;
    without one, some study must. NotAllowed/UnknownStudy otherwise."""
    with ctx.db.session() as session:
        if wanted:
            require_role(session, user_id, study_or_error(session, wanted, user_id),
                         Action.ADD_LEAD)
        studies = require_somewhere(session, user_id, Action.ADD_LEAD)
    key = wanted.upper() if wanted else (studies[0].key if len(studies) == 1 else None)
    return LeadForm(studies, key)


def add_lead(ctx: AppContext, inp: InboundLead) -> LeadAdded:
    """Validate and store one inbound lead. Raises FormErrors keyed name/phone/dob/state/source/
    consent (nothing stored), or a DomainError. A duplicate names only the existing ref code."""
    if not inp.study_key:
        raise DomainError("Pick a study.")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        # who may add leads here is checked before anything is answered, replays included
        study = study_or_error(session, inp.study_key, inp.user_id)
        require_role(session, inp.user_id, study, Action.ADD_LEAD)
        if inp.idempotency_key:
            done = req_repo.result_of(session, inp.idempotency_key)
            if done is not None:
                if done.get("by") != inp.user_id or done.get("study") != study.key:
                    raise NotAllowed(SOMEONE_ELSES_FORM)
                return LeadAdded(ref=done["ref"], study_key=study.key, source=done["source"],
                                 timezone=done["tz"], timezone_assumed=False, replay=True)
        errors: dict[str, str] = {}
        try:
            cfg = source_config(study, inp.source or "", allow_other=True)
        except LeadFileError:
            errors["source"] = "Pick where the lead came from."
            cfg = SourceConfig(OTHER_SOURCE, "Other", {})
        today = now.astimezone(ZoneInfo(study.timezone)).date()
        lead, field_errors = form_lead(
            {"name": inp.name or "", "phone": inp.phone or "",
             "dob": inp.dob.isoformat() if inp.dob else inp.dob_text.strip(),
             "state": inp.state or ""}, today=today, study_tz=study.timezone)
        errors.update(field_errors)
        if not inp.consent:
            errors["consent"] = ("Add only leads who agreed to be contacted about this study. "
                                 "Tick the box once they have.")
        duplicate_of: str | None = None
        if lead is not None and "phone" not in errors:
            cand_repo.lock_study(session, study.id)  # no duplicate slips in until we commit
            c = ctx.cipher
            found = cand_repo.phone_matches(session, study.id, c.indexes(lead.phone))
            # Do-not-call holds across studies, so the check looks at every study; the answer
            # names none of them (no reference code, no study), and the check is audited.
            refused = bool(cand_repo.do_not_call_phones(session, c.indexes(lead.phone)))
            audit.record(session, actor=inp.user_id, action="lead.do_not_call_checked",
                         entity="study", entity_id=study.key,
                         after={"outcome": "do_not_call" if refused else "clear"})
            if refused:
                errors["phone"] = DO_NOT_CALL_TEXT
            elif found:
                ref = duplicate_of = min(found.values(), key=lambda m: m[1])[0]
                errors["phone"] = (f"Already a candidate: {ref}. Use `/prescreen status {ref}` "
                                   "or log a call for it.")
        if errors:
            # nothing but the audit of the do-not-call check has been written: keep that
            refusal = FormErrors(errors, duplicate_of=duplicate_of)
            session.commit()
            raise refusal
        assert lead is not None
        lead.consent_to_text = inp.consent_to_text
        c = ctx.cipher
        dedupe = c.index(study.key, lead.phone, lead.dob.isoformat()) if lead.dob else None
        cand = cand_repo.create(session, study.id, study.key, lead_row(
            c, lead, source=cfg.slug, now=now, phone_index=c.index(lead.phone),
            dedupe_index=dedupe))
        audit.record(session, actor=inp.user_id, action="candidate.created", entity="candidate",
                     entity_id=cand.ref_code, after={
                         "status": cand.status, "source": cfg.slug, "region": cand.region,
                         "timezone": cand.timezone, "consent": cand.consent_to_contact,
                         "consent_to_text": cand.consent_to_text, "via": inp.via})
        if inp.idempotency_key:
            req_repo.claim(session, inp.idempotency_key,
                           {"ref": cand.ref_code, "source": cfg.slug, "tz": cand.timezone,
                            "by": inp.user_id, "study": study.key})
        return LeadAdded(ref=cand.ref_code, study_key=study.key, source=cfg.slug,
                         timezone=cand.timezone, timezone_assumed=lead.timezone_assumed)


# a value of each form field that passes validate_lead, to look past it for the next problem
_PASSING = {"name": "x", "phone": "+16175550100", "dob": "", "state": ""}


def form_lead(values: dict[str, str], *, today: dt.date,
              study_tz: str) -> tuple[Lead | None, dict[str, str]]:
    """validate_lead for a form: (lead, {}) or (None, field → what to say next to it), every bad
    field at once (validate_lead stops at the first one; a bad field is replaced by a passing
    value and the rest checked again)."""
    values = dict(values)
    errors: dict[str, str] = {}
    for _ in _PASSING:
        lead, reason = validate_lead(values, line=0, today=today, study_tz=study_tz)
        if lead is not None or not reason:
            return (lead if not errors else None), errors
        found = next(f for f in ("name", "phone", "state", "birth", "") if f in reason)
        field_name = {"birth": "dob", "": "phone"}.get(found, found)
        errors[field_name] = FORM_TEXT.get(reason, reason[:1].upper() + reason[1:] + ".")
        values[field_name] = _PASSING[field_name]
    return None, errors


FORM_TEXT = {  # CSV reasons → what the modal says next to the field
    "name missing": "Enter the lead's name.",
    "phone missing": "Enter the lead's phone number.",
    "phone not valid": "That phone number is not valid. Check the digits and area code.",
    "state is not a US state or territory": "Pick a US state or territory.",
}


def write_report(problems: Iterator[Problem] | list[Problem], out: TextIO) -> None:
    w = SafeWriter(out)
    w.writerow(["line", "result", "reason"])
    for p in problems:
        w.writerow([p.line, p.kind, p.reason])
