"""`monitor feeds`: the health of every feed, as the store knows it (no network)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitor.cli.reporting import load_or_report
from monitor.cli.table import Row, table
from monitor.durations import approximate_duration
from monitor.errors import StoreError
from monitor.http.urls import mask_urls, shown_url
from monitor.store import FeedState, Store
from monitor.store import subscriptions as websub
from monitor.store.subscriptions import Subscription
from monitor.wording import clipped, plural

ConfigOption = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def register(sub: Any, with_config: ConfigOption) -> None:
    parser = with_config(
        sub.add_parser(
            "feeds",
            help="show each feed's health: last success, last error, next check, items seen",
            description="List every configured feed with its state from the store: ok, "
            "failing (with the error and how many failures in a row), gone (410: polling "
            "stopped) or moved (301/308); when it last succeeded, when it is checked next, how "
            "many items were seen, whether it is unhealthy (failing or silent for longer than "
            "`health:` allows: feed.unhealthy raised), and its WebSub subscription if any (state, "
            "hub, lease end, "
            "pushes). Reads the store only. Exit codes: 0, 2 invalid config.",
        )
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per feed")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config, secrets=False)
    if config is None:
        return 2
    try:
        store = Store.open(config.storage_url)
        report = store.feed_report()
        subscriptions = {sub.feed_id: sub for sub in websub.every(store.engine)}
        store.close()
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    if args.json:
        for feed, seen in report:
            document = feed_json(feed, seen) | websub_json(subscriptions.get(feed.id))
            print(json.dumps(document, ensure_ascii=False))
        return 0
    rows = [feed_row(feed, seen, now, subscriptions.get(feed.id)) for feed, seen in report]
    if not rows:
        print(
            "no feeds in the store yet: `monitor run --once` polls the configured ones",
            file=sys.stderr,
        )
        return 0
    for line in table(HEADER, rows, right=RIGHT):
        print(line)
    return 0


def status(feed: FeedState) -> str:
    if feed.gone_at is not None:
        return "gone"
    if feed.error_count:
        return f"failing×{feed.error_count}"
    if feed.last_success_at is None:
        return "new"
    return "ok"


def feed_json(feed: FeedState, seen: int) -> dict[str, object]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "url": shown_url(feed.url),
        "name": feed.name or feed.title,
        "status": status(feed).split("×")[0],
        "errors_in_a_row": feed.error_count,
        "last_error": mask_urls(feed.last_error) if feed.last_error else None,
        "last_status": feed.last_status,
        "last_success": iso(feed.last_success_at),
        "last_new_item": iso(feed.last_new_item_at),
        "next_check": iso(feed.next_check_at if feed.gone_at is None else None),
        "moved_to": shown_url(feed.moved_to) if feed.moved_to else None,
        "items_seen": seen,
        "failing_since": iso(feed.failing_since),
        "unhealthy_since": iso(feed.unhealthy_since),
        "unhealthy_reason": feed.unhealthy_reason,
    }


HEADER = ("STATE", "FEED", "ITEMS", "LAST OK", "NEXT CHECK")
RIGHT = {2, 3}
NAME_WIDTH = 40


def feed_row(feed: FeedState, seen: int, now: datetime, sub: Subscription | None) -> Row:
    """One row of the table, with what needs more room than a cell on lines of its own."""
    name = feed.name or feed.title or shown_url(feed.url)
    cells = (
        status(feed),
        clipped(name, NAME_WIDTH),
        str(seen),
        _ago(feed.last_success_at, now),
        "—" if feed.gone_at else _until(feed.next_check_at, now),
    )
    notes = []
    if feed.moved_to:
        notes.append(f"moved to {shown_url(feed.moved_to)}")
    if feed.error_count and feed.last_error:
        notes.append(mask_urls(feed.last_error))
    if feed.unhealthy_since is not None:
        notes.append(
            f"unhealthy ({feed.unhealthy_reason}) for "
            f"{approximate_duration(now - feed.unhealthy_since)}: feed.unhealthy raised"
        )
    if sub is not None:
        notes.append(websub_note(sub, now))
    return Row(cells, notes)


def websub_json(sub: Subscription | None) -> dict[str, object]:
    if sub is None:
        return {"websub": None}
    lease_end = sub.expires_at.isoformat() if sub.expires_at else None
    return {
        "websub": {
            "state": sub.state,
            "hub": shown_url(sub.hub),
            "topic": shown_url(sub.topic),
            "lease_end": lease_end,
            "pushes": sub.pushes,
            "last_push": sub.last_push_at.isoformat() if sub.last_push_at else None,
            "last_error": mask_urls(sub.last_error) if sub.last_error else None,
        }
    }


def websub_note(sub: Subscription, now: datetime) -> str:
    """`websub verified at HUB, lease ends in 9d, 12 pushes (last 3m ago)`."""
    line = f"websub {sub.state} at {shown_url(sub.hub)}"
    if sub.state == "verified" and sub.expires_at is not None:
        line += f", lease ends {_until(sub.expires_at, now)}"
    if sub.pushes:
        line += f", {plural(sub.pushes, 'push', 'pushes')} (last {_ago(sub.last_push_at, now)})"
    if sub.last_error and sub.state != "verified":
        line += f": {mask_urls(sub.last_error)}"
    return line


def _ago(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{approximate_duration(now - moment)} ago"


def _until(moment: datetime, now: datetime) -> str:
    return "now" if moment <= now else f"in {approximate_duration(moment - now)}"
