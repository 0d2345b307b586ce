"""KPI rollups: daily figures per study (kpi_counts) and their monthly sums (kpi_month_counts),
median values (kpi_values), today's and yesterday's figures per 15-minute slot
(kpi_slot_counts, kpi_slot_days), instants to recompute (kpi_marks) and what they were built
with (kpi_state)

The tables start empty: the `kpis` job (or `prescreen-bot kpis rebuild`) fills them; until a
study is built, its figures are read from the raw rows as before.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kpi_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_marks")),
    )
    op.create_index("ix_kpi_marks_study_at", "kpi_marks", ["study_id", "at"])
    op.create_table(
        "kpi_counts",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("figure", sa.String(length=16), nullable=False),
        sa.Column("k1", sa.String(length=64), nullable=False),
        sa.Column("k2", sa.String(length=64), nullable=False),
        sa.Column("k3", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("study_id", "day", "figure", "k1", "k2", "k3",
                                name=op.f("pk_kpi_counts")),
    )
    op.create_index("ix_kpi_counts_sum", "kpi_counts",
                    ["study_id", "day", "figure", "k1", "k2", "k3", "n"])
    op.create_table(
        "kpi_month_counts",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("figure", sa.String(length=16), nullable=False),
        sa.Column("k1", sa.String(length=64), nullable=False),
        sa.Column("k2", sa.String(length=64), nullable=False),
        sa.Column("k3", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("study_id", "month", "figure", "k1", "k2", "k3",
                                name=op.f("pk_kpi_month_counts")),
    )
    op.create_table(
        "kpi_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("figure", sa.String(length=16), nullable=False),
        sa.Column("bin", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("slot", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_values")),
    )
    op.create_index("ix_kpi_values_bin", "kpi_values", ["study_id", "figure", "bin", "day", "value"])
    op.create_index("ix_kpi_values_day", "kpi_values", ["study_id", "day"])
    op.create_table(
        "kpi_slot_counts",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.DateTime(), nullable=False),
        sa.Column("figure", sa.String(length=16), nullable=False),
        sa.Column("k1", sa.String(length=64), nullable=False),
        sa.Column("k2", sa.String(length=64), nullable=False),
        sa.Column("k3", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("study_id", "slot", "figure", "k1", "k2", "k3",
                                name=op.f("pk_kpi_slot_counts")),
    )
    op.create_index("ix_kpi_slot_counts_day", "kpi_slot_counts", ["study_id", "day"])
    op.create_table(
        "kpi_slot_days",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("study_id", "day", name=op.f("pk_kpi_slot_days")),
    )
    op.create_table(
        "kpi_state",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("grace_minutes", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("study_id", name=op.f("pk_kpi_state")),
    )


def downgrade() -> None:
    op.drop_table("kpi_state")
    op.drop_table("kpi_slot_days")
    op.drop_index("ix_kpi_slot_counts_day", table_name="kpi_slot_counts")
    op.drop_table("kpi_slot_counts")
    op.drop_index("ix_kpi_values_day", table_name="kpi_values")
    op.drop_index("ix_kpi_values_bin", table_name="kpi_values")
    op.drop_table("kpi_values")
    op.drop_table("kpi_month_counts")
    op.drop_index("ix_kpi_counts_sum", table_name="kpi_counts")
    op.drop_table("kpi_counts")
    op.drop_index("ix_kpi_marks_study_at", table_name="kpi_marks")
    op.drop_table("kpi_marks")
