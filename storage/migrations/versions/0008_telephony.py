"""RingCentral: extensions and their call-log sync, synced call records, RingOuts, texts,
text opt-outs, the webhook subscription; candidates' consent to text

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC = storage.models.UTCDateTime


def upgrade() -> None:
    # a plain ADD COLUMN (SQLite too): rebuilding candidates would trip the tables that refer to it
    op.add_column("candidates", sa.Column("consent_to_text", sa.Boolean(), nullable=False,
                                          server_default=sa.false()))
    op.create_table(
        "rc_extensions",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("extension_id", sa.String(length=32), nullable=True),
        sa.Column("explicit", sa.String(length=32), nullable=True),
        sa.Column("sync_token", sa.Text(), nullable=True),
        sa.Column("synced_at", UTC(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE",
                                name=op.f("fk_rc_extensions_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_rc_extensions")),
    )
    op.create_index(op.f("ix_rc_extensions_extension_id"), "rc_extensions", ["extension_id"])
    op.create_table(
        "rc_call_records",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("result", sa.String(length=40), nullable=False),
        sa.Column("started_at", UTC(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name=op.f("fk_rc_call_records_member_id_members")),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"],
                                name=op.f("fk_rc_call_records_candidate_id_candidates")),
        sa.ForeignKeyConstraint(["call_id"], ["prescreen_calls.id"],
                                name=op.f("fk_rc_call_records_call_id_prescreen_calls")),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_rc_call_records")),
    )
    op.create_index("ix_rc_call_records_candidate_started", "rc_call_records",
                    ["candidate_id", "started_at"])
    op.create_index(op.f("ix_rc_call_records_call_id"), "rc_call_records", ["call_id"])
    op.create_table(
        "rc_ringouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("ringout_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("placed_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"],
                                name=op.f("fk_rc_ringouts_candidate_id_candidates")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name=op.f("fk_rc_ringouts_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rc_ringouts")),
    )
    op.create_index("ix_rc_ringouts_candidate_placed", "rc_ringouts", ["candidate_id", "placed_at"])
    op.create_table(
        "text_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=True),
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("body_enc", sa.Text(), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=True),
        sa.Column("rc_message_id", sa.String(length=64), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"],
                                name=op.f("fk_text_messages_candidate_id_candidates")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name=op.f("fk_text_messages_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_messages")),
        sa.UniqueConstraint("rc_message_id", name=op.f("uq_text_messages_rc_message_id")),
    )
    op.create_index("ix_text_messages_candidate_at", "text_messages", ["candidate_id", "at"])
    op.create_index(op.f("ix_text_messages_phone_index"), "text_messages", ["phone_index"])
    op.create_table(
        "text_opt_outs",
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("phone_index", name=op.f("pk_text_opt_outs")),
    )
    op.create_table(
        "rc_subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("expires_at", UTC(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rc_subscriptions")),
    )


def downgrade() -> None:
    op.drop_table("rc_subscriptions")
    op.drop_table("text_opt_outs")
    op.drop_index(op.f("ix_text_messages_phone_index"), table_name="text_messages")
    op.drop_index("ix_text_messages_candidate_at", table_name="text_messages")
    op.drop_table("text_messages")
    op.drop_index("ix_rc_ringouts_candidate_placed", table_name="rc_ringouts")
    op.drop_table("rc_ringouts")
    op.drop_index(op.f("ix_rc_call_records_call_id"), table_name="rc_call_records")
    op.drop_index("ix_rc_call_records_candidate_started", table_name="rc_call_records")
    op.drop_table("rc_call_records")
    op.drop_index(op.f("ix_rc_extensions_extension_id"), table_name="rc_extensions")
    op.drop_table("rc_extensions")
    op.drop_column("candidates", "consent_to_text")
