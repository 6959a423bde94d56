"""Value types shared by every config model: durations, backfill, http(s) URLs, strict models."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, WithJsonSchema

from monitor.durations import format_duration, parse_duration

DURATION_PATTERN = r"^\s*(\d+(\.\d+)?\s*[smhdwSMHDW]\s*)+$"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    # pydantic reports ValueError as a validation problem (TypeError would escape): hence TRY004
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("a duration is written as text like 30s, 10m, 2h or 1d")  # noqa: TRY004
    if isinstance(value, int | float):
        raise ValueError(  # noqa: TRY004
            f"duration {value!r} has no unit: write {value}s, {value}m, {value}h…"
        )
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    PlainValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "10m"]}),
]


def _backfill(value: object) -> timedelta | str:
    if isinstance(value, str) and value.strip().lower() in ("all", "none"):
        return value.strip().lower()
    try:
        return _duration(value)
    except ValueError:
        raise ValueError(
            f"invalid backfill {value!r}: write a duration like 24h, or `all`, or `none`"
        ) from None


Backfill = Annotated[
    timedelta | str,
    PlainValidator(_backfill),
    PlainSerializer(lambda v: v if isinstance(v, str) else format_duration(v), return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"enum": ["all", "none"]},
            ],
            "description": "On a feed's first poll, alert only on items published within this "
            "window; `all` alerts on every item, `none` on none.",
        }
    ),
]

_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)


def http_url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


class StrictModel(BaseModel):
    """Config models: unknown keys are errors, values are frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
