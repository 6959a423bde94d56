"""What every target module shares: the request it builds, the alert it renders, its description.

A target module (standard.py, slack.py, …) exposes one `TARGET = Target(...)`: its name, its
documented rate limit and concurrency, which settings are secret, `build(hook, alert, timestamp)`
returning the request for one attempt, and optionally `hint(response)` reading rate-limit headers
or bodies (Discord's `retry_after`) and `message_ref(response)`, the id of the message created
(kept so updates of a story can edit it). Rendering is pure and deterministic: the same stored alert
gives the same body on every attempt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from monitor.delivery.settings import WebhookConfig

SEVERITY_COLORS = {"low": 0x6C757D, "medium": 0x1F77B4, "high": 0xFF8C00, "critical": 0xD62728}


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"  # PATCH: an edit of a message sent before (Discord)

    def __repr__(self) -> str:  # URL, signature and tokens stay out of logs
        return f"OutgoingRequest(bytes={len(self.body)})"


@dataclass(frozen=True, slots=True)
class RateHint:
    """What an answer says about the target's rate limit: pause the whole target this long."""

    pause: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """A stored event, read leniently (every field may be missing): `alert.created` and
    `alert.updated` fill the alert fields; other types (`alert.digest`, `feed.unhealthy`, …)
    are rendered from `data` by monitor.delivery.notices. `id` is the `webhook-id`."""

    id: str
    raw: str  # the stored JSON text, sent as is by `standard`
    event: Mapping[str, Any]
    rule_id: str
    rule_title: str
    severity: str
    score: float | None
    title: str
    link: str | None
    summary: str
    published: str | None
    feed_name: str
    feed_url: str
    timestamp: str | None
    matches: list[Mapping[str, Any]] = field(default_factory=list)
    type: str = "alert.created"
    reply_to: str | None = None  # the target's id of the message an update may edit

    @property
    def is_alert(self) -> bool:
        """An `alert.created`: rendered as the alert itself, not as a short notice."""
        return self.type == "alert.created"

    @property
    def data(self) -> Mapping[str, Any]:
        data = self.event.get("data")
        return data if isinstance(data, Mapping) else {}

    @classmethod
    def parse(cls, alert_id: str, payload: str) -> Alert:
        try:
            event = json.loads(payload)
        except ValueError:
            event = {}
        if not isinstance(event, dict):
            event = {}
        data = _mapping(event.get("data"))
        rule = _mapping(data.get("rule"))
        item = _mapping(data.get("item"))
        feed = _mapping(item.get("feed"))
        score = data.get("score")
        link = item.get("link")
        return cls(
            id=alert_id,
            raw=payload,
            event=event,
            rule_id=_text(rule.get("id")),
            rule_title=_text(rule.get("title")) or _text(rule.get("id")),
            severity=_text(rule.get("severity")) or "medium",
            score=float(score) if isinstance(score, int | float) else None,
            title=_text(item.get("title")) or "(untitled item)",
            link=link
            if isinstance(link, str) and link.startswith(("http://", "https://"))
            else None,
            summary=_text(item.get("summary")),
            published=_text(item.get("published")) or None,
            feed_name=_text(feed.get("name")) or _text(feed.get("url")),
            feed_url=_text(feed.get("url")),
            timestamp=_text(event.get("timestamp")) or None,
            matches=[m for m in data.get("matches") or [] if isinstance(m, Mapping)],
            type=_text(event.get("type")) or "alert.created",
        )

    def terms(self, limit: int = 10) -> list[str]:
        """The distinct matched texts, in order: what fired."""
        seen: dict[str, None] = {}
        for hit in self.matches:
            text = _text(hit.get("text")) or _text(hit.get("term"))
            if text:
                seen.setdefault(text, None)
        return list(seen)[:limit]


Build = Callable[[WebhookConfig, Alert, int], OutgoingRequest]
Hint = Callable[[httpx.Response], RateHint]
MessageRef = Callable[[httpx.Response], str | None]


def no_hint(_response: httpx.Response) -> RateHint:
    return RateHint()


def no_ref(_response: httpx.Response) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """A delivery target: one per module, describing itself."""

    name: str
    build: Build
    rate_limit: float | None = None  # requests per second; None: unlimited
    burst: int = 1  # requests allowed at once before the rate applies
    concurrency: int = 8
    secret_fields: tuple[str, ...] = ("url", "secret")
    hint: Hint = no_hint
    message_ref: MessageRef = no_ref  # the id of the message a 2xx answer created, for edits
    max_body_bytes: int | None = None
    notes: str = ""

    def describe(self) -> str:
        rate = "unlimited" if self.rate_limit is None else f"{self.rate_limit:g}/s"
        return (
            f"{self.name}: rate {rate} (burst {self.burst}), {self.concurrency} at once, "
            f"secret: {', '.join(self.secret_fields)}"
        )


def json_body(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
