"""The digests of each feed's last parsed entries, so a changed document's known entries are not
parsed again (monitor.feeds.entries)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entry_digests", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # a plain DROP COLUMN, not a batch rebuild: rebuilding `feeds` on SQLite would cascade to
    # its items (as in 0007)
    op.drop_column("feeds", "entry_digests")
