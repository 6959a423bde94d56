"""The schema, as SQLAlchemy Core tables. Alembic migrations (store/migrations) create it.

feeds             one row per polled URL: validators, schedule, errors, lease
items             every item seen, per feed; (feed_id, dedupe_key) is unique
alerts            one per (item, rule) that matched; its id is the webhook-id
deliveries        the outbox: one per (alert, webhook) or (event, webhook), state, next attempt
webhook_states    what delivery learned about a webhook (disabled after a 410, …)
delivery_attempts every attempt made, with its outcome
websub_subscriptions one per feed subscribed over WebSub: hub, topic, secret, state, lease
pages             article pages read for full text: their main text or why not, when
replicas          one per running daemon: its heartbeat, what it does (monitor.store.replicas)
mutes             rules, feeds and stories muted for a while (`monitor mute`)
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(2048), nullable=False, unique=True),
    Column("name", Text, nullable=True),
    Column("title", Text, nullable=True),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("next_check_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_checked_at", UTCDateTime, nullable=True),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("first_polled_at", UTCDateTime, nullable=True),
    Column("error_count", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    # since 0002: politeness and health
    Column("content_digest", String(64), nullable=True),  # of the last body parsed
    Column("last_status", Integer, nullable=True),  # HTTP status of the last answer
    Column("gone_at", UTCDateTime, nullable=True),  # 410 Gone: polling stopped
    Column("moved_to", Text, nullable=True),  # where a 301/308 pointed
    Column("last_new_item_at", UTCDateTime, nullable=True),
    # since 0007: health (monitor.pipeline.health)
    Column("failing_since", UTCDateTime, nullable=True),  # first failure after the last success
    Column("unhealthy_since", UTCDateTime, nullable=True),  # feed.unhealthy sent, not recovered
    Column("unhealthy_reason", String(20), nullable=True),  # failing | silent
    # since 0004: the replica (monitor.store.replicas) that took the last claim; it holds the
    # feed while lease_until is ahead, or until its heartbeat stops
    Column("claimed_by", String(200), nullable=True),
    # since 0012: the digests of the last parsed document's entries (monitor.feeds.entries)
    Column("entry_digests", LargeBinary, nullable=True),
)
Index("ix_feeds_due", feeds.c.active, feeds.c.next_check_at)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("dedupe_key", String(512), nullable=False),
    Column("guid", Text, nullable=True),
    Column("link", Text, nullable=True),
    Column("title", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
    # since 0002: the text, kept for backtests over recent items
    Column("summary", Text, nullable=True),
    Column("content", Text, nullable=True),
    Column("tags", Text, nullable=True),  # JSON list
    Column("lang", String(35), nullable=True),
    UniqueConstraint("feed_id", "dedupe_key", name="uq_items_feed_key"),
)
Index("ix_items_first_seen", items.c.first_seen_at)
Index("ix_items_feed_seen", items.c.feed_id, items.c.first_seen_at)  # since 0011: per day

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", String(200), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("score", Integer, nullable=False),  # score x 10, so 93.5 is kept exactly
    Column("payload", Text, nullable=False),  # the JSON body, fixed at creation
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("item_id", "rule_id", name="uq_alerts_item_rule"),
)
# since 0011: the console's pages of alerts, newest first (monitor.store.reads)
Index("ix_alerts_newest", alerts.c.created_at, alerts.c.id)
Index("ix_alerts_rule_newest", alerts.c.rule_id, alerts.c.created_at, alerts.c.id)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    # null since 0005: a digest or a feed event belongs to no one alert
    Column("alert_id", ForeignKey("alerts.id", ondelete="CASCADE"), nullable=True),
    Column("webhook", String(200), nullable=False),
    Column("state", String(20), nullable=False),  # pending | delivered | failed | held | digested
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    # since 0003: who holds the lease (monitor.store.owners), so a dead holder is detected
    Column("claimed_by", String(200), nullable=True),
    # since 0005: events other than one alert's alert.created (monitor.store.outbox)
    Column("event", String(40), nullable=False, server_default="alert.created"),
    Column("message_id", String(40), nullable=True),  # the webhook-id; null: the alert's id
    Column("payload", Text, nullable=True),  # the body to send; null: the alert's payload
    Column("routed_at", UTCDateTime, nullable=True),  # groups, digests, quiet hours applied
    Column("group_id", String(40), nullable=True),  # the story group (story_groups.id)
    Column("digest_id", String(40), nullable=True),  # the digest that carried a held delivery
    Column("remote_id", String(100), nullable=True),  # the target's message id (Discord's)
    UniqueConstraint("alert_id", "webhook", name="uq_deliveries_alert_webhook"),
    UniqueConstraint("message_id", "webhook", name="uq_deliveries_message_webhook"),
)
Index("ix_deliveries_due", deliveries.c.state, deliveries.c.next_attempt_at)
Index("ix_deliveries_digest", deliveries.c.webhook, deliveries.c.digest_id)
Index("ix_deliveries_group", deliveries.c.group_id)  # since 0011: a story's alerts

# since 0005: stories told by several items, per webhook with `group:` (monitor.delivery.noise)
story_groups = Table(
    "story_groups",
    metadata,
    Column("webhook", String(200), primary_key=True),
    Column("id", String(40), primary_key=True),  # the first alert's id
    Column("rule_id", String(200), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closes_at", UTCDateTime, nullable=False),  # opened_at + the webhook's `group:`
    Column("count", Integer, nullable=False),
    Column("sources", Text, nullable=False),  # JSON list of the sources, first first
    Column("texts", Text, nullable=False),  # JSON list of [title, summary, lang], one a source
)
Index(
    "ix_story_groups_open",
    story_groups.c.webhook,
    story_groups.c.rule_id,
    story_groups.c.closes_at,
)

webhook_states = Table(
    "webhook_states",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("disabled_at", UTCDateTime, nullable=True),  # e.g. after a 410 Gone
    Column("disabled_reason", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # since 0003: digest of the URL that was disabled; a new URL in the config re-enables
    Column("url_digest", String(64), nullable=True),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("outcome", String(20), nullable=False),  # delivered | transient | permanent
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
)
Index("ix_delivery_attempts_delivery", delivery_attempts.c.delivery_id)

# since 0004: one row per running daemon, written by its heartbeat (monitor.store.replicas)
replicas = Table(
    "replicas",
    metadata,
    Column("id", String(200), primary_key=True),  # the claim owner (monitor.store.owners)
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(40), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # dead after this without a heartbeat
    Column("in_flight", Integer, nullable=False, default=0),  # polls and deliveries running
    Column("polls", Integer, nullable=False, default=0),  # polls finished since it started
    Column("deliveries", Integer, nullable=False, default=0),  # deliveries made since it started
)

# since 0006: WebSub subscriptions (monitor.pipeline.websub), one per feed
websub_subscriptions = Table(
    "websub_subscriptions",
    metadata,
    Column("feed_id", ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
    Column("hub", Text, nullable=False),
    Column("topic", Text, nullable=False),  # the feed's rel="self" URL
    Column("token", String(64), nullable=False, unique=True),  # the callback's unguessable path
    Column("callback", Text, nullable=False),  # hub.callback as sent: base URL + token
    Column("secret", String(128), nullable=False),  # hub.secret: HMAC key of pushed content
    # requested | verified | denied | expired | failed | unsubscribing
    Column("state", String(20), nullable=False),
    Column("lease_seconds", Integer, nullable=True),  # as granted by the hub
    Column("requested_at", UTCDateTime, nullable=False),
    Column("verified_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("next_action_at", UTCDateTime, nullable=True),  # renew, or try again after a failure
    Column("last_push_at", UTCDateTime, nullable=True),
    Column("pushes", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    # since 0008: a replica acting on a due row (renew, retry, expire) holds it until lease_until,
    # or until its heartbeat stops (monitor.store.subscriptions.claim_due)
    Column("claimed_by", String(200), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
)
Index("ix_websub_subscriptions_due", websub_subscriptions.c.next_action_at)

# since 0009: `monitor mute`: alerts of a muted rule, feed or story are recorded, not sent
mutes = Table(
    "mutes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(10), nullable=False),  # rule | feed | story
    Column("target", String(2000), nullable=False),  # rule id, feed URL, or the alert's id
    Column("story", Text, nullable=True),  # a story's [title, summary, lang] as JSON
    Column("reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("lifted_at", UTCDateTime, nullable=True),  # `monitor unmute`
)
Index("ix_mutes_until", mutes.c.until)

# since 0010: article pages read for full text (monitor.store.pages), one per link, so that a
# page is fetched at most once across restarts and replicas; kept for `fetch.fulltext.keep`
pages = Table(
    "pages",
    metadata,
    Column("url_hash", String(64), primary_key=True),  # SHA-256 of the link: any length fits
    Column("url", Text, nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("text", Text, nullable=True),  # the main text; null: the page could not be read
    Column("error", Text, nullable=True),  # why not, for users
)
Index("ix_pages_fetched_at", pages.c.fetched_at)
