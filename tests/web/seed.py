"""A store with alerts in it, made the way the daemon makes them: items matched by the config's
rules, recorded with `Store.record_poll`, deliveries claimed and their attempts recorded."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from monitor.config.settings import LoadedConfig, load_config
from monitor.events import alert_created, new_alert_id
from monitor.http.urls import shown_url
from monitor.models import Item
from monitor.store import FAILED, AttemptRecord, NewAlert, SeenItem, Store
from tests.support.pipeline import write_config

_HOOK = {"format": "standard", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SECRET_FEED = "https://user:hunter2@news.example/feed?token=s3cret"
PLAIN_FEED = "https://wire.example/rss"

# (feed, title, summary, lang, hours before NOW)
ITEMS = [
    (
        PLAIN_FEED,
        "Russian delegation arrives in Havana for talks",
        "Moscow and Cuba discuss oil <supplies> & credit.",
        "en",
        30,
    ),
    (
        SECRET_FEED,
        "Delegación rusa llega a La Habana",
        "Rusia y Cuba firman acuerdos.",
        "es",
        29,
    ),
    (
        PLAIN_FEED,
        "US Treasury adds sanctions on Cuba",
        "Washington widens the embargo on Havana.",
        "en",
        5,
    ),
    (PLAIN_FEED, "Weather in Lisbon", "Sunny.", "en", 4),
    (
        SECRET_FEED,
        "Кремль: Россия и Куба подписали соглашение",
        "Москва и Гавана.",
        "ru",
        2,
    ),
]


@dataclass
class Seeded:
    config: LoadedConfig
    store: Store
    alert_ids: dict[str, str] = field(default_factory=dict)  # title -> alert id
    failed: str = ""  # the alert whose delivery to `ops` failed

    def close(self) -> None:
        self.store.close()


HOOKS = {"ops": "https://hooks.example/ops?key=topsecret", "chat": "https://hooks.example/chat"}


def seeded_config(
    directory: Path, storage_url: str, hooks: dict[str, str], http: dict[str, str] | None = None
) -> LoadedConfig:
    write_config(
        directory,
        feeds=[{"url": PLAIN_FEED, "name": "Wire"}, {"url": SECRET_FEED, "name": "Noticias"}],
        webhooks=[{"name": name, "url": url, **_HOOK} for name, url in hooks.items()],
        storage=storage_url,
    )
    if http is not None:
        path = directory / "monitor.yaml"
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        document["http"] = http
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return load_config(directory, {})


def seed(
    directory: Path,
    storage_url: str,
    *,
    hooks: dict[str, str] = HOOKS,
    http: dict[str, str] | None = None,
) -> Seeded:
    """The config at `directory` on `storage_url` (webhooks `ops` and `chat` at `hooks`, the
    `http:` section given), with ITEMS polled and alerted; the newest alert's delivery to `ops`
    failed (a permanent 400), the other `ops` ones pending, every `chat` one delivered."""
    config = seeded_config(directory, storage_url, hooks, http)
    store = Store.open(config.storage_url)
    store.sync_feeds([(feed.url, feed.name) for feed in config.settings.feeds], NOW)
    seeded = Seeded(config, store)
    feed_ids = {feed.url: feed.id for feed in store.feeds()}
    for url, title, summary, lang, hours in ITEMS:
        moment = NOW - timedelta(hours=hours)
        item = Item(
            title=title,
            summary=summary,
            link=f"https://news.example/{hours}",
            guid=f"g{hours}",
            published=moment,
            lang=lang,
            feed_url=url,
            feed_name="",
        )
        alerts = []
        for match in config.matcher.match(item):
            alert_id = new_alert_id(moment)
            seeded.alert_ids[title] = alert_id
            alerts.append(
                NewAlert(
                    alert_id,
                    match.rule_id,
                    match.severity,
                    match.score,
                    alert_created(alert_id, replace(item, feed_url=shown_url(url)), match, moment),
                    ("ops", "chat"),
                )
            )
        store.record_poll(
            feed_ids[url],
            moment,
            next_check_at=moment + timedelta(minutes=10),
            etag=None,
            last_modified=None,
            title=None,
            seen=[SeenItem(item, tuple(alerts))],
        )
    _deliver(seeded)
    return seeded


def _deliver(seeded: Seeded) -> None:
    """Every `chat` delivery delivered, the newest `ops` one failed, the other `ops` pending."""
    outbox = seeded.store.outbox
    due = outbox.claim_deliveries(NOW, timedelta(minutes=1), {"ops": 100, "chat": 100}, owner="t")
    newest = max((d for d in due if d.webhook == "ops"), key=lambda d: d.alert_id or "")
    seeded.failed = newest.alert_id or ""
    for delivery in due:
        if delivery.webhook == "chat":
            record = AttemptRecord("delivered", 200, None, 12)
            outbox.record_attempt(
                delivery.id, NOW, record, state="delivered", next_attempt_at=None, owner="t"
            )
        elif delivery is newest:
            record = AttemptRecord("permanent", 400, "HTTP 400: bad payload", 30)
            outbox.record_attempt(
                delivery.id, NOW, record, state=FAILED, next_attempt_at=None, owner="t"
            )
    outbox.release("t")
