"""Studies & members import: validate the whole YAML file first, then write it in one transaction."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy.orm import Session

from bot.phones import normalise_phone
from storage import audit
from storage.db import Database
from storage.repositories import members as members_repo
from storage.repositories import ringcentral as rc_repo
from storage.repositories import studies as repo
from storage.vocabulary import ASSIGNMENT_STRATEGIES, LEAD_FIELDS, WEEKDAYS

STUDY_KEY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
SITE_KEY = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,15}$")
QUESTION_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,30}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
QUESTION_KINDS = ("yes_no", "number", "choice", "date")
ROLES = ("coordinator", "approver", "stakeholder", "admin")
RULE_KEYS = {
    "number": {"min", "max"},
    "yes_no": {"equals"},
    "choice": {"in", "not_in"},
    "date": {"before", "after"},
}


class ImportErrors(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Removal:
    """A role the import takes away (`becomes`: the member's new role in that study, if any)."""

    slack_id: str
    study: str
    role: str
    becomes: str | None = None

    def line(self) -> str:
        change = f" (becomes {self.becomes})" if self.becomes else ""
        return f"{self.slack_id}  {self.study} {self.role}{change}"


@dataclass
class ImportReport:
    studies_created: list[str] = field(default_factory=list)
    studies_updated: list[str] = field(default_factory=list)
    members_created: int = 0
    members_updated: int = 0
    removed: list[Removal] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)  # members absent from the file (--prune)
    skipped_inactive: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        if self.dry_run:
            lines = ["Dry run: the file is valid; nothing was changed."]
            verb, deact = "Would remove", "Would deactivate (absent from the file)"
        else:
            parts = []
            if self.studies_created:
                parts.append(f"created {', '.join(self.studies_created)}")
            if self.studies_updated:
                parts.append(f"updated {', '.join(self.studies_updated)}")
            parts.append(f"members: {self.members_created} new, {self.members_updated} updated")
            lines = ["Studies " + "; ".join(parts)]
            verb, deact = "Removed", "Deactivated (absent from the file)"
        if self.removed:
            lines.append(f"{verb} {len(self.removed)} roles:")
            lines += [f"  {r.line()}" for r in self.removed]
        elif self.dry_run:
            lines.append(f"{verb}: nothing.")
        if self.deactivated:
            lines.append(f"{deact}: {', '.join(self.deactivated)}")
        for sid in self.skipped_inactive:
            lines.append(f"{sid} is deactivated and was left as is. To give them access again: "
                         f"prescreen-bot members reactivate {sid}, then import again.")
        return "\n".join(lines)


def load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportErrors([f"{path}: file not found"]) from None
    except OSError as exc:
        raise ImportErrors([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ImportErrors([f"{path}: not valid YAML{where}"]) from None
    if not isinstance(data, dict) or "studies" not in data:
        raise ImportErrors([f"{path}: expected a mapping with a 'studies:' list"])
    return data


def _is_tz(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def validate(data: dict[str, Any], known_study_keys: set[str]) -> list[str]:
    """Return every problem, each naming the study key (or member) and the field."""
    errors: list[str] = []
    studies = data.get("studies")
    if not isinstance(studies, list) or not studies:
        return ["studies: must be a non-empty list"]
    seen_keys: set[str] = set()
    for i, study in enumerate(studies):
        if not isinstance(study, dict):
            errors.append(f"studies[{i}]: must be a mapping")
            continue
        key = study.get("key")
        label = f"study {key}" if isinstance(key, str) and key else f"studies[{i}]"
        if not isinstance(key, str) or not STUDY_KEY.match(key):
            errors.append(f"{label}: key: must be 2-10 uppercase letters/digits, like ALZ")
        elif key in seen_keys:
            errors.append(f"{label}: key: duplicate study key {key!r}")
        else:
            seen_keys.add(key)
        errors.extend(_validate_study(label, study))
    members = data.get("members", [])
    if members is None:
        members = []
    if not isinstance(members, list):
        errors.append("members: must be a list")
        return errors
    all_keys = seen_keys | known_study_keys
    seen_users: set[str] = set()
    for i, m in enumerate(members):
        if not isinstance(m, dict):
            errors.append(f"members[{i}]: must be a mapping")
            continue
        uid = m.get("slack_id")
        label = f"member {uid}" if isinstance(uid, str) and uid else f"members[{i}]"
        if not isinstance(uid, str) or not USER_ID.match(uid):
            errors.append(f"{label}: slack_id: must be a Slack user id like U0123ABCD")
        elif uid in seen_users:
            errors.append(f"{label}: slack_id: duplicate member")
        else:
            seen_users.add(uid)
        email = m.get("email")
        if email is not None and (not isinstance(email, str) or not EMAIL.match(email)):
            errors.append(f"{label}: email: not an email address")
        mailbox = m.get("mailbox")
        if mailbox is not None and (not isinstance(mailbox, str) or not EMAIL.match(mailbox)):
            errors.append(f"{label}: mailbox: not an email address")
        if not _is_tz(m.get("timezone", "UTC")):
            errors.append(f"{label}: timezone: {m.get('timezone')!r} is not an IANA timezone")
        ext = m.get("ringcentral_extension")
        if ext is not None and not (isinstance(ext, str | int) and not isinstance(ext, bool)
                                    and str(ext).isdigit() and len(str(ext)) <= 20):
            errors.append(f"{label}: ringcentral_extension: an extension number like 101")
        roles = m.get("roles")
        if not isinstance(roles, dict) or not roles:
            errors.append(f"{label}: roles: give at least one, like {{ALZ: coordinator}}")
            continue
        for skey, role in roles.items():
            if skey not in all_keys:
                errors.append(f"{label}: roles.{skey}: unknown study {skey!r}")
            if role not in ROLES:
                errors.append(f"{label}: roles.{skey}: role must be one of {', '.join(ROLES)}")
    return errors


def _validate_study(label: str, s: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for req in ("title", "channel", "timezone"):
        if not s.get(req):
            errors.append(f"{label}: {req}: is required")
    title = s.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > 200):
        errors.append(f"{label}: title: must be text of at most 200 characters")
    channel = s.get("channel")
    if channel and (not isinstance(channel, str) or not CHANNEL_ID.match(channel)):
        errors.append(f"{label}: channel: must be a Slack channel id like C0123ABCD")
    if s.get("timezone") and not _is_tz(s.get("timezone")):
        errors.append(f"{label}: timezone: {s.get('timezone')!r} is not an IANA timezone")
    if "approval_required" in s and not isinstance(s["approval_required"], bool):
        errors.append(f"{label}: approval_required: must be true or false")
    for name, lo, hi in (("max_attempts", 1, 20), ("min_attempt_days", 0, 60)):
        if name in s and (not isinstance(s[name], int) or isinstance(s[name], bool)
                          or not lo <= s[name] <= hi):
            errors.append(f"{label}: {name}: must be a whole number from {lo} to {hi}")
    if "digest_time" in s and not (isinstance(s["digest_time"], str)
                                   and HHMM.match(s["digest_time"])):
        errors.append(f"{label}: digest_time: must be HH:MM in quotes, like \"08:30\"")
    window = s.get("calling_window")
    if window is not None:
        if not isinstance(window, dict) or not all(
            isinstance(window.get(k), str) and HHMM.match(window[k]) for k in ("start", "end")
        ):
            errors.append(f"{label}: calling_window: needs start and end as \"HH:MM\"")
        elif window["start"] >= window["end"]:
            errors.append(f"{label}: calling_window: start must be before end")
    errors.extend(_validate_cadence(label, s.get("cadence")))
    errors.extend(_validate_weekly_update(label, s.get("weekly_update")))
    errors.extend(_validate_slas(label, s.get("slas")))
    errors.extend(_validate_lead_sources(label, s.get("lead_sources")))
    errors.extend(_validate_reject_reasons(label, s.get("reject_reasons")))
    errors.extend(_validate_ringcentral(label, s.get("ringcentral")))
    errors.extend(_validate_approvals(label, s))
    if "assignment" in s and s["assignment"] not in ASSIGNMENT_STRATEGIES:
        errors.append(f"{label}: assignment: must be one of {', '.join(ASSIGNMENT_STRATEGIES)}")
    sites = s.get("sites", [])
    if not isinstance(sites, list):
        errors.append(f"{label}: sites: must be a list")
        sites = []
    site_keys: set[str] = set()
    for j, site in enumerate(sites):
        where = f"{label}: sites[{j}]"
        if not isinstance(site, dict):
            errors.append(f"{where}: must be a mapping")
            continue
        skey = site.get("key")
        if not isinstance(skey, str) or not SITE_KEY.match(skey):
            errors.append(f"{where}.key: must be uppercase letters/digits, like BOS")
        elif skey in site_keys:
            errors.append(f"{where}.key: duplicate site key {skey!r}")
        else:
            site_keys.add(skey)
        if not site.get("name"):
            errors.append(f"{where}.name: is required")
        mailbox = site.get("mailbox")
        if mailbox is not None and (not isinstance(mailbox, str) or not EMAIL.match(mailbox)):
            errors.append(f"{where}.mailbox: not an email address")
        if "timezone" in site and not _is_tz(site["timezone"]):
            errors.append(f"{where}.timezone: {site['timezone']!r} is not an IANA timezone")
        for opt, pattern, example in (("channel", CHANNEL_ID, "C0123ABCD"),
                                      ("liaison", USER_ID, "U0123ABCD")):
            v = site.get(opt)
            if v is not None and (not isinstance(v, str) or not pattern.match(v)):
                errors.append(f"{where}.{opt}: must be a Slack id like {example}")
    questions = s.get("questions", [])
    if not isinstance(questions, list):
        errors.append(f"{label}: questions: must be a list")
        questions = []
    qids: set[str] = set()
    for j, q in enumerate(questions):
        where = f"{label}: questions[{j}]"
        if not isinstance(q, dict):
            errors.append(f"{where}: must be a mapping")
            continue
        qid = q.get("id")
        if isinstance(qid, str):
            where = f"{label}: questions.{qid}"
        if not isinstance(qid, str) or not QUESTION_ID.match(qid):
            errors.append(f"{where}.id: must be lowercase letters/digits/_, like age")
        elif qid in qids:
            errors.append(f"{where}.id: duplicate question id {qid!r}")
        else:
            qids.add(qid)
        text = q.get("text")
        if not isinstance(text, str) or not text.strip():
            errors.append(f"{where}.text: is required")
        elif len(text) > 150:
            errors.append(f"{where}.text: at most 150 characters (Slack label limit)")
        kind = q.get("kind")
        if kind not in QUESTION_KINDS:
            errors.append(
                f"{where}.kind: unknown question kind {kind!r}; use one of "
                f"{', '.join(QUESTION_KINDS)}"
            )
            continue
        errors.extend(_validate_rule(where, kind, q))
    return errors


def _validate_cadence(label: str, cadence: Any) -> list[str]:
    if cadence is None:
        return []
    if not isinstance(cadence, dict) or set(cadence) - {"times", "gap_business_days"}:
        return [f"{label}: cadence: use times (a list of \"HH:MM\") and gap_business_days"]
    errors = []
    times = cadence.get("times", [])
    if not isinstance(times, list) or not times or len(times) > 6 or not all(
            isinstance(t, str) and HHMM.match(t) for t in times):
        errors.append(f"{label}: cadence.times: one to six times as \"HH:MM\", like [\"10:00\", \"14:00\"]")
    gap = cadence.get("gap_business_days", 1)
    if not isinstance(gap, int) or isinstance(gap, bool) or not 1 <= gap <= 10:
        errors.append(f"{label}: cadence.gap_business_days: a whole number from 1 to 10")
    return errors


def _validate_weekly_update(label: str, weekly: Any) -> list[str]:
    """weekly_update: {day: mon, time: "09:00", channel: C…} — every key optional."""
    if weekly is None:
        return []
    if not isinstance(weekly, dict) or set(weekly) - {"day", "time", "channel"}:
        return [f"{label}: weekly_update: use day (mon…sun), time (\"HH:MM\") and channel "
                "(a channel id); all optional"]
    errors = []
    day = weekly.get("day", "mon")
    if not isinstance(day, str) or day.lower()[:3] not in WEEKDAYS or len(day) < 3:
        errors.append(f"{label}: weekly_update.day: one of {', '.join(WEEKDAYS)}")
    time = weekly.get("time", "09:00")
    if not isinstance(time, str) or not HHMM.match(time):
        errors.append(f"{label}: weekly_update.time: must be HH:MM in quotes, like \"09:00\"")
    channel = weekly.get("channel")
    if channel is not None and (not isinstance(channel, str) or not CHANNEL_ID.match(channel)):
        errors.append(f"{label}: weekly_update.channel: must be a Slack channel id like C0123ABCD")
    return errors


SLA_NUMBERS = {  # field: (smallest, largest, what)
    "first_attempt_hours": (1, 240, "a whole number of hours from 1 to 240"),
    "approval_business_days": (1, 30, "a whole number of business days from 1 to 30"),
    "site_contact_business_days": (1, 30, "a whole number of business days from 1 to 30"),
    "visit_scheduled_days": (1, 90, "a whole number of days from 1 to 90"),
}
BUSINESS_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def _validate_slas(label: str, slas: Any) -> list[str]:
    if slas is None:
        return []
    allowed = [*SLA_NUMBERS, "business_hours"]
    if not isinstance(slas, dict):
        return [f"{label}: slas: must be a mapping with any of {', '.join(allowed)}"]
    errors = [f"{label}: slas.{k}: unknown setting; use {', '.join(allowed)}"
              for k in slas if k not in allowed]
    for name, (lo, hi, what) in SLA_NUMBERS.items():
        v = slas.get(name)
        if name in slas and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
            errors.append(f"{label}: slas.{name}: must be {what}")
    hours = slas.get("business_hours")
    if "business_hours" in slas:
        if not isinstance(hours, str) or not BUSINESS_HOURS.match(hours.replace(" ", "")):
            errors.append(f"{label}: slas.business_hours: must be \"HH:MM-HH:MM\", like \"09:00-17:00\"")
        else:
            start, end = hours.replace(" ", "").split("-")
            if start >= end:
                errors.append(f"{label}: slas.business_hours: the start must be before the end")
    return errors


def _validate_approvals(label: str, s: dict[str, Any]) -> list[str]:
    """approval_signature: required · signature_meaning: "…" · approvals_needed: 1|2 ·
    approval_sla_hours: 1..720 (escalation of a pending referral, default 24)."""
    errors: list[str] = []
    if "approval_signature" in s and s["approval_signature"] not in ("required", "none"):
        errors.append(f"{label}: approval_signature: must be required or none")
    meaning = s.get("signature_meaning")
    if meaning is not None and (not isinstance(meaning, str) or not meaning.strip()
                                or len(meaning) > 200):
        errors.append(f"{label}: signature_meaning: must be text of at most 200 characters, like "
                      "\"Approved for referral as PI delegate\"")
    needed = s.get("approvals_needed")
    if "approvals_needed" in s and (needed not in (1, 2) or isinstance(needed, bool)):
        errors.append(f"{label}: approvals_needed: must be 1 or 2")
    hours = s.get("approval_sla_hours")
    if "approval_sla_hours" in s and (not isinstance(hours, int) or isinstance(hours, bool)
                                      or not 1 <= hours <= 720):
        errors.append(f"{label}: approval_sla_hours: must be a whole number of hours from 1 to 720")
    return errors


LEAD_SOURCE_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
LEAD_SOURCE_KEYS = ("label", "cost_per_lead", "columns")


def _validate_lead_sources(label: str, sources: Any) -> list[str]:
    """lead_sources: {web-ads: {label: Web ads, cost_per_lead: 35.0, columns: {phone: Phone}}}"""
    if sources is None:
        return []
    if not isinstance(sources, dict) or not sources:
        return [f"{label}: lead_sources: a mapping of source slugs, like "
                "{web-ads: {label: Web ads, cost_per_lead: 35.0}}"]
    errors: list[str] = []
    for slug, cfg in sources.items():
        where = f"{label}: lead_sources.{slug}"
        if not isinstance(slug, str) or not LEAD_SOURCE_SLUG.match(slug):
            errors.append(f"{where}: the source must be a slug of lowercase letters, digits, - "
                          "and _ (at most 40), like web-ads")
        if cfg is None:
            continue
        if not isinstance(cfg, dict):
            errors.append(f"{where}: must be a mapping with any of {', '.join(LEAD_SOURCE_KEYS)}")
            continue
        errors.extend(f"{where}.{k}: unknown setting; use {', '.join(LEAD_SOURCE_KEYS)}"
                      for k in cfg if k not in LEAD_SOURCE_KEYS)
        name = cfg.get("label")
        if "label" in cfg and (not isinstance(name, str) or not name.strip() or len(name) > 75):
            errors.append(f"{where}.label: text of 1 to 75 characters")
        cost = cfg.get("cost_per_lead")
        if "cost_per_lead" in cfg and (not isinstance(cost, int | float) or isinstance(cost, bool)
                                       or cost < 0):
            errors.append(f"{where}.cost_per_lead: a number of dollars, 0 or more, like 35.0")
        columns = cfg.get("columns")
        if "columns" not in cfg:
            continue
        if not isinstance(columns, dict) or not columns:
            errors.append(f"{where}.columns: a mapping of field to CSV header, like "
                          "{phone: Phone Number}")
            continue
        headers: dict[str, str] = {}
        for fld, header in columns.items():
            if fld not in LEAD_FIELDS:
                errors.append(f"{where}.columns.{fld}: unknown field; use {', '.join(LEAD_FIELDS)}")
            if not isinstance(header, str) or not header.strip():
                errors.append(f"{where}.columns.{fld}: the CSV header text, like \"Phone\"")
                continue
            other = headers.setdefault(header.strip().casefold(), str(fld))
            if other != fld:
                errors.append(f"{where}.columns.{fld}: header {header!r} is already used for {other}")
    return errors


REASON_CODE = re.compile(r"^[a-z0-9_]{1,40}$")


def _validate_ringcentral(label: str, rc: Any) -> list[str]:
    """caller_id and texting_number (phone numbers), texts (name: message) and help_text."""
    if rc is None:
        return []
    where = f"{label}: ringcentral"
    if not isinstance(rc, dict):
        return [f"{where}: must be a mapping with caller_id, texting_number, texts, help_text"]
    errors: list[str] = []
    unknown = set(rc) - {"caller_id", "texting_number", "texts", "help_text"}
    if unknown:
        errors.append(f"{where}: unknown setting(s) {', '.join(sorted(map(str, unknown)))}")
    for name in ("caller_id", "texting_number"):
        value = rc.get(name)
        if value is not None:
            try:
                normalise_phone(str(value))
            except ValueError:
                errors.append(f"{where}.{name}: not a phone number like +16175550100")
    texts = rc.get("texts")
    if texts is not None:
        if not isinstance(texts, dict):
            errors.append(f"{where}.texts: a mapping of name: message")
        else:
            for name, body in texts.items():
                if not isinstance(body, str) or not 0 < len(body.strip()) <= 480:
                    errors.append(f"{where}.texts.{name}: a message of 1 to 480 characters")
                elif "STOP" not in body:
                    errors.append(f"{where}.texts.{name}: must say how to opt out "
                                  "(\"Reply STOP to opt out\")")
    help_text = rc.get("help_text")
    if help_text is not None and (not isinstance(help_text, str) or len(help_text) > 480):
        errors.append(f"{where}.help_text: a message of at most 480 characters")
    return errors


def _validate_reject_reasons(label: str, reasons: Any) -> list[str]:
    """reject_reasons: {site_capacity: Site at capacity, other: Other (see note)}"""
    if reasons is None:
        return []
    if not isinstance(reasons, dict) or not reasons or len(reasons) > 100:
        return [f"{label}: reject_reasons: a mapping of 1 to 100 reason codes to labels, like "
                "{site_capacity: Site at capacity}"]
    errors: list[str] = []
    for code, text in reasons.items():
        where = f"{label}: reject_reasons.{code}"
        if not isinstance(code, str) or not REASON_CODE.match(code):
            errors.append(f"{where}: the code must be lowercase letters, digits and _ (at most "
                          "40), like site_capacity")
        if not isinstance(text, str) or not text.strip() or len(text) > 75 or "<" in text:
            errors.append(f"{where}: the label must be text of 1 to 75 characters, without <")
    return errors


def _validate_rule(where: str, kind: str, q: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    options = q.get("options")
    if kind == "choice":
        if (not isinstance(options, list) or not options
                or not all(isinstance(o, str | int) for o in options)):
            errors.append(f"{where}.options: a choice question needs a list of options")
            options = []
        elif len(options) > 100:
            errors.append(f"{where}.options: at most 100 options")
        elif len({str(o) for o in options}) != len(options):
            errors.append(f"{where}.options: options must be unique")
    elif options is not None:
        errors.append(f"{where}.options: only choice questions have options")
    rule = q.get("eligible")
    if rule is None:
        return errors
    if not isinstance(rule, dict) or not rule:
        return [*errors, f"{where}.eligible: must be a mapping like {{min: 18}}"]
    allowed = RULE_KEYS[kind]
    unknown = set(rule) - allowed
    if unknown:
        errors.append(
            f"{where}.eligible: {', '.join(sorted(unknown))} not valid for a {kind} question; "
            f"use {', '.join(sorted(allowed))}"
        )
        return errors
    if kind == "number":
        for k in ("min", "max"):
            if k in rule and (not isinstance(rule[k], int | float) or isinstance(rule[k], bool)):
                errors.append(f"{where}.eligible.{k}: must be a number")
        if (isinstance(rule.get("min"), int | float) and isinstance(rule.get("max"), int | float)
                and rule["min"] > rule["max"]):
            errors.append(f"{where}.eligible: min is greater than max")
    elif kind == "yes_no":
        if not isinstance(rule.get("equals"), bool):
            errors.append(f"{where}.eligible.equals: must be true or false")
    elif kind == "choice":
        for k in ("in", "not_in"):
            if k in rule:
                vals = rule[k]
                if not isinstance(vals, list) or not vals:
                    errors.append(f"{where}.eligible.{k}: must be a list of options")
                elif options and not {str(v) for v in vals} <= {str(o) for o in options}:
                    errors.append(f"{where}.eligible.{k}: lists values that are not options")
    elif kind == "date":
        for k in ("before", "after"):
            if k in rule and not isinstance(rule[k], dt.date):
                errors.append(f"{where}.eligible.{k}: must be a date like 2020-01-31")
    return errors


def import_studies(db: Database, path: Path, actor: str = "cli", *, prune: bool = False,
                   dry_run: bool = False) -> ImportReport:
    """Validate everything, then write in one transaction. Raises ImportErrors, writes nothing.

    Roles of the members in the file are replaced by the file's. With `prune` the file is the
    whole list: members it does not name lose every role and are deactivated. A deactivated
    member named in the file stays deactivated (reactivate them first). `dry_run` writes
    nothing and reports what would be removed."""
    data = load_file(path)
    with db.session() as session:
        known = repo.study_keys(session)
    errors = validate(data, known)
    if errors:
        raise ImportErrors(errors)
    report = ImportReport(dry_run=dry_run)
    file_members = {m["slack_id"]: {str(k): str(v) for k, v in m["roles"].items()}
                    for m in data.get("members") or []}
    with db.session() as session:
        _plan_removals(session, file_members, prune, report)
        if dry_run:
            return report
        for s in data["studies"]:
            created = repo.upsert_study(session, _study_fields(s), actor=actor)
            (report.studies_created if created else report.studies_updated).append(s["key"])
        for m in data.get("members") or []:
            if m["slack_id"] in report.skipped_inactive:
                continue
            created = repo.upsert_member(
                session,
                slack_user_id=m["slack_id"],
                email=m.get("email"),
                timezone=m.get("timezone", "UTC"),
                display_name=m.get("name"),
                mailbox=m.get("mailbox"),
                roles=file_members[m["slack_id"]],
                actor=actor,
            )
            _ringcentral_extension(session, m)
            if created:
                report.members_created += 1
            else:
                report.members_updated += 1
        for sid in report.deactivated:
            member = members_repo.find(session, sid)
            if member is not None:
                members_repo.deactivate(session, member, actor=actor,
                                        reason=f"not in {path.name} (studies import --prune)")
        if prune:
            audit.record(session, actor=actor, action="members.pruned", entity="studies_file",
                         entity_id=path.name[:64],
                         after={"removed": [[r.slack_id, r.study, r.role] for r in report.removed],
                                "deactivated": report.deactivated})
    return report


def _ringcentral_extension(session: Session, m: dict[str, Any]) -> None:
    """`ringcentral_extension` names the member's extension (else RingCentral matches the email)."""
    member = members_repo.find(session, m["slack_id"])
    ext = m.get("ringcentral_extension")
    if member is None or (ext is None and rc_repo.extension_row(session, member.id) is None):
        return
    rc_repo.set_explicit(session, member.id, str(ext) if ext is not None else None)


def _plan_removals(session: Session, file_members: dict[str, dict[str, str]], prune: bool,
                   report: ImportReport) -> None:
    """What the import takes away, worked out before anything is written."""
    for sid, roles in file_members.items():
        member = members_repo.find(session, sid)
        if member is None:
            continue
        if not member.active:
            report.skipped_inactive.append(sid)
            continue
        for study, role in members_repo.roles_of(member).items():
            if roles.get(study) != role:
                report.removed.append(Removal(sid, study, role, roles.get(study)))
    if prune:
        for member in members_repo.absent_from(session, file_members):
            report.removed += [Removal(member.slack_user_id, study, role)
                               for study, role in members_repo.roles_of(member).items()]
            report.deactivated.append(member.slack_user_id)


def _study_fields(s: dict[str, Any]) -> dict[str, Any]:
    tz = s["timezone"]
    window = s.get("calling_window") or {}
    options = {k: s[k] for k in ("cadence", "weekly_update", "sla", "slas", "assignment",
                                 "lead_sources", "reject_reasons", "ringcentral") if k in s}
    if isinstance(options.get("slas"), dict) and "business_hours" in options["slas"]:
        options["slas"] = {**options["slas"],
                           "business_hours": str(options["slas"]["business_hours"]).replace(" ", "")}
    return {
        "key": s["key"],
        "title": s["title"],
        "sponsor": s.get("sponsor", ""),
        "channel_id": s["channel"],
        "timezone": tz,
        "approval_required": s.get("approval_required", True),
        "approval_signature": s.get("approval_signature") == "required",
        "signature_meaning": (s.get("signature_meaning") or "").strip() or None,
        "approvals_needed": s.get("approvals_needed", 1),
        "approval_sla_hours": s.get("approval_sla_hours", 24),
        "max_attempts": s.get("max_attempts", 5),
        "min_attempt_days": s.get("min_attempt_days", 3),
        "digest_time": s.get("digest_time", "08:30"),
        "calling_window_start": window.get("start"),
        "calling_window_end": window.get("end"),
        "options": options,
        "sites": [
            {
                "key": site["key"],
                "name": site["name"],
                "mailbox": site.get("mailbox"),
                "timezone": site.get("timezone", tz),
                "channel_id": site.get("channel"),
                "liaison_slack_id": site.get("liaison"),
            }
            for site in s.get("sites") or []
        ],
        "questions": [
            {
                "qid": q["id"],
                "text": q["text"].strip(),
                "kind": q["kind"],
                "options": [str(o) for o in q.get("options") or []],
                "rule": _rule_json(q.get("eligible") or {}),
                "required": q.get("required", True),
            }
            for q in s.get("questions") or []
        ],
    }


def _rule_json(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in rule.items():
        if isinstance(v, dt.date):
            out[k] = v.isoformat()
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            out[k] = v
    return out
