"""outbox: remember when a send began whose outcome is unknown

A dispatcher that dies after Slack accepted a message but before it recorded the answer leaves
the row claimed; `unconfirmed_since` lets the next dispatcher look the message up in Slack
(by its metadata) instead of posting it a second time.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unconfirmed_since", storage.models.UTCDateTime(),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("unconfirmed_since")
