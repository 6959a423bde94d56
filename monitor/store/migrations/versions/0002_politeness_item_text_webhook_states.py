"""politeness, item text, webhook states

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_states",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_webhook_states")),
    )
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("last_status", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("gone_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("moved_to", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last_new_item_at", sa.DateTime(), nullable=True))

    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("summary", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("content", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("lang", sa.String(length=35), nullable=True))
        batch_op.create_index("ix_items_first_seen", ["first_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_first_seen")
        batch_op.drop_column("lang")
        batch_op.drop_column("tags")
        batch_op.drop_column("content")
        batch_op.drop_column("summary")

    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_column("last_new_item_at")
        batch_op.drop_column("moved_to")
        batch_op.drop_column("gone_at")
        batch_op.drop_column("last_status")
        batch_op.drop_column("content_digest")

    op.drop_table("webhook_states")
