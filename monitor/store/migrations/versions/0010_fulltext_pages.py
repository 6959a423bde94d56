"""Article pages read for full text: pages (url_hash, url, fetched_at, text, error)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pages",
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("url_hash", name=op.f("pk_pages")),
    )
    op.create_index("ix_pages_fetched_at", "pages", ["fetched_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pages_fetched_at", table_name="pages")
    op.drop_table("pages")
