"""Stage SLAs: detect items waiting too long, tell their owner once, and the study channel once
(counts only) when items are twice over.

Stages and defaults (per study `slas:`, see business_time.DEFAULTS):
- first_attempt: first call attempt within 24 h of intake, counted on working days from the
  next business opening (weekends pause the clock);
- approval: decision within 1 business day of pending approval;
- site_contact: site contacted within 2 business days of sent_to_site;
- visit_scheduled: visit scheduled within 10 calendar days of site contact.
Business time is Mon–Fri inside the study's business hours, in the study time zone.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import outbox
from bot.context import AppContext
from bot.leads import reasons
from bot.leads.business_time import SlaConfig, add_business_days, add_days, add_workday_hours
from storage.models import Candidate, Member, Study
from storage.repositories import slas as repo
from storage.repositories import studies as study_repo

STAGES = ("first_attempt", "approval", "site_contact", "visit_scheduled")
STAGE_LABELS = {"first_attempt": "first contact", "approval": "approval",
                "site_contact": "site contact", "visit_scheduled": "visit scheduling"}
REFERRAL_STAGE_STATE = {"approval": "pending_approval", "site_contact": "sent_to_site",
                        "visit_scheduled": "site_contacted"}


@dataclass
class Breach:
    stage: str
    entity: str  # candidate | referral
    entity_id: int
    study_id: int
    ref: str
    owner: Member | None
    source: str | None
    site: str | None
    reason: str | None
    since: dt.datetime
    deadline: dt.datetime
    deadline_2x: dt.datetime

    def key(self, level: str) -> str:
        return f"sla:{self.stage}:{self.entity}:{self.entity_id}:{level}"


def _deadlines(cfg: SlaConfig, stage: str, since: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if stage == "first_attempt":
        h = cfg.first_attempt_hours
        return add_workday_hours(cfg, since, h), add_workday_hours(cfg, since, 2 * h)
    if stage == "approval":
        n = cfg.approval_business_days
        return add_business_days(cfg, since, n), add_business_days(cfg, since, 2 * n)
    if stage == "site_contact":
        n = cfg.site_contact_business_days
        return add_business_days(cfg, since, n), add_business_days(cfg, since, 2 * n)
    n = cfg.visit_scheduled_days
    return add_days(cfg, since, n), add_days(cfg, since, 2 * n)


def breaches(session: Session, study: Study, now: dt.datetime, *,
             pending_only: bool = False) -> list[Breach]:
    """Every open item of the study past its stage deadline at `now` (with `pending_only`, only
    items that may still need a notice)."""
    cfg = SlaConfig.for_study(study.timezone, study.options)
    out: list[Breach] = []
    # business time never runs faster than the wall clock: a cheap SQL prefilter
    lead_cut = now - dt.timedelta(hours=cfg.first_attempt_hours)
    for c in repo.uncontacted_since(session, study.id, lead_cut, pending_only=pending_only):
        deadline, twice = _deadlines(cfg, "first_attempt", c.created_at)
        if now >= deadline:
            out.append(Breach("first_attempt", "candidate", c.id, study.id, c.ref_code, c.owner,
                              c.source, None, _reason(c, None), c.created_at, deadline, twice))
    for stage, state in REFERRAL_STAGE_STATE.items():
        days = {"approval": cfg.approval_business_days,
                "site_contact": cfg.site_contact_business_days,
                "visit_scheduled": cfg.visit_scheduled_days}[stage]
        for r, since in repo.referrals_in_state(session, study.id, state,
                                                now - dt.timedelta(days=days),
                                                stage=stage if pending_only else None):
            deadline, twice = _deadlines(cfg, stage, since)
            if now >= deadline:
                c = r.candidate
                out.append(Breach(stage, "referral", r.id, study.id, c.ref_code, c.owner, c.source,
                                  r.site.key if r.site else None, _reason(c, r.state), since,
                                  deadline, twice))
    return out


def _reason(c: Candidate, referral_state: str | None) -> str | None:
    return reasons.derive(set_reason=c.wait_reason, attempts=c.attempts,
                          last_outcome=c.last_outcome, referral_state=referral_state)


def _late(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"


def _todo(b: Breach, study: Study) -> str:
    return {
        "first_attempt": f"Call them now: `/prescreen next {study.key}`.",
        "approval": f"Ask a {study.key} approver to decide on the card in <#{study.channel_id}>.",
        "site_contact": "Check with the site that they reached the candidate, then press "
                        "Site contacted on the card.",
        "visit_scheduled": "Check with the site whether a visit is booked, then press "
                           "Visit scheduled on the card.",
    }[b.stage]


def breach_dm(b: Breach, study: Study, now: dt.datetime, viewer_tz: str) -> str:
    local = b.deadline.astimezone(ZoneInfo(viewer_tz))
    return (f":alarm_clock: SLA missed · {b.ref} · {STAGE_LABELS[b.stage]} was due "
            f"{local:%a %b} {local.day} {local:%H:%M} your time ({_late(now - b.deadline)} late). "
            f"{_todo(b, study)}")


def channel_note(study: Study, counts: Counter[str]) -> str:
    n = sum(counts.values())
    parts = ", ".join(f"{counts[s]} {STAGE_LABELS[s]}" for s in STAGES if counts[s])
    return (f":warning: {n} {study.key} item{'s are' if n != 1 else ' is'} 2× past SLA: {parts}. "
            f"Run `/prescreen queue {study.key}`.")


def check_study(ctx: AppContext, session: Session, study: Study, now: dt.datetime) -> tuple[int, int]:
    """Queue breach DMs and the 2× channel note, each exactly once. Returns (DMs, 2× items)."""
    found = breaches(session, study, now, pending_only=True)
    if not found:
        return 0, 0
    rows: list[dict[str, Any]] = []
    for b in found:
        base = {"study_id": study.id, "stage": b.stage, "entity": b.entity, "entity_id": b.entity_id}
        rows.append({**base, "key": b.key("breach"), "level": "breach"})
        if now >= b.deadline_2x:
            rows.append({**base, "key": b.key("2x"), "level": "2x"})
    # skip what was claimed before without a write per item on every run
    done = repo.existing_keys(session, [r["key"] for r in rows])
    fresh = [r for r in rows if r["key"] not in done]
    won = repo.claim_notices(session, fresh, now)
    messages: list[outbox.Message] = []
    twice: Counter[str] = Counter()
    for b in found:
        if b.key("breach") in won and b.owner is not None and b.owner.active:
            messages.append(outbox.Message(key=b.key("breach"), kind="sla_breach",
                                           channel=b.owner.slack_user_id, study_key=study.key,
                                           text=breach_dm(b, study, now, b.owner.timezone)))
        if b.key("2x") in won:
            twice[b.stage] += 1
    if twice:
        first = min(b.entity_id for b in found if b.key("2x") in won)
        messages.append(outbox.Message(key=f"sla-2x:{study.key}:{now.isoformat()}:{first}",
                                       kind="sla_2x", channel=study.channel_id,
                                       study_key=study.key, text=channel_note(study, twice)))
    outbox.post_many(ctx, session, messages, now=now)
    dms = sum(1 for m in messages if m.kind == "sla_breach")
    return dms, sum(twice.values())


def check_all(ctx: AppContext) -> tuple[int, int]:
    now = ctx.clock.now()
    dms = twice = 0
    with ctx.db.session() as session:
        study_ids = [s.id for s in study_repo.list_studies(session)]
    for study_id in study_ids:
        with ctx.db.session() as session:
            study = study_repo.by_id(session, study_id)
            if study is None:
                continue
            a, b = check_study(ctx, session, study, now)
            dms, twice = dms + a, twice + b
    return dms, twice


def slas_job(ctx: AppContext) -> str:
    dms, twice = check_all(ctx)
    if not (dms or twice):
        return ""
    return f"{dms} SLA breach DMs, {twice} items 2× over"


def stale_summary(ctx: AppContext, study_key: str, now: dt.datetime) -> dict[str, Any]:
    """Items of a study past their stage SLA at `now`, for the daily digest and weekly update.

    Returns counts only (no patient identity), safe for a channel:
        {"study": "MDD", "total": 5,
         "by_stage":  {"first_attempt": 3, "site_contact": 2},
         "by_source": {"web form": 3, "none": 2},
         "by_site":   {"CHI": 2, "none": 3},          # "none": not referred to a site yet
         "by_owner":  {"U0COORD02": 4, "unassigned": 1},  # Slack user ids, for <@…> mentions
         "by_reason": {"no response": 2, "not contacted yet": 3}}
    Keys within each breakdown are sorted by count, largest first.
    """
    with ctx.db.session() as session:
        study = study_repo.get_study(session, study_key)
        if study is None:
            raise KeyError(study_key)
        found = breaches(session, study, now)
        groups: dict[str, Counter[str]] = defaultdict(Counter)
        for b in found:
            groups["by_stage"][b.stage] += 1
            groups["by_source"][b.source or "none"] += 1
            groups["by_site"][b.site or "none"] += 1
            groups["by_owner"][b.owner.slack_user_id if b.owner else "unassigned"] += 1
            groups["by_reason"][reasons.label(b.reason)] += 1
        out: dict[str, Any] = {"study": study.key, "total": len(found)}
        for name in ("by_stage", "by_source", "by_site", "by_owner", "by_reason"):
            out[name] = dict(sorted(groups[name].items(), key=lambda kv: (-kv[1], kv[0])))
        return out
