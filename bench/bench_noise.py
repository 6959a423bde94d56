"""What noise control costs: routing deliveries into story groups and digests, and an idle pass.

    .venv/bin/python -m bench.bench_noise [--rounds 10] [--storage URL]

The labeled en/es/ru items of tests/data/grouping (89 items, each a news item of one of the
shipped rules) are recorded `--rounds` times over, as if that many outlets each reported every
item, as alerts for three webhooks: `group: 12h`, `group: 12h` + `digest: 1h`, and a plain one.
Then `monitor.delivery.noise.route_webhook` routes them in passes of up to 500, as the
dispatcher does; the figures are deliveries routed per second per webhook, how many stories the
groups came to, and the cost of a pass with nothing to do (paid once a second per webhook with
groups, digests or quiet hours). SQLite in a temporary folder unless --storage names another
database (which must be empty). A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from monitor.delivery import noise
from monitor.delivery.settings import WebhookConfig
from monitor.events import alert_created
from monitor.models import Item, Match
from monitor.store import NewAlert, SeenItem, Store
from monitor.store.tables import story_groups

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "grouping"
SECRET = "whsec_YmVuY2gtbm9pc2Utc2VjcmV0LTAxMjM0NTY3ODk="
HOOKS = {
    "grouped": {"group": "12h"},
    "digest": {"group": "12h", "digest": "1h"},
    "plain": {},
}


def labeled() -> list[dict[str, str]]:
    rows = []
    for name in ("dev.jsonl", "heldout.jsonl"):
        with (DATA / name).open(encoding="utf-8") as lines:
            rows += [json.loads(line) for line in lines if line.strip()]
    return rows


def record(store: Store, rounds: int) -> int:
    """Every labeled item once per round, each round a feed of its own; returns alerts made."""
    now = datetime.now(UTC)
    urls = [(f"https://outlet-{r}.example/rss", f"outlet {r}") for r in range(rounds)]
    store.sync_feeds(urls, now)
    made = 0
    for feed in store.feeds():
        seen = []
        for row in labeled():
            alert_id = f"alrt_{feed.id}_{row['id']}"
            item = Item(
                title=row["title"],
                summary=row.get("summary", ""),
                link=f"{feed.url}/{row['id']}",
                guid=row["id"],
                lang=row.get("lang"),
                feed_url=feed.url,
                feed_name=feed.name or "",
            )
            rule = row.get("rule") or "russia-cuba-contacts"
            match = Match(rule, rule, "high", 80.0)
            payload = alert_created(alert_id, item, match, now)
            seen.append(
                SeenItem(item, (NewAlert(alert_id, rule, "high", 80.0, payload, tuple(HOOKS)),))
            )
            made += 1
        store.record_poll(
            feed.id, now, next_check_at=now, etag=None, last_modified=None, title=None, seen=seen
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="outlets reporting every item")
    parser.add_argument("--storage", help="an empty database URL (default: a temporary SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(args.storage or f"sqlite:///{Path(folder) / 'monitor.db'}")
        alerts = record(store, args.rounds)
        stories = len({row.get("event") for row in labeled()})
        print(
            f"{alerts} alerts per webhook ({args.rounds} outlets x {alerts // args.rounds} items,"
            f" {stories} labeled stories)"
        )
        for name, settings in HOOKS.items():
            hook = WebhookConfig.model_validate(
                {"name": name, "url": "http://127.0.0.1:9/", "secret": SECRET, **settings}
            )
            started = time.perf_counter()
            passes = routed = 0
            while True:
                summary = noise.route_webhook(store.engine, hook, datetime.now(UTC))
                if not summary.routed:
                    break
                passes += 1
                routed += summary.routed
            seconds = time.perf_counter() - started
            with store.engine.connect() as db:
                groups = db.scalar(sa.select(sa.func.count()).where(story_groups.c.webhook == name))
            idle = time.perf_counter()
            for _ in range(100):
                noise.route_webhook(store.engine, hook, datetime.now(UTC))
            idle_ms = (time.perf_counter() - idle) * 1000 / 100
            rate = routed / seconds if seconds else 0.0
            print(
                f"{name:8} routed {routed} in {passes} passes: {seconds:.2f}s, {rate:.0f}/s; "
                f"{groups} groups; idle pass {idle_ms:.2f} ms"
            )
        store.close()


if __name__ == "__main__":
    main()
