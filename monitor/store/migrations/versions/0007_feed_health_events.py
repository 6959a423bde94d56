"""feed.unhealthy notices (issue 5)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("unhealthy_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("unhealthy_reason", sa.String(length=20), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+, PostgreSQL), not a batch rebuild: on SQLite
    # rebuilding `feeds` drops the old table, and its ON DELETE CASCADE would empty `items`.
    for column in ("unhealthy_reason", "unhealthy_since", "failing_since"):
        op.drop_column("feeds", column)
