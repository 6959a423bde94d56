"""delivery claim owner, webhook url digest

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("webhook_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("url_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_states", schema=None) as batch_op:
        batch_op.drop_column("url_digest")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
