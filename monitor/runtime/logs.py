"""Logging: readable lines by default, JSON lines for machines (`--log-format json`).

Credentials in URLs (a password, an `apikey=` query value) are masked in every line, whoever
wrote it (monitor.http.urls). Both formats carry the stable keys the code passes as `extra=` —
`feed_url`, `rule_id`, `alert_id`, `message_id`, `webhook`, `attempt` — so logs can be searched
by feed, rule or alert. In text they follow the message as `key=value`; in JSON they are
top-level keys:

    2026-03-01T09:30:02 INFO    monitor.pipeline.refresh: alert … matched … [rule_id=… alert_id=…]
    {"time": "2026-03-01T09:30:02.114Z", "level": "info", "logger": "monitor.pipeline.refresh",
     "message": "alert alrt_… matched …", "alert_id": "alrt_…", "rule_id": "…", "feed_url": "…"}
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

from monitor.http.urls import mask_urls, shown_url

STABLE_KEYS = ("feed_url", "rule_id", "alert_id", "message_id", "webhook", "attempt")
FORMATS = ("text", "json")
FORMAT_ENV = "MONITOR_LOG_FORMAT"
QUIET_LIBRARIES = ("httpx", "httpcore", "apscheduler", "alembic", "watchfiles", "uvicorn")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"
        )

    def format(self, record: logging.LogRecord) -> str:
        line = mask_urls(super().format(record))
        keys = _keys(record)
        if not keys:
            return line
        suffix = " ".join(f"{key}={value}" for key, value in keys.items())
        first, newline, rest = line.partition("\n")  # a traceback stays below the keys
        return f"{first} [{suffix}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        document: dict[str, object] = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_urls(record.getMessage()),
            **_keys(record),
        }
        if record.exc_info:
            document["exception"] = mask_urls(self.formatException(record.exc_info))
        return json.dumps(document, ensure_ascii=False, default=str)


def _keys(record: logging.LogRecord) -> dict[str, object]:
    keys = {key: record.__dict__[key] for key in STABLE_KEYS if key in record.__dict__}
    if isinstance(url := keys.get("feed_url"), str):
        keys["feed_url"] = shown_url(url)
    return keys


def default_format() -> str:
    """`MONITOR_LOG_FORMAT` when it names a format, else text."""
    value = os.environ.get(FORMAT_ENV, "").strip().lower()
    return value if value in FORMATS else "text"


def setup_logging(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send monitor's log to stderr (or `stream`) at `level`, as `fmt` (text or json)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
