"""When to ask again, as the response says: Retry-After, Cache-Control max-age, Expires.

The scheduler takes the larger of the feed's interval and these (capped); they never shorten it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime


def retry_after(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """Retry-After (seconds or an HTTP date) as a delay from `now`; None when absent or invalid."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return timedelta(seconds=int(value))
    when = _http_date(value)
    if when is None:
        return None
    return max(timedelta(0), when - now)


def cache_hint(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """How long the response says it stays fresh (Cache-Control max-age, else Expires)."""
    directives = _cache_control(headers.get("cache-control", ""))
    if "no-store" in directives or "no-cache" in directives:
        return timedelta(0)
    max_age = directives.get("max-age")
    if max_age is not None and max_age.isdigit():
        age = headers.get("age", "").strip()
        fresh = int(max_age) - (int(age) if age.isdigit() else 0)
        return timedelta(seconds=max(0, fresh))
    expires = headers.get("expires", "").strip()
    if not expires:
        return None
    when = _http_date(expires)
    if when is None:
        return timedelta(0)  # an invalid Expires ("0", "-1") means "already expired" (RFC 9111)
    origin = _http_date(headers.get("date", "")) or now
    return max(timedelta(0), when - origin)


def _cache_control(value: str) -> dict[str, str | None]:
    directives: dict[str, str | None] = {}
    for part in value.split(","):
        name, _, argument = part.strip().partition("=")
        if name:
            directives[name.strip().lower()] = argument.strip().strip('"') if argument else None
    return directives


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when
