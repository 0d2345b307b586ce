"""candidate_notes: notes added on the secure page's contact card (text encrypted)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candidate_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("text_enc", sa.Text(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["members.id"],
                                name=op.f("fk_candidate_notes_author_id_members")),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"],
                                name=op.f("fk_candidate_notes_candidate_id_candidates")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidate_notes")),
    )
    with op.batch_alter_table("candidate_notes", schema=None) as batch_op:
        batch_op.create_index("ix_candidate_notes_candidate_at", ["candidate_id", "created_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("candidate_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_candidate_notes_candidate_at")
    op.drop_table("candidate_notes")
