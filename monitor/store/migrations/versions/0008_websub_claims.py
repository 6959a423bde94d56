"""WebSub subscriptions are claimed like feeds: claimed_by, lease_until

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (nullable, no default): no batch rebuild of the table on SQLite
    op.add_column(
        "websub_subscriptions", sa.Column("claimed_by", sa.String(length=200), nullable=True)
    )
    op.add_column("websub_subscriptions", sa.Column("lease_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("websub_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
