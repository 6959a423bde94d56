"""What each CLI command does; `monitor.cli` only parses arguments and calls these."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from monitor import daemon
from monitor.config import (
    CONFIG_FILE,
    LoadedConfig,
    combined_schema,
    config_schema,
    load_config,
    rules_schema,
)
from monitor.errors import ConfigError, StoreError
from monitor.feeds.normalize import html_to_text
from monitor.matching import explain as explain_match
from monitor.models import Item

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
log = logging.getLogger("monitor")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _load(directory: Path) -> LoadedConfig | None:
    try:
        return load_config(directory)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        return None


def check(directory: Path) -> int:
    config = _load(directory)
    if config is None:
        return EXIT_INVALID
    print(
        f"{directory / CONFIG_FILE}: valid — {len(config.settings.feeds)} feeds, "
        f"{len(config.matcher.rules)} rules in {len(config.rule_files)} files, "
        f"{len(config.settings.webhooks)} webhooks"
    )
    return EXIT_OK


def run(directory: Path, *, once: bool, max_wait: timedelta) -> int:
    config = _load(directory)
    if config is None:
        return EXIT_INVALID
    try:
        if once:
            summary = asyncio.run(daemon.run_once(config, max_wait))
            print(summary.line())
        else:
            asyncio.run(daemon.run_daemon(config))
    except StoreError as exc:
        log.error("storage: %s", exc)  # noqa: TRY400 - users need the message, not a traceback
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def schema(kind: str | None, out: IO[str]) -> int:
    if kind == "config":
        document = config_schema()
    elif kind == "rules":
        document = rules_schema()
    else:
        document = combined_schema()
    json.dump(document, out, indent=2, ensure_ascii=False)
    out.write("\n")
    return EXIT_OK


def match(directory: Path, file: Path | None, *, explain: bool) -> int:
    config = _load(directory)
    if config is None:
        return EXIT_INVALID
    errors = 0
    stream = sys.stdin if file is None else _open(file)
    if stream is None:
        return EXIT_INVALID
    with stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            item, item_id, error = item_from_json(raw)
            if item is None:
                errors += 1
                print(f"{file or '<stdin>'}:{number}: {error}", file=sys.stderr)
                continue
            for found in config.matcher.match(item):
                if explain:
                    print(explain_match(item, found))
                    print()
                else:
                    line = {
                        "item_id": item_id,
                        "rule_id": found.rule_id,
                        "score": round(found.score, 1),
                        "matches": found.matches_json(),
                    }
                    print(json.dumps(line, ensure_ascii=False))
    return EXIT_INVALID if errors else EXIT_OK


def _open(file: Path) -> IO[str] | None:
    try:
        return file.open(encoding="utf-8")
    except OSError as exc:
        print(f"{file}: cannot read: {exc.strerror}", file=sys.stderr)
        return None


def item_from_json(raw: str) -> tuple[Item | None, str, str]:
    """One `monitor match` input line as an Item and its item_id, or an error message."""
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, "", f"not JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(data, dict):
        return None, "", "expected a JSON object"
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        return None, "", "`title` (a non-empty string) is required"
    fields = {
        key: data.get(key)
        for key in ("summary", "description", "content", "id", "link", "lang", "published")
    }
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            return None, "", f"`{key}` must be a string"
    published, error = _published(fields["published"])
    if error:
        return None, "", error
    summary = fields["summary"] or fields["description"]
    item = Item(
        title=html_to_text(title, multiline=False),
        summary=html_to_text(summary or fields["content"] or ""),
        content=html_to_text(fields["content"] or "") if summary else "",
        link=fields["link"],
        guid=fields["id"],
        published=published,
        lang=fields["lang"],
    )
    item_id = fields["id"] or fields["link"] or item.content_hash()
    return item, item_id, ""


def _published(value: str | None) -> tuple[datetime | None, str]:
    if not value:
        return None, ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None, f"`published` {value!r} is not ISO 8601"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), ""
