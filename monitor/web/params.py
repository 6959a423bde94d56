"""Query parameters of the alert listings (console, API, Atom), read into an `AlertFilter`.

The same names everywhere, so a console link and an API call say the same thing:
`rule`, `severity`, `lang`, `feed` (a feed's id), `since` and `until` (an ISO 8601 time, or
`since=24h`: a duration back from now), `cursor` (where the previous page ended), `limit`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.durations import parse_duration
from monitor.store.reads import MAX_PAGE, AlertFilter, Cursor

SEVERITIES = ("low", "medium", "high", "critical")


class ParameterError(ValueError):
    """A query parameter that cannot be read; its message names it."""


@dataclass(frozen=True, slots=True)
class Listing:
    where: AlertFilter
    cursor: Cursor | None
    limit: int


def _moment(name: str, text: str, now: datetime) -> datetime:
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParameterError(f"{name}: not a time (ISO 8601) nor a duration (24h, 7d)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name, "").strip()
    return value[:200] or None


def _feed(query: Mapping[str, str]) -> int | None:
    raw = _text(query, "feed")
    if raw is None:
        return None
    if not raw.isdigit():
        raise ParameterError("feed: a feed's id (a number)")
    return int(raw)


def _limit(query: Mapping[str, str], default: int) -> int:
    raw = _text(query, "limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ParameterError(f"limit: a number from 1 to {MAX_PAGE}")
    return int(raw)


def listing(query: Mapping[str, str], now: datetime, *, default_limit: int = 50) -> Listing:
    """The filter, cursor and page size a query asks for; ParameterError names what is wrong."""
    severity = _text(query, "severity")
    if severity is not None and severity not in SEVERITIES:
        raise ParameterError(f"severity: one of {', '.join(SEVERITIES)}")
    since, until = _text(query, "since"), _text(query, "until")
    where = AlertFilter(
        rule=_text(query, "rule"),
        severity=severity,
        lang=_text(query, "lang"),
        feed=_feed(query),
        since=None if since is None else _moment("since", since, now),
        until=None if until is None else _moment("until", until, now),
    )
    raw_cursor = _text(query, "cursor")
    cursor = None if raw_cursor is None else Cursor.decode(raw_cursor)
    if raw_cursor is not None and cursor is None:
        raise ParameterError("cursor: not one this server gave")
    return Listing(where, cursor, _limit(query, default_limit))


def filter_query(query: Mapping[str, str]) -> dict[str, str]:
    """The filter parameters of `query` that are set (for links to the next page)."""
    names = ("rule", "severity", "lang", "feed", "since", "until", "limit")
    return {name: query[name] for name in names if query.get(name)}
