"""Indexes for the console's reads: alerts newest first, story groups, items per feed and day

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # keyset pages of alerts (monitor.store.reads.alerts_page) walk these backwards
    op.create_index("ix_alerts_newest", "alerts", ["created_at", "id"])
    op.create_index("ix_alerts_rule_newest", "alerts", ["rule_id", "created_at", "id"])
    op.create_index("ix_deliveries_group", "deliveries", ["group_id"])
    # a feed's items per day (monitor.store.reads.feed_views), read from the index alone
    op.create_index("ix_items_feed_seen", "items", ["feed_id", "first_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_items_feed_seen", table_name="items")
    op.drop_index("ix_deliveries_group", table_name="deliveries")
    op.drop_index("ix_alerts_rule_newest", table_name="alerts")
    op.drop_index("ix_alerts_newest", table_name="alerts")
