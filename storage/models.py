"""SQLAlchemy 2 models for the whole domain (design.md §3).

All instants are stored as UTC. PHI columns hold Fernet tokens (see storage.crypto);
nothing here decrypts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012
        dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON
    }


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    sponsor: Mapped[str] = mapped_column(String(200), default="")
    channel_id: Mapped[str] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64))
    approval_required: Mapped[bool] = mapped_column(Boolean, default=True)
    # approvals (issue 18): signed decisions, the two-person rule, escalation after N hours
    approval_signature: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    signature_meaning: Mapped[str | None] = mapped_column(String(200))
    approvals_needed: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    approval_sla_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    min_attempt_days: Mapped[int] = mapped_column(Integer, default=3)
    digest_time: Mapped[str] = mapped_column(String(5), default="08:30")
    calling_window_start: Mapped[str | None] = mapped_column(String(5))
    calling_window_end: Mapped[str | None] = mapped_column(String(5))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sites: Mapped[list[Site]] = relationship(
        back_populates="study", order_by="Site.key", cascade="all, delete-orphan"
    )
    questions: Mapped[list[Question]] = relationship(
        back_populates="study", order_by="Question.position", cascade="all, delete-orphan"
    )


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("study_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    mailbox: Mapped[str | None] = mapped_column(String(254))
    timezone: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    liaison_slack_id: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    study: Mapped[Study] = relationship(back_populates="sites")


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("study_id", "qid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    qid: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))  # yes_no | number | choice | date
    options: Mapped[list[Any]] = mapped_column(default=list)
    rule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    required: Mapped[bool] = mapped_column(Boolean, default=True)

    study: Mapped[Study] = relationship(back_populates="questions")


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    display_name: Mapped[str | None] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    mailbox: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="member", cascade="all, delete-orphan"
    )


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("member_id", "study_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # coordinator | approver | stakeholder | admin

    member: Mapped[Member] = relationship(back_populates="memberships")
    study: Mapped[Study] = relationship()


class Candidate(Base):
    __tablename__ = "candidates"
    __table_args__ = (
        UniqueConstraint("study_id", "seq"),
        Index("ix_candidates_study_status", "study_id", "status"),
        Index("ix_candidates_study_created", "study_id", "created_at"),
        Index("ix_candidates_study_unreachable", "study_id", "unreachable_at"),
        Index("ix_candidates_id_source", "id", "source"),  # KPI joins per source, index-only
        Index("ix_candidates_owner_queue", "owner_id", "status", "attempts", "created_at"),
        Index("ix_candidates_owner_tz", "owner_id", "timezone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    seq: Mapped[int] = mapped_column(Integer)
    ref_code: Mapped[str] = mapped_column(String(32), unique=True)
    # PHI, Fernet tokens
    name_enc: Mapped[str] = mapped_column(Text)
    phone_enc: Mapped[str] = mapped_column(Text)
    dob_enc: Mapped[str | None] = mapped_column(Text)
    # keyed blind indexes (HMAC) for duplicate detection and lookup without decrypting
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    name_index: Mapped[str | None] = mapped_column(String(64), index=True)
    dedupe_index: Mapped[str | None] = mapped_column(String(64), index=True)
    region: Mapped[str | None] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    consent_to_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_to_text: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(24), default="new")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_outcome: Mapped[str | None] = mapped_column(String(24))
    last_called_at: Mapped[dt.datetime | None] = mapped_column()
    first_called_at: Mapped[dt.datetime | None] = mapped_column()
    unreachable_at: Mapped[dt.datetime | None] = mapped_column()
    source: Mapped[str | None] = mapped_column(String(40))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    assigned_at: Mapped[dt.datetime | None] = mapped_column()
    # why the lead waits (bot.leads.reasons); None = derived from its state
    wait_reason: Mapped[str | None] = mapped_column(String(24))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    study: Mapped[Study] = relationship()
    owner: Mapped[Member | None] = relationship()


class PrescreenCall(Base):
    __tablename__ = "prescreen_calls"
    __table_args__ = (
        Index("ix_prescreen_calls_called_at", "called_at"),
        # KPI queries read calls per study and period from the index alone (covering)
        Index("ix_prescreen_calls_study_called", "study_id", "called_at", "outcome",
              "coordinator_id", "candidate_id"),
        Index("ix_prescreen_calls_study_outcome", "study_id", "outcome", "called_at"),
        Index("ix_prescreen_calls_candidate_called", "candidate_id", "called_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(24))
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    eligible: Mapped[bool | None] = mapped_column(Boolean)
    failed_criteria: Mapped[list[Any]] = mapped_column(default=list)
    notes_enc: Mapped[str | None] = mapped_column(Text)
    called_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    idempotency_key: Mapped[str | None] = mapped_column(String(120), unique=True)

    candidate: Mapped[Candidate] = relationship()
    coordinator: Mapped[Member] = relationship()


class CandidateNote(Base):
    """A note added on the secure page's contact card. The text is PHI (a Fernet token)."""

    __tablename__ = "candidate_notes"
    __table_args__ = (Index("ix_candidate_notes_candidate_at", "candidate_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    text_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    author: Mapped[Member] = relationship()


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_study_state", "study_id", "state"),
        Index("ix_referrals_study_created", "study_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("prescreen_calls.id"))
    state: Mapped[str] = mapped_column(String(24), default="pending_approval")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(String(300))
    reason_note_enc: Mapped[str | None] = mapped_column(Text)
    visit_date: Mapped[dt.date | None] = mapped_column()
    card_channel: Mapped[str | None] = mapped_column(String(32))
    card_ts: Mapped[str | None] = mapped_column(String(32))
    public_id: Mapped[str | None] = mapped_column(String(32), index=True, unique=True)  # opaque, for links
    escalated_at: Mapped[dt.datetime | None] = mapped_column()  # pending past the approval SLA
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    candidate: Mapped[Candidate] = relationship()
    site: Mapped[Site | None] = relationship()
    events: Mapped[list[ReferralEvent]] = relationship(
        back_populates="referral", order_by="ReferralEvent.id"
    )


class ReferralEvent(Base):
    __tablename__ = "referral_events"
    __table_args__ = (
        Index("ix_referral_events_to_at", "to_state", "at"),
        Index("ix_referral_events_at", "at", "referral_id", "to_state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(300))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="events")


class ReferralDecision(Base):
    """One approver's decision on a referral (approve or reject), kept whatever happens next.
    `event_id` is the state change it made (None for the first of two approvals)."""

    __tablename__ = "referral_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    decision: Mapped[str] = mapped_column(String(8))  # approve | reject
    actor: Mapped[str] = mapped_column(String(32))
    on_behalf_of: Mapped[str | None] = mapped_column(String(32))  # the approver a delegate stood in for
    role: Mapped[str] = mapped_column(String(16))  # the actor's role (or "delegate") when deciding
    reason: Mapped[str | None] = mapped_column(String(300))
    step: Mapped[int] = mapped_column(Integer, default=1)  # 1 of approvals_needed, 2 of 2…
    needed: Mapped[int] = mapped_column(Integer, default=1)
    referral_version: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("referral_events.id"))
    at: Mapped[dt.datetime] = mapped_column()


class DecisionSignature(Base):
    """An electronic signature of a decision: append-only (the app's role may only INSERT and
    SELECT, like audit_events)."""

    __tablename__ = "decision_signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("referral_decisions.id"), unique=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    referral_version: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(8))
    signer: Mapped[str] = mapped_column(String(32))  # Slack user id, as Slack's ID token said
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[dt.datetime] = mapped_column()
    authenticated_at: Mapped[dt.datetime] = mapped_column()  # the fresh sign-in it rests on


class Delegation(Base):
    """An approver's stand-in for one study until an instant (the end of a day in the approver's
    time zone). Cancelled ones are kept."""

    __tablename__ = "delegations"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    approver: Mapped[str] = mapped_column(String(32), index=True)
    delegate: Mapped[str] = mapped_column(String(32), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()
    cancelled_at: Mapped[dt.datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(32))


class Callback(Base):
    __tablename__ = "callbacks"
    __table_args__ = (
        Index("ix_callbacks_status_due", "status", "due_at"),
        Index("ix_callbacks_study_due", "study_id", "due_at"),
        Index("ix_callbacks_owner_kind_due", "owner_id", "kind", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("prescreen_calls.id"))
    due_at: Mapped[dt.datetime] = mapped_column()
    remind_at: Mapped[dt.datetime] = mapped_column(index=True)
    window_check: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    kind: Mapped[str] = mapped_column(String(16), default="requested")  # requested | cadence
    reminded_at: Mapped[dt.datetime | None] = mapped_column()
    reminded_late: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    candidate: Mapped[Candidate] = relationship()
    owner: Mapped[Member] = relationship()


class SlaNotice(Base):
    """One row per SLA notice given (breach, 2x): the unique key makes each notice exactly-once
    across workers (bot.leads.sla)."""

    __tablename__ = "sla_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    stage: Mapped[str] = mapped_column(String(24))
    level: Mapped[str] = mapped_column(String(8))  # breach | 2x
    entity: Mapped[str] = mapped_column(String(16))  # candidate | referral
    entity_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_channel_sent", "channel", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(40), default="chat.postMessage")
    channel: Mapped[str] = mapped_column(String(32), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # for chat.update / thread replies: the key of the message whose ts is needed
    parent_key: Mapped[str | None] = mapped_column(String(200))
    study_key: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[dt.datetime | None] = mapped_column()
    # start of the earliest send whose outcome was never learned (the dispatcher died, or the
    # connection broke after the request went out): look the message up before posting again
    unconfirmed_since: Mapped[dt.datetime | None] = mapped_column()
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    posted_channel: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class OutboxChannel(Base):
    """Per-channel pacing shared by every dispatcher: the next moment a message may go out."""

    __tablename__ = "outbox_channels"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_at: Mapped[dt.datetime] = mapped_column()


class DigestRun(Base):
    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("scope", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(80))
    period: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="sent")
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only and hash-chained (storage.audit). A correction is a new event; no code path
    updates or deletes rows."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),
                      Index("ix_audit_events_seq", "seq", unique=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(300))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, 3… in chain order, no gaps
    prev_hash: Mapped[str] = mapped_column(String(64))  # the previous event's hash
    hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of storage.audit.canonical(...)


class ProcessedRequest(Base):
    """Slack ids already handled (event id, view id + hash, action ts): retries become no-ops."""

    __tablename__ = "processed_requests"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CalendarEvent(Base):
    __tablename__ = "calendar_events"
    __table_args__ = (
        UniqueConstraint("mailbox", "event_id"),
        Index("ix_calendar_events_mailbox_start", "mailbox", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(254))
    event_id: Mapped[str] = mapped_column(String(400))
    subject: Mapped[str | None] = mapped_column(String(400))
    start_at: Mapped[dt.datetime] = mapped_column()
    end_at: Mapped[dt.datetime] = mapped_column()
    is_all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    start_date: Mapped[dt.date | None] = mapped_column()
    end_date: Mapped[dt.date | None] = mapped_column()
    show_as: Mapped[str] = mapped_column(String(24), default="busy")
    sensitivity: Mapped[str] = mapped_column(String(24), default="normal")
    is_cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    join_url: Mapped[str | None] = mapped_column(String(1000))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class GraphSyncState(Base):
    __tablename__ = "graph_sync_state"

    mailbox: Mapped[str] = mapped_column(String(254), primary_key=True)
    delta_link: Mapped[str | None] = mapped_column(Text)
    window_start: Mapped[dt.datetime | None] = mapped_column()
    window_end: Mapped[dt.datetime | None] = mapped_column()
    synced_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(300))


class KpiMark(Base):
    """An instant whose study-local day needs its KPI rollups recomputed. Written in the same
    transaction as the change (storage.repositories.kpi_rollups), consumed by the `kpis` job;
    insert-only, so concurrent writers never wait on each other for a mark."""

    __tablename__ = "kpi_marks"
    __table_args__ = (Index("ix_kpi_marks_study_at", "study_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column()


class KpiCount(Base):
    """Additive KPI figures per study and study-local day (README "KPIs", rollups)."""

    __tablename__ = "kpi_counts"
    __table_args__ = (
        # covering: a period's sums read from the index alone
        Index("ix_kpi_counts_sum", "study_id", "day", "figure", "k1", "k2", "k3", "n"),
    )

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    figure: Mapped[str] = mapped_column(String(16), primary_key=True)
    k1: Mapped[str] = mapped_column(String(64), primary_key=True)
    k2: Mapped[str] = mapped_column(String(64), primary_key=True)
    k3: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class KpiMonthCount(Base):
    """kpi_counts summed per study-local calendar month (month = its first day), rewritten
    with its days, so a year reads about a dozen month rows per key instead of 365 day rows."""

    __tablename__ = "kpi_month_counts"

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[dt.date] = mapped_column(primary_key=True)
    figure: Mapped[str] = mapped_column(String(16), primary_key=True)
    k1: Mapped[str] = mapped_column(String(64), primary_key=True)
    k2: Mapped[str] = mapped_column(String(64), primary_key=True)
    k3: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class KpiSlotCount(Base):
    """The same figures per 15-minute UTC slot, for the study-local days in kpi_slot_days
    (today and yesterday): a change recomputes only its slot, and a read sums the clean slots
    of a changed day and recomputes only its changed slots from the raw rows."""

    __tablename__ = "kpi_slot_counts"
    __table_args__ = (Index("ix_kpi_slot_counts_day", "study_id", "day"),)

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot: Mapped[dt.datetime] = mapped_column(primary_key=True)
    figure: Mapped[str] = mapped_column(String(16), primary_key=True)
    k1: Mapped[str] = mapped_column(String(64), primary_key=True)
    k2: Mapped[str] = mapped_column(String(64), primary_key=True)
    k3: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column()
    n: Mapped[int] = mapped_column(Integer)


class KpiSlotDay(Base):
    """A study-local day whose every 15-minute slot is in kpi_slot_counts."""

    __tablename__ = "kpi_slot_days"

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)


class KpiValue(Base):
    """The values behind a median (days first call → referral, referral → visit), one row per
    referral, on the study-local day that counts it, with a coarse bin for locating the middle
    (and its 15-minute slot on a day kept per slot)."""

    __tablename__ = "kpi_values"
    __table_args__ = (Index("ix_kpi_values_bin", "study_id", "figure", "bin", "day", "value"),
                      Index("ix_kpi_values_day", "study_id", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(Integer)
    day: Mapped[dt.date] = mapped_column()
    figure: Mapped[str] = mapped_column(String(16))
    bin: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    slot: Mapped[dt.datetime | None] = mapped_column()


class KpiState(Base):
    """Which settings a study's rollups were built with; any difference means rebuild."""

    __tablename__ = "kpi_state"

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    grace_minutes: Mapped[int] = mapped_column(Integer)
    built_at: Mapped[dt.datetime] = mapped_column()


class WebSession(Base):
    """A signed-in browser on the secure page. The cookie holds a random id; only its SHA-256
    is stored, so a copy of this table signs nobody in."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), index=True)
    team_id: Mapped[str] = mapped_column(String(32))
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column()
    last_seen_at: Mapped[dt.datetime] = mapped_column()
    authenticated_at: Mapped[dt.datetime] = mapped_column()  # when Slack last confirmed who it is
    printed_name: Mapped[str | None] = mapped_column(String(200))  # `name` of Slack's ID token


class LoginAttempt(Base):
    """One trip to Slack and back: the state (as a hash), nonce and PKCE verifier it must match,
    and where to land. Used once, kept for minutes."""

    __tablename__ = "login_attempts"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    used: Mapped[bool] = mapped_column(Boolean, default=False)


# ----- RingCentral (click-to-call, call log, texts) -------------------------------------------

class RcExtension(Base):
    """A member's RingCentral extension (matched by email, or named in the studies file) and
    where the call-log sync of that extension stands."""

    __tablename__ = "rc_extensions"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"),
                                           primary_key=True)
    extension_id: Mapped[str | None] = mapped_column(String(32), index=True)
    explicit: Mapped[str | None] = mapped_column(String(32))  # ringcentral_extension in the file
    sync_token: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(300))


class RcCallRecord(Base):
    """One call-log record seen from RingCentral, by its record id (the sync is idempotent on it)."""

    __tablename__ = "rc_call_records"
    __table_args__ = (Index("ix_rc_call_records_candidate_started", "candidate_id", "started_at"),)

    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("prescreen_calls.id"), index=True)
    result: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[dt.datetime] = mapped_column()
    duration_s: Mapped[int] = mapped_column(Integer, default=0)
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RcRingOut(Base):
    """A call placed from a Call button (RingOut): counted toward the 24 h limit at once."""

    __tablename__ = "rc_ringouts"
    __table_args__ = (Index("ix_rc_ringouts_candidate_placed", "candidate_id", "placed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    ringout_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24), default="placing")
    placed_at: Mapped[dt.datetime] = mapped_column()


class TextMessage(Base):
    """A text to or from a candidate; the body is encrypted and read only on the secure page."""

    __tablename__ = "text_messages"
    __table_args__ = (Index("ix_text_messages_candidate_at", "candidate_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"))
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    body_enc: Mapped[str] = mapped_column(Text)
    keyword: Mapped[str | None] = mapped_column(String(16))  # STOP | HELP | None
    rc_message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    at: Mapped[dt.datetime] = mapped_column()


class TextOptOut(Base):
    """A number that said STOP: no text goes to it again (whichever candidate has it)."""

    __tablename__ = "text_opt_outs"

    phone_index: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column()
    keyword: Mapped[str] = mapped_column(String(16))


class RcSubscription(Base):
    """The webhook subscription the bot created for inbound texts, renewed before it expires."""

    __tablename__ = "rc_subscriptions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(500))
    expires_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
