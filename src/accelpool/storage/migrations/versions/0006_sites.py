"""sites: the sites table (operator, region, certified data classes, executor, connection, prices, down);
nodes.site and charges.site, "default" for every existing row (a pool that predates sites has one site)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("data_classes", sa.JSON(), nullable=False),
        sa.Column("executor", sa.String(length=32), nullable=False),
        sa.Column("connection", sa.JSON(), nullable=False),
        sa.Column("prices", sa.JSON(), nullable=False),
        sa.Column("down", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("site", sa.String(length=64), nullable=False, server_default="default"))
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("site", sa.String(length=64), nullable=False, server_default="default"))


def downgrade() -> None:
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.drop_column("site")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("site")
    op.drop_table("sites")
