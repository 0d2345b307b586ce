"""approvals that stand up in an audit: decisions kept per referral, append-only signatures,
delegations, per-study signature / two-person / escalation settings

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild: other tables' foreign keys point at these)
    op.add_column("studies", sa.Column("approval_signature", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column("studies", sa.Column("signature_meaning", sa.String(length=200), nullable=True))
    op.add_column("studies", sa.Column("approvals_needed", sa.Integer(), nullable=False,
                                       server_default="1"))
    op.add_column("studies", sa.Column("approval_sla_hours", sa.Integer(), nullable=False,
                                       server_default="24"))
    op.add_column("referrals", sa.Column("public_id", sa.String(length=32), nullable=True))
    op.add_column("referrals", sa.Column("escalated_at", storage.models.UTCDateTime(),
                                         nullable=True))
    op.create_index(op.f("ix_referrals_public_id"), "referrals", ["public_id"], unique=True)
    op.add_column("web_sessions", sa.Column("printed_name", sa.String(length=200), nullable=True))
    op.create_table(
        "referral_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=False),
        sa.Column("on_behalf_of", sa.String(length=32), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("needed", sa.Integer(), nullable=False),
        sa.Column("referral_version", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("at", storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["referral_events.id"],
                                name=op.f("fk_referral_decisions_event_id_referral_events")),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_referral_decisions_referral_id_referrals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_decisions")),
    )
    op.create_index(op.f("ix_referral_decisions_referral_id"), "referral_decisions", ["referral_id"])
    op.create_table(
        "decision_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("referral_version", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("signer", sa.String(length=32), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("meaning", sa.String(length=200), nullable=False),
        sa.Column("signed_at", storage.models.UTCDateTime(), nullable=False),
        sa.Column("authenticated_at", storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["decision_id"], ["referral_decisions.id"],
                                name=op.f("fk_decision_signatures_decision_id_referral_decisions")),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_decision_signatures_referral_id_referrals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_signatures")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_decision_signatures_decision_id")),
    )
    op.create_index(op.f("ix_decision_signatures_referral_id"), "decision_signatures",
                    ["referral_id"])
    op.create_table(
        "delegations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("approver", sa.String(length=32), nullable=False),
        sa.Column("delegate", sa.String(length=32), nullable=False),
        sa.Column("starts_at", storage.models.UTCDateTime(), nullable=False),
        sa.Column("ends_at", storage.models.UTCDateTime(), nullable=False),
        sa.Column("cancelled_at", storage.models.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"],
                                name=op.f("fk_delegations_study_id_studies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegations")),
    )
    op.create_index(op.f("ix_delegations_approver"), "delegations", ["approver"])
    op.create_index(op.f("ix_delegations_delegate"), "delegations", ["delegate"])
    op.create_index(op.f("ix_delegations_study_id"), "delegations", ["study_id"])
    # signatures are append-only at the database level too (as audit_events, migration 0002)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION decision_signatures_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'decision_signatures is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER decision_signatures_no_change BEFORE UPDATE OR DELETE ON "
            "decision_signatures FOR EACH ROW EXECUTE FUNCTION decision_signatures_append_only()"
        )
        op.execute(
            "CREATE TRIGGER decision_signatures_no_truncate BEFORE TRUNCATE ON decision_signatures "
            "FOR EACH STATEMENT EXECUTE FUNCTION decision_signatures_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER decision_signatures_no_{verb.lower()} BEFORE {verb} ON "
                "decision_signatures BEGIN SELECT RAISE(ABORT, 'decision_signatures is "
                "append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER decision_signatures_no_truncate ON decision_signatures")
        op.execute("DROP TRIGGER decision_signatures_no_change ON decision_signatures")
        op.execute("DROP FUNCTION decision_signatures_append_only()")
    else:
        op.execute("DROP TRIGGER decision_signatures_no_update")
        op.execute("DROP TRIGGER decision_signatures_no_delete")
    op.drop_index(op.f("ix_delegations_study_id"), table_name="delegations")
    op.drop_index(op.f("ix_delegations_delegate"), table_name="delegations")
    op.drop_index(op.f("ix_delegations_approver"), table_name="delegations")
    op.drop_table("delegations")
    op.drop_index(op.f("ix_decision_signatures_referral_id"), table_name="decision_signatures")
    op.drop_table("decision_signatures")
    op.drop_index(op.f("ix_referral_decisions_referral_id"), table_name="referral_decisions")
    op.drop_table("referral_decisions")
    op.drop_column("web_sessions", "printed_name")
    op.drop_index(op.f("ix_referrals_public_id"), table_name="referrals")
    for table, column in (("referrals", "escalated_at"), ("referrals", "public_id"),
                          ("studies", "approval_sla_hours"), ("studies", "approvals_needed"),
                          ("studies", "signature_meaning"), ("studies", "approval_signature")):
        op.drop_column(table, column)
