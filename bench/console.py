"""How fast the console and the API answer with 100,000 alerts stored.

    .venv/bin/python -m bench.console [--alerts 100000] [--storage postgresql+psycopg://…/db]
                                      [--requests 20]

A store in a temporary folder (SQLite; or an empty PostgreSQL database given with --storage) is
filled with --alerts alerts over 7 days: one item each, across 100 feeds and the shipped rules,
each alert with its stored alert.created body (real match evidence) and a delivery to two
webhooks. The console's routes are served by uvicorn on 127.0.0.1, and each page is asked
--requests times after one warm-up request: median and 95th percentile wall milliseconds per
answer, client included. The target is the alerts page under 200 ms. A benchmark, not a test:
it prints figures (README "Benchmarks" and docs/console.md quote them).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn
import yaml
from starlette.applications import Starlette

from monitor.config.settings import LoadedConfig, load_config
from monitor.events import alert_created
from monitor.models import Item
from monitor.store import Store
from monitor.store.tables import alerts, deliveries, items
from monitor.web.context import WebContext
from monitor.web.routes import all_routes

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FEEDS = 100
CHUNK = 5000
TITLES = [
    ("Lavrov meets Cuban foreign minister in Moscow", "Talks on oil supplies and credit.", "en"),
    ("Rusia y Cuba firman acuerdo energético en La Habana", "Delegación rusa en Cuba.", "es"),
    ("Россия и Куба подписали соглашение о поставках", "Визит в Гавану.", "ru"),
    ("US Treasury adds sanctions on Cuban military firms", "OFAC widens the embargo.", "en"),
]


def _config(folder: Path, storage: str) -> LoadedConfig:
    shutil.copytree(REPO / "config" / "rules", folder / "rules")
    document = {
        "version": 1,
        "storage": storage,
        "rules": "rules/",
        "feeds": [
            {"url": f"https://feed{n}.example/rss", "name": f"Feed {n}"} for n in range(FEEDS)
        ],
        "webhooks": [],
    }
    (folder / "monitor.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return load_config(folder, {})


def _templates(config: LoadedConfig) -> list[tuple[Item, str, str, float, str]]:
    """(item, rule id, severity, score, payload text) of each title that a shipped rule takes."""
    found = []
    for title, summary, lang in TITLES:
        item = Item(title=title, summary=summary, lang=lang, feed_url="https://feed0.example/rss")
        for match in config.matcher.match(item)[:1]:
            body = alert_created("alrt_template", item, match, NOW)
            found.append((item, match.rule_id, match.severity, match.score, json.dumps(body)))
    return found


def seed(store: Store, config: LoadedConfig, count: int) -> None:
    store.sync_feeds([(f.url, f.name) for f in config.settings.feeds], NOW)
    feed_ids = [feed.id for feed in store.feeds()]
    templates = _templates(config)
    step = timedelta(days=7) / count
    with store.engine.begin() as db:
        for start in range(0, count, CHUNK):
            item_rows, alert_rows, delivery_rows = [], [], []
            for n in range(start, min(start + CHUNK, count)):
                item, rule_id, severity, score, payload = templates[n % len(templates)]
                moment = NOW - step * (count - n)
                alert_id = f"alrt_{n:08d}"
                item_rows.append({
                    "id": n + 1, "feed_id": feed_ids[n % FEEDS], "dedupe_key": f"k{n}",
                    "title": item.title, "summary": item.summary, "content": "",
                    "content_hash": f"{n:032d}", "first_seen_at": moment, "lang": item.lang,
                    "link": f"https://news.example/{n}",
                })  # fmt: skip
                alert_rows.append({
                    "id": alert_id, "item_id": n + 1, "rule_id": rule_id, "severity": severity,
                    "score": round(score * 10), "created_at": moment,
                    "payload": payload.replace("alrt_template", alert_id),
                })  # fmt: skip
                for hook in ("ops", "chat"):
                    delivery_rows.append({
                        "alert_id": alert_id, "webhook": hook, "created_at": moment,
                        "state": "delivered" if n % 50 else "failed", "attempts": 1,
                        "delivered_at": moment if n % 50 else None,
                        "last_error": None if n % 50 else "HTTP 500",
                    })  # fmt: skip
            db.execute(sa.insert(items), item_rows)
            db.execute(sa.insert(alerts), alert_rows)
            db.execute(sa.insert(deliveries), delivery_rows)
        if db.dialect.name == "postgresql":
            db.execute(sa.text("ANALYZE"))


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join()


def measure(client: httpx.Client, path: str, requests: int) -> tuple[float, float, int]:
    client.get(path).raise_for_status()
    times = []
    size = 0
    for _ in range(requests):
        start = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
        size = len(answer.content)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--storage", help="an empty database's URL (default: SQLite, temporary)")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        storage = args.storage or f"sqlite:///{folder}/monitor.db"
        config = _config(Path(folder) / "config", storage)
        store = Store.open(storage)
        started = time.perf_counter()
        seed(store, config, args.alerts)
        print(
            f"seeded {args.alerts:,} alerts in {time.perf_counter() - started:.1f} s "
            f"({store.engine.dialect.name})"
        )
        ctx = WebContext(store, lambda: config, lambda: NOW)
        app = Starlette(routes=all_routes(ctx))
        with serving(app) as base, httpx.Client(base_url=base, timeout=60) as client:
            deep = client.get("api/v1/alerts", params={"limit": 200}).json()["next"]
            for _ in range(100):  # 20,000 alerts down
                deep = client.get("api/v1/alerts", params={"limit": 200, "cursor": deep}).json()[
                    "next"
                ]
            pages = [
                ("/", "alerts page (50, as stories)"),
                ("/?rule=us-pressure-on-cuba", "alerts page, one rule"),
                ("/?lang=es&since=24h", "alerts page, Spanish, last 24 h"),
                (f"/?{httpx.QueryParams({'cursor': deep})}", "alerts page 20,000 alerts down"),
                ("/api/v1/alerts", "API alerts (50)"),
                ("/api/v1/alerts?limit=200", "API alerts (200)"),
                ("/api/v1/stories", "API stories"),
                ("/alerts.atom", "Atom feed (50)"),
                ("/feeds", "feeds page (100 feeds)"),
                ("/rules", "rules page"),
            ]
            print(f"{'page':<40} {'median ms':>10} {'p95 ms':>8} {'bytes':>9}")
            for path, label in pages:
                median, p95, size = measure(client, path, args.requests)
                print(f"{label:<40} {median:>10.1f} {p95:>8.1f} {size:>9,}")
        store.close()


if __name__ == "__main__":
    main()
