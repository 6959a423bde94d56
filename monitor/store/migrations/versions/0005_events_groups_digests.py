"""non-alert events in the outbox, story groups, digests (issue 8)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _keeping_attempts() -> bool:
    """On SQLite, making `alert_id` nullable rebuilds `deliveries`; dropping the old table deletes
    its rows first, and that delete cascades to `delivery_attempts` (foreign keys are on, and
    cannot be turned off inside the migration's transaction). So the attempts are set aside in a
    temporary table and put back after the rebuild (ids kept, so they still point at their
    delivery)."""
    if op.get_bind().dialect.name != "sqlite":
        return False
    op.execute("CREATE TEMP TABLE _attempts_0005 AS SELECT * FROM delivery_attempts")
    return True


def _restore_attempts() -> None:
    op.execute("INSERT INTO delivery_attempts SELECT * FROM _attempts_0005")
    op.execute("DROP TABLE _attempts_0005")


def upgrade() -> None:
    kept = _keeping_attempts()
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("alert_id", existing_type=sa.String(length=40), nullable=True)
        batch_op.add_column(
            sa.Column("event", sa.String(length=40), nullable=False, server_default="alert.created")
        )
        batch_op.add_column(sa.Column("message_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("routed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("group_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("digest_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("remote_id", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint(
            "uq_deliveries_message_webhook", ["message_id", "webhook"]
        )
        batch_op.create_index("ix_deliveries_digest", ["webhook", "digest_id"], unique=False)
    if kept:
        _restore_attempts()
    op.create_table(
        "story_groups",
        sa.Column("webhook", sa.String(length=200), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("closes_at", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("texts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("webhook", "id", name=op.f("pk_story_groups")),
    )
    with op.batch_alter_table("story_groups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_story_groups_open", ["webhook", "rule_id", "closes_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("story_groups")
    op.execute("DELETE FROM deliveries WHERE alert_id IS NULL")  # digests and feed events
    kept = _keeping_attempts()
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_digest")
        batch_op.drop_constraint("uq_deliveries_message_webhook", type_="unique")
        for column in (
            "remote_id",
            "digest_id",
            "group_id",
            "routed_at",
            "payload",
            "message_id",
            "event",
        ):
            batch_op.drop_column(column)
        batch_op.alter_column("alert_id", existing_type=sa.String(length=40), nullable=False)
    if kept:
        _restore_attempts()
