"""Building blocks for end-to-end tests: feed documents served with validators, config folders."""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import yaml

from tests.support.servers import LocalServer, RecordedRequest, Reply

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "pipeline"
_HOURS_AGO = re.compile(r"\{\{hours-ago:(\d+)\}\}")


def feed_document(name: str, now: datetime | None = None) -> bytes:
    """A test feed from tests/data/pipeline with its `{{hours-ago:N}}` dates filled in."""
    moment = now or datetime.now(UTC)
    text = (DATA / name).read_text(encoding="utf-8")
    text = _HOURS_AGO.sub(
        lambda m: format_datetime(moment - timedelta(hours=int(m.group(1))), usegmt=True), text
    )
    return text.encode("utf-8")


def serve_feed(server: LocalServer, path: str, body: bytes) -> None:
    """Serve `body` at `path` with an ETag, answering a matching If-None-Match with 304."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def handler(request: RecordedRequest) -> Reply:
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(
            200, body, {"Content-Type": "application/rss+xml; charset=utf-8", "ETag": etag}
        )

    server.route(path, handler)


def write_config(
    directory: Path,
    *,
    feeds: list[dict[str, object]],
    webhooks: list[dict[str, object]] | None = None,
    defaults: dict[str, object] | None = None,
    storage: str | None = None,
    fetch: dict[str, object] | None = None,
) -> Path:
    """A config folder: monitor.yaml as given, and the pipeline tests' fixed rules beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(DATA / "rules", directory / "rules", dirs_exist_ok=True)
    document = {
        "version": 1,
        "storage": storage or f"sqlite:///{directory / 'data' / 'monitor.db'}",
        "rules": "rules/",
        "defaults": defaults or {"interval": "10m", "backfill": "24h"},
        "feeds": feeds,
        "webhooks": webhooks or [],
    }
    if fetch is not None:
        document["fetch"] = fetch
    (directory / "monitor.yaml").write_text(
        yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return directory


class HeldFeeds:
    """Serves havana-wire.xml at `paths` (no validators: always 200); the first `hold` requests
    wait until `release` is set."""

    def __init__(self, server: LocalServer, paths: Sequence[str], hold: int) -> None:
        self.server = server
        self.paths = tuple(paths)
        self.hold = hold
        self.release = threading.Event()
        self.arrived = 0
        self.lock = threading.Lock()
        self.body = feed_document("havana-wire.xml")
        for path in self.paths:
            server.route(path, self._handle)

    def _handle(self, _request: RecordedRequest) -> Reply:
        with self.lock:
            self.arrived += 1
            held = self.arrived <= self.hold
        if held:
            self.release.wait(60)
        return Reply(200, self.body, {"Content-Type": "application/rss+xml; charset=utf-8"})

    def urls(self) -> list[dict[str, object]]:
        return [{"url": self.server.url(path)} for path in self.paths]

    def wait_for_arrivals(self, count: int, timeout: float = 60) -> bool:
        """Whether `count` requests to the paths arrived within `timeout` seconds."""
        return self.server.wait_for(
            lambda reqs: len([r for r in reqs if r.path in self.paths]) >= count, timeout
        )
