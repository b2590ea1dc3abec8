"""nodes.down_cause: why a node is out of service ("drained" by an operator, "lost" by the executor), for
wait reasons that count them ("every warboy node is down (2 drained, 2 lost)")

Revision ID: 0010_node_down_cause
Revises: 0009_dashboard_covering_search
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_node_down_cause"
down_revision = "0009_dashboard_covering_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("down_cause", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("down_cause")
