"""sites.down_by, down_at, down_reason: a site an operator took out by hand (who, when, why) stays down
until an operator brings it up, across scheduler restarts and whatever its controller answers

Revision ID: 0011_site_down_by_hand
Revises: 0010_node_down_cause
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_site_down_by_hand"
down_revision = "0010_node_down_cause"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("down_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("down_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("down_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("down_reason")
        batch_op.drop_column("down_at")
        batch_op.drop_column("down_by")
