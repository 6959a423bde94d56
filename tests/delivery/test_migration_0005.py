"""Migration 0005 on a database that already holds alerts, deliveries and their attempts.

On SQLite, making `deliveries.alert_id` nullable rebuilds the table, and dropping the old one
would cascade to `delivery_attempts`: the history of every delivery must survive the upgrade.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from monitor.store import Store
from monitor.store.engine import MIGRATIONS, create_engine


def _upgrade(engine: sa.Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_an_upgrade_keeps_deliveries_and_their_attempts(empty_storage_url: str) -> None:
    engine = create_engine(empty_storage_url)
    _upgrade(engine, "0004")
    then = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    rows = {
        "feeds": "(id, url, next_check_at, error_count, active, created_at) "
        "VALUES (1, 'https://f.example/rss', :t, 0, TRUE, :t)",
        "items": "(id, feed_id, dedupe_key, title, content_hash, first_seen_at) "
        "VALUES (1, 1, 'guid:1', 'Kolokoltsev in Havana', 'h', :t)",
        "alerts": "(id, item_id, rule_id, severity, score, payload, created_at) "
        """VALUES ('alrt_1', 1, 'r', 'high', 900, '{"type": "alert.created"}', :t)""",
        "deliveries": "(id, alert_id, webhook, state, attempts, next_attempt_at, created_at) "
        "VALUES (7, 'alrt_1', 'hook', 'pending', 2, :t, :t)",
    }
    with engine.begin() as db:
        for table, values in rows.items():
            db.execute(sa.text(f"INSERT INTO {table} {values}"), {"t": then})
        for outcome in ("transient", "transient"):
            db.execute(
                sa.text(
                    "INSERT INTO delivery_attempts "
                    "(delivery_id, attempted_at, status_code, outcome, duration_ms) "
                    "VALUES (7, :t, 503, :o, 12)"
                ),
                {"t": then, "o": outcome},
            )
    engine.dispose()

    store = Store.open(empty_storage_url)  # migrates to the newest revision
    with store.engine.connect() as db:
        assert db.scalar(sa.text("SELECT count(*) FROM delivery_attempts")) == 2
        assert db.execute(sa.text("SELECT event, message_id FROM deliveries")).all() == [
            ("alert.created", None)
        ]
    (due,) = store.outbox.claim_deliveries(datetime.now(UTC), timedelta(minutes=1), {"hook": 100})
    assert (due.id, due.message_id, due.event, due.attempts) == (7, "alrt_1", "alert.created", 2)
    assert due.payload == '{"type": "alert.created"}'
    (row,) = store.outbox.recent_alerts()
    assert row.attempts == 2
    store.close()
