"""Every query monitor makes, behind one `Store` object. SQLAlchemy Core, portable SQL only.

Concurrency: feeds and deliveries are claimed with a lease (`lease_until`) by a conditional UPDATE,
so two workers (or, later, two replicas) never poll one feed or send one delivery at once, and work
held by a process that died is taken over when its lease ends. Unique constraints make an item seen
once and an alert created once even when two writers race.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StoreError
from monitor.models import Item
from monitor.store import mutes
from monitor.store.engine import Transaction, check_revision, create_engine, lease_free, migrate
from monitor.store.outbox import MUTED, PENDING, Outbox
from monitor.store.tables import alerts, deliveries, feeds, items
from monitor.store.upsert import conflict_insert
from monitor.store.writes import WriteStatus

_SYNC_LOCK = 7_262_012  # pg_advisory_xact_lock key of sync_feeds (7_262_011: migrations)
_ANALYZE_AFTER = 100  # feeds added at once, after which PostgreSQL's statistics are renewed
# Every poll asks this (Store.item_identities): built once, with its lists bound as expanding
# parameters, since a query built per call coerced each of its values into a literal.
_SHARING = sa.select(items.c.guid, items.c.link, items.c.content_hash).where(
    items.c.feed_id == sa.bindparam("feed_id"),
    sa.or_(
        items.c.guid.in_(sa.bindparam("guids", expanding=True)),
        items.c.link.in_(sa.bindparam("links", expanding=True)),
        items.c.content_hash.in_(sa.bindparam("hashes", expanding=True)),
    ),
)


@dataclass(frozen=True, slots=True)
class FeedState:
    id: int
    url: str
    name: str | None
    title: str | None
    etag: str | None
    last_modified: str | None
    next_check_at: datetime
    error_count: int
    last_error: str | None
    first_polled_at: datetime | None
    last_success_at: datetime | None
    last_checked_at: datetime | None
    content_digest: str | None = None
    last_status: int | None = None
    gone_at: datetime | None = None
    moved_to: str | None = None
    last_new_item_at: datetime | None = None
    failing_since: datetime | None = None  # first failure after the last success
    unhealthy_since: datetime | None = None  # feed.unhealthy raised, not yet recovered
    unhealthy_reason: str | None = None  # failing | silent
    claimed_by: str | None = None  # the replica holding the feed's lease when it was read
    entry_digests: bytes | None = None  # the last parsed document's (monitor.feeds.entries)

    @property
    def fetch_url(self) -> str:
        """Where to fetch: the URL a 301/308 moved the feed to, else the configured one."""
        return self.moved_to or self.url


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to create for one item: one per matching rule, delivered to `webhooks`."""

    id: str
    rule_id: str
    severity: str
    score: float
    payload: dict[str, object]
    webhooks: tuple[str, ...]
    muted: str | None = None  # why its deliveries are `muted` (monitor.store.mutes), not sent


@dataclass(frozen=True, slots=True)
class SeenItem:
    """A new item to record, with the alerts it raised.

    `key` (unique per feed) and `guid` (the guid when it identifies the item, that is when it is
    unique in its document) default to the item's own `dedupe_key()` and guid.
    """

    item: Item
    alerts: tuple[NewAlert, ...] = ()
    key: str | None = None
    guid: str | None = None
    content_hash: str | None = None  # the item's, when already computed (identity needs it)

    @property
    def stored_key(self) -> str:
        return (self.key or self.item.dedupe_key())[:512]

    @property
    def stored_guid(self) -> str | None:
        return self.guid if self.key is not None else self.item.guid


@dataclass(frozen=True, slots=True)
class PollRecord:
    """A successful poll to record: the feed's new state and the items it brought."""

    feed_id: int
    now: datetime
    next_check_at: datetime
    etag: str | None
    last_modified: str | None
    title: str | None
    seen: tuple[SeenItem, ...] = ()
    status: int | None = None
    content_digest: str | None = None
    moved_to: str | None = None
    owner: str | None = None  # who claimed the feed for this poll: only its lease is ended
    entry_digests: bytes | None = None  # a parsed document's (b"": none); None keeps the last


@dataclass(frozen=True, slots=True)
class PollFailure:
    """A failed poll to record: errors counted, next try; `gone` (410) stops polling."""

    feed_id: int
    now: datetime
    error: str
    next_check_at: datetime
    status: int | None = None
    gone: bool = False
    moved_to: str | None = None
    owner: str | None = None  # who claimed the feed for this poll: only its lease is ended


@dataclass(frozen=True, slots=True)
class PollResult:
    new_items: int
    alerts_created: int


class Store:
    """The database: open it with `Store.open(url)`; migrations are applied on open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # how writes fare (the poll writer's, the dispatcher's records), for /healthz
        self.writes = WriteStatus()
        self.outbox = Outbox(engine, self.writes)

    @classmethod
    def open(cls, url: str, *, migrating: bool = True) -> Store:
        """The store at `url`, its schema brought to the newest revision; with `migrating`
        False, a store whose schema is not this version's is a StoreError instead (for commands
        that must not change the database under running daemons, like `monitor status`)."""
        engine = create_engine(url)
        if migrating:
            migrate(engine)
        else:
            try:
                check_revision(engine)
            except StoreError:
                engine.dispose()
                raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    # feeds ---------------------------------------------------------------------------------

    def sync_feeds(self, configured: Sequence[tuple[str, str | None]], now: datetime) -> None:
        """Make the feeds table follow the config: add new URLs, (de)activate, update names."""
        wanted = dict(configured)
        with self._begin() as db:
            if db.dialect.name == "postgresql":  # replicas starting together sync one at a time
                db.execute(sa.text(f"SELECT pg_advisory_xact_lock({_SYNC_LOCK})"))
            columns = sa.select(feeds.c.id, feeds.c.url, feeds.c.name, feeds.c.active)
            existing = {row.url: row for row in db.execute(columns)}
            new: list[dict[str, object]] = []
            for url, name in wanted.items():
                row = existing.get(url)
                if row is None:
                    new.append(
                        {
                            "url": url,
                            "name": name,
                            "next_check_at": now,
                            "error_count": 0,
                            "active": True,
                            "created_at": now,
                        }
                    )
                elif not row.active or row.name != name:
                    db.execute(
                        sa.update(feeds).where(feeds.c.id == row.id).values(active=True, name=name)
                    )
            # SQLite: another process on the file may have added some since our read
            _insert_ignoring_conflicts(db, feeds, new, ["url"], [feeds.c.id])
            if len(new) >= _ANALYZE_AFTER and db.dialect.name == "postgresql":
                # statistics now, not when autovacuum comes (if it is on): without them the
                # planner scans and sorts every feed for each claim instead of using ix_feeds_due
                db.execute(sa.text("ANALYZE feeds"))
            gone = [row.id for url, row in existing.items() if url not in wanted and row.active]
            if gone:
                db.execute(sa.update(feeds).where(feeds.c.id.in_(gone)).values(active=False))

    def feed_report(self) -> list[tuple[FeedState, int]]:
        """Every active feed with the number of items seen in it."""
        counts = (
            sa.select(items.c.feed_id, sa.func.count().label("seen"))
            .group_by(items.c.feed_id)
            .subquery()
        )
        query = (
            sa.select(feeds, sa.func.coalesce(counts.c.seen, 0).label("seen"))
            .outerjoin(counts, counts.c.feed_id == feeds.c.id)
            .where(feeds.c.active)
            .order_by(feeds.c.id)
        )
        with self.engine.connect() as db:
            return [(feed_state_from_row(row), int(row.seen)) for row in db.execute(query)]

    def feeds(self) -> list[FeedState]:
        with self.engine.connect() as db:
            rows = db.execute(sa.select(feeds).where(feeds.c.active).order_by(feeds.c.id))
            return [feed_state_from_row(row) for row in rows]

    def claim_feeds(
        self,
        now: datetime,
        lease: timedelta,
        *,
        due_only: bool = True,
        limit: int = 1000,
        owner: str | None = None,
    ) -> list[FeedState]:
        """Take the lease on active feeds that are due (or on all, for `run --once`); `owner`
        (a replica id) is recorded, so the claim ends early if that replica's heartbeat stops."""
        query = sa.select(feeds.c.id).where(
            feeds.c.active, feeds.c.gone_at.is_(None), lease_free(feeds.c.lease_until, now)
        )
        if due_only:
            query = query.where(feeds.c.next_check_at <= now)
        # FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite has one writer): replicas claiming at the
        # same moment take disjoint feeds instead of queueing behind each other's row locks.
        query = query.order_by(feeds.c.next_check_at).limit(limit).with_for_update(skip_locked=True)
        with self._begin() as db:
            ids = list(db.scalars(query).all())
            if not ids:
                return []
            # the lease check is repeated: on SQLite another writer may have leased since our read
            taken = db.execute(
                sa.update(feeds)
                .where(feeds.c.id.in_(ids), lease_free(feeds.c.lease_until, now))
                .values(lease_until=now + lease, claimed_by=owner)
                .returning(*feeds.c)
            ).all()
        order = {feed_id: position for position, feed_id in enumerate(ids)}
        return [feed_state_from_row(row) for row in sorted(taken, key=lambda row: order[row.id])]

    def renew_leases(self, owner: str, now: datetime, lease: timedelta) -> int:
        """Extend to `now + lease` the leases `owner` still holds (a poll recorded ended its
        feed's); how many. For a `run --once` whose cycle outlasts one lease."""
        with self._begin() as db:
            renewed = db.execute(
                sa.update(feeds)
                .where(feeds.c.claimed_by == owner, feeds.c.lease_until >= _moment(now))
                .values(lease_until=now + lease)
            )
            return int(renewed.rowcount or 0)

    def item_identities(
        self, feed_id: int, guids: Iterable[str], links: Iterable[str], hashes: Iterable[str]
    ) -> list[tuple[str | None, str | None, str]]:
        """(guid, link, content hash) of stored items of a feed sharing any of these."""
        values = {
            "feed_id": feed_id,
            "guids": list(set(guids)),
            "links": list(set(links)),
            "hashes": list(set(hashes)),
        }
        if not (values["guids"] or values["links"] or values["hashes"]):
            return []
        with self.engine.connect() as db:
            return [(row.guid, row.link, row.content_hash) for row in db.execute(_SHARING, values)]

    def record_poll(
        self,
        feed_id: int,
        now: datetime,
        *,
        next_check_at: datetime,
        etag: str | None,
        last_modified: str | None,
        title: str | None,
        seen: Sequence[SeenItem] = (),
        status: int | None = None,
        content_digest: str | None = None,
        moved_to: str | None = None,
    ) -> PollResult:
        """One transaction: the new items as seen, their alerts and outbox rows, the feed's state.

        An item another writer recorded first is skipped with its alerts, so nothing is doubled.
        """
        poll = PollRecord(
            feed_id,
            now,
            next_check_at=next_check_at,
            etag=etag,
            last_modified=last_modified,
            title=title,
            seen=tuple(seen),
            status=status,
            content_digest=content_digest,
            moved_to=moved_to,
        )
        result = self.record_polls([poll])[0]
        assert result is not None
        return result

    def record_poll_failure(
        self,
        feed_id: int,
        now: datetime,
        *,
        error: str,
        next_check_at: datetime,
        status: int | None = None,
        gone: bool = False,
        moved_to: str | None = None,
    ) -> None:
        """A failed poll: errors counted, the next try scheduled; `gone` stops polling (410)."""
        failure = PollFailure(feed_id, now, error, next_check_at, status, gone, moved_to)
        self.record_polls([failure])

    def record_polls(self, polls: Sequence[PollRecord | PollFailure]) -> list[PollResult | None]:
        """Several polls' outcomes in one transaction (monitor.store.writer groups them).

        A result per poll, in order: a `PollResult` for a success, None for a failure. The
        items of the polls go in as one executemany per `ROWS_PER_STATEMENT` items or so, their
        alerts and outbox rows likewise, and the feeds' rows of the successes as one UPDATE run
        once per poll (executemany): building and caching a statement per poll was most of the
        Python a batch cost.
        """
        # rows are locked in feed order, so two replicas' batches cannot deadlock on PostgreSQL
        in_order = sorted(range(len(polls)), key=lambda index: polls[index].feed_id)
        successes = [
            (index, poll)
            for index, poll in ((index, polls[index]) for index in in_order)
            if isinstance(poll, PollRecord)
        ]
        results: list[PollResult | None] = [None] * len(polls)
        new: dict[int, int] = {}
        created: dict[int, int] = {}
        with self._begin() as db:
            written = [(index, poll.feed_id, poll.now, poll.seen) for index, poll in successes]
            for chunk in _chunks(written, ROWS_PER_STATEMENT):
                item_ids, chunk_new = _insert_items(db, chunk)
                new.update(chunk_new)
                created.update(_insert_alerts(db, chunk, item_ids))
            for index, _poll in successes:
                results[index] = PollResult(new.get(index, 0), created.get(index, 0))
            _write_feed_rows(db, [(index, polls[index]) for index in in_order], new)
        return results

    def record_push(self, feed_id: int, now: datetime, seen: Sequence[SeenItem]) -> PollResult:
        """Items a WebSub hub pushed, with their alerts and outbox rows, in one transaction,
        like a poll's; the feed's schedule, validators and errors are left alone."""
        with self._begin() as db:
            item_ids, _new = _insert_items(db, [(0, feed_id, now, seen)])
            created = _insert_alerts(db, [(0, feed_id, now, seen)], item_ids)
            if item_ids:
                db.execute(
                    sa.update(feeds).where(feeds.c.id == feed_id).values(last_new_item_at=now)
                )
        return PollResult(len(item_ids), created.get(0, 0))

    def active_mutes(self, now: datetime) -> list[mutes.Mute]:
        """The mutes in force (`monitor mute`)."""
        return mutes.active(self.engine, now)

    def _begin(self) -> Transaction:
        return Transaction(self.engine)


def _moment(value: datetime) -> sa.BindParameter[datetime]:
    """A time bound as the columns store it (UTC), where it is not a column's own value."""
    return sa.literal(value, type_=feeds.c.last_checked_at.type)


def _lease_ended_by(owner: str | None) -> sa.ColumnElement[Any]:
    """The lease's new value when `owner`'s poll is recorded: ended if `owner` still holds it.

    A replica that stalled long enough to be taken for dead may finish a poll after another
    replica claimed the feed again; ending that replica's lease would let a third poll start.
    """
    return sa.case(
        (feeds.c.claimed_by.is_not_distinct_from(owner), sa.null()), else_=feeds.c.lease_until
    )


# Items per INSERT of a batch of polls (a poll's items are never split). SQLAlchemy holds the
# bound values of a whole executemany at once, so a batch's items in one statement raised the
# peak memory of a cold cycle; at this size each statement's own cost is still shared by about
# ten polls (bench/store_writes.py measures both).
ROWS_PER_STATEMENT = 400
# Rows per multi-row VALUES that SQLAlchemy sends for one of those statements. Every row count
# is its own SQL text, and sqlite3 (like psycopg) keeps recent texts prepared: pages of any size
# up to ROWS_PER_STATEMENT filled that cache with statements of hundreds of rows; small pages
# keep it small.
ROWS_PER_PAGE = 50
# one poll's new items: the poll's place in its batch, its feed's id, its time, the items
Written = tuple[int, int, datetime, Sequence[SeenItem]]


def _chunks(written: Sequence[Written], rows: int) -> Iterator[Sequence[Written]]:
    """`written` in runs of whole polls holding about `rows` items each (one poll at least)."""
    start, count = 0, 0
    for end, (_place, _feed_id, _now, seen) in enumerate(written):
        if count and count + len(seen) > rows:
            yield written[start:end]
            start, count = end, 0
        count += len(seen)
    if start < len(written):
        yield written[start:]


ItemIds = dict[tuple[int, str], tuple[int, int]]  # (feed id, key) -> (item id, poll's place)


def _insert_items(db: Connection, written: Sequence[Written]) -> tuple[ItemIds, dict[int, int]]:
    """Insert the items no other writer recorded first: their ids, and how many each poll
    recorded. An item two polls of one batch bring is the first one's."""
    first: dict[tuple[int, str], int] = {}
    rows: list[dict[str, object]] = []
    for place, feed_id, now, seen in written:
        for entry in seen:
            key = entry.stored_key
            first.setdefault((feed_id, key), place)
            rows.append(
                {
                    "feed_id": feed_id,
                    "dedupe_key": key,
                    "guid": entry.stored_guid,
                    "link": entry.item.link,
                    "title": entry.item.title,
                    "content_hash": entry.content_hash or entry.item.content_hash(),
                    "published_at": entry.item.published,
                    "first_seen_at": now,
                    "summary": entry.item.summary,
                    "content": entry.item.content,
                    "tags": json.dumps(list(entry.item.tags), ensure_ascii=False)
                    if entry.item.tags
                    else None,
                    "lang": entry.item.lang,
                }
            )
    inserted = _insert_ignoring_conflicts(
        db,
        items,
        rows,
        ["feed_id", "dedupe_key"],
        [items.c.id, items.c.feed_id, items.c.dedupe_key],
    )
    ids: ItemIds = {}
    new: dict[int, int] = {}
    for row in inserted:
        place = first[row.feed_id, row.dedupe_key]
        ids[row.feed_id, row.dedupe_key] = (row.id, place)
        new[place] = new.get(place, 0) + 1
    return ids, new


def _insert_alerts(db: Connection, written: Sequence[Written], item_ids: ItemIds) -> dict[int, int]:
    """The alerts of the items just inserted, and one outbox row per alert and webhook; how
    many each poll created."""
    wanted = [
        (place, now, inserted[0], alert)
        for place, feed_id, now, seen in written
        for entry in seen
        if (inserted := item_ids.get((feed_id, entry.stored_key))) and inserted[1] == place
        for alert in entry.alerts
    ]
    rows: list[dict[str, object]] = [
        {
            "id": alert.id,
            "item_id": item_id,
            "rule_id": alert.rule_id,
            "severity": alert.severity,
            "score": round(alert.score * 10),
            "payload": json.dumps(alert.payload, ensure_ascii=False, sort_keys=True),
            "created_at": now,
        }
        for _place, now, item_id, alert in wanted
    ]
    inserted_alerts = _insert_ignoring_conflicts(
        db, alerts, rows, ["item_id", "rule_id"], [alerts.c.id]
    )
    created = {row.id for row in inserted_alerts}
    made = [(place, now, alert) for place, now, _item_id, alert in wanted if alert.id in created]
    outbox = [
        {
            "alert_id": alert.id,
            "webhook": webhook,
            "state": PENDING if alert.muted is None else MUTED,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "last_error": alert.muted,
        }
        for _place, now, alert in made
        for webhook in alert.webhooks
    ]
    if outbox:
        db.execute(sa.insert(deliveries), outbox)
    counts: dict[int, int] = {}
    for place, _now, _alert in made:
        counts[place] = counts.get(place, 0) + 1
    return counts


def _write_feed_rows(
    db: Connection, polls: Sequence[tuple[int, PollRecord | PollFailure]], new: dict[int, int]
) -> None:
    """The feeds' rows, in the order given: each run of successes as one executemany, each
    failure as its own UPDATE (its values differ). `new` counts each poll's new items by its
    place in the batch."""
    run: list[tuple[int, PollRecord]] = []
    for place, poll in polls:
        if isinstance(poll, PollRecord):
            run.append((place, poll))
            continue
        if run:
            _write_successes(db, run, new)
            run = []
        _write_failure(db, poll)
    if run:
        _write_successes(db, run, new)


def _write_failure(db: Connection, failure: PollFailure) -> None:
    values: dict[str, object] = {
        "error_count": feeds.c.error_count + 1,
        "last_error": failure.error[:2000],
        "failing_since": sa.func.coalesce(feeds.c.failing_since, _moment(failure.now)),
        "last_checked_at": failure.now,
        "next_check_at": failure.next_check_at,
        "lease_until": _lease_ended_by(failure.owner),
        "last_status": failure.status,
    }
    if failure.gone:
        values["gone_at"] = failure.now
    if failure.moved_to:
        values["moved_to"] = failure.moved_to
    db.execute(sa.update(feeds).where(feeds.c.id == failure.feed_id).values(**values))


_MOMENT = feeds.c.last_checked_at.type
_NOW = sa.bindparam("b_now", type_=_MOMENT)
# A successful poll's feed row (_write_successes): one statement, run once per poll
_SUCCESS = (
    sa.update(feeds)
    .where(feeds.c.id == sa.bindparam("b_id"))
    .values(
        etag=sa.bindparam("b_etag"),
        last_modified=sa.bindparam("b_modified"),
        next_check_at=sa.bindparam("b_next", type_=_MOMENT),
        lease_until=sa.case(
            (feeds.c.claimed_by.is_not_distinct_from(sa.bindparam("b_owner")), sa.null()),
            else_=feeds.c.lease_until,
        ),
        last_checked_at=_NOW,
        last_success_at=_NOW,
        error_count=0,
        last_error=None,
        failing_since=None,
        first_polled_at=sa.func.coalesce(feeds.c.first_polled_at, _NOW),
        last_status=sa.bindparam("b_status"),
        title=sa.func.coalesce(sa.bindparam("b_title", type_=sa.String), feeds.c.title),
        content_digest=sa.func.coalesce(
            sa.bindparam("b_digest", type_=sa.String), feeds.c.content_digest
        ),
        moved_to=sa.func.coalesce(sa.bindparam("b_moved", type_=sa.String), feeds.c.moved_to),
        entry_digests=sa.func.coalesce(
            sa.bindparam("b_entries", type_=sa.LargeBinary), feeds.c.entry_digests
        ),
        last_new_item_at=sa.func.coalesce(
            sa.bindparam("b_new_at", type_=_MOMENT), feeds.c.last_new_item_at
        ),
    )
)


def _write_successes(
    db: Connection, polls: Sequence[tuple[int, PollRecord]], new: dict[int, int]
) -> None:
    """Successful polls, as one UPDATE run once per poll (executemany)."""
    parameters = [
        {
            "b_id": poll.feed_id,
            "b_now": poll.now,
            "b_next": poll.next_check_at,
            "b_etag": poll.etag,
            "b_modified": poll.last_modified,
            "b_status": poll.status,
            "b_owner": poll.owner,
            "b_title": poll.title or None,
            "b_digest": poll.content_digest or None,
            "b_moved": poll.moved_to or None,
            "b_entries": poll.entry_digests,
            "b_new_at": poll.now if new.get(place) else None,
        }
        for place, poll in polls
    ]
    db.execute(_SUCCESS, parameters)


def feed_state_from_row(row: sa.Row[tuple[object, ...]]) -> FeedState:
    return FeedState(
        id=row.id,
        url=row.url,
        name=row.name,
        title=row.title,
        etag=row.etag,
        last_modified=row.last_modified,
        next_check_at=row.next_check_at,
        error_count=row.error_count,
        last_error=row.last_error,
        first_polled_at=row.first_polled_at,
        last_success_at=row.last_success_at,
        last_checked_at=row.last_checked_at,
        content_digest=row.content_digest,
        last_status=row.last_status,
        gone_at=row.gone_at,
        moved_to=row.moved_to,
        last_new_item_at=row.last_new_item_at,
        failing_since=row.failing_since,
        unhealthy_since=row.unhealthy_since,
        unhealthy_reason=row.unhealthy_reason,
        claimed_by=row.claimed_by,
        entry_digests=row.entry_digests,
    )


def _insert_ignoring_conflicts(
    db: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, object]],
    conflict: list[str],
    returning: list[sa.Column[Any]],
) -> list[sa.Row[Any]]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING: the rows this writer inserted.

    Executed as one executemany, which SQLAlchemy batches into multi-row statements
    ("insertmanyvalues") compiled once and cached.
    """
    if not rows:
        return []
    statement = (
        conflict_insert(db.dialect.name, table)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(*returning)
        .execution_options(insertmanyvalues_page_size=ROWS_PER_PAGE)
    )
    return list(db.execute(statement, list(rows)).all())
