"""What every target module shares: the request it builds, the alert it renders, its description.

A target module (standard.py, slack.py, …) exposes one `TARGET = Target(...)`: its name, its
settings (a WebhookConfig subclass naming its `format`, with the keys only it takes), its
documented rate limit and concurrency, which settings are secret, `build(hook, alert, timestamp)`
returning the request for one attempt, and optionally `hint(response)` reading rate-limit headers
or bodies (Discord's `retry_after`) and `message_ref(response)`, the id of the message created
(kept so updates of a story can edit it). A target whose build runs user code (`json`) also gives
`build_off_loop`, which `Target.request` awaits instead. Rendering is pure and deterministic: the
same stored alert gives the same body on every attempt.

A target not spoken to over HTTP (`email`: SMTP; `apprise`: its own plugins) still builds its
message as an `OutgoingRequest` (the MIME message, the notification's title and body), and gives
`send(hook, request)`, which hands it over within the attempt's deadline and raises a
DeliveryError that says what happened (a 4xx reply is transient, a 5xx rejected for good), or
returns what the server answered (`SMTP 250 …`) for the log.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
from pydantic import ValidationError

from monitor.delivery.settings import WebhookConfig
from monitor.errors import PermanentDeliveryError
from monitor.events import AlertCreated, AlertUpdated, Event, MatchedTerm, parse_event

SEVERITY_COLORS = {"low": 0x6C757D, "medium": 0x1F77B4, "high": 0xFF8C00, "critical": 0xD62728}


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"  # PATCH: an edit of a message sent before (Discord); PUT (Matrix)

    def __repr__(self) -> str:  # URL, signature and tokens stay out of logs
        return f"OutgoingRequest(bytes={len(self.body)})"


@dataclass(frozen=True, slots=True)
class RateHint:
    """What an answer says about the target's rate limit: pause the whole target this long."""

    pause: timedelta | None = None


MAX_PAUSE = 3600.0  # seconds: the longest pause an answer may ask of a target


def answer_object(response: httpx.Response) -> dict[str, object]:
    """The JSON object an answer carries; empty when it carries none (not JSON, or not an
    object): what a target reads a rate limit or a message id from."""
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def pause_of(value: object, per_second: float = 1.0) -> timedelta | None:
    """A pause an answer asks for: a number of seconds (of milliseconds with `per_second`
    1000), capped at MAX_PAUSE; None when `value` is not a number of zero or more."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=min(float(value) / per_second, MAX_PAUSE))
    return None


@dataclass(frozen=True, slots=True)
class Alert:
    """One stored event on its way to a target. `id` is the `webhook-id`; `raw` the stored body,
    sent as is by `standard`; `event` that body parsed (monitor.events), None when it is not a
    monitor event (a body written by hand into the store): `standard` still sends it, every
    other target fails the attempt, saying so (`typed()`)."""

    id: str
    raw: str
    event: Event | None
    reply_to: str | None = None  # the target's id of the message an update may edit

    @classmethod
    def parse(cls, alert_id: str, payload: str) -> Alert:
        try:
            event: Event | None = parse_event(payload)
        except ValidationError:
            event = None
        return cls(alert_id, payload, event)

    @property
    def type(self) -> str:
        return "unknown" if self.event is None else self.event.type

    def typed(self) -> Event:
        """The event, or PermanentDeliveryError: only `standard` can send a foreign body."""
        if self.event is None:
            raise PermanentDeliveryError(
                "the stored body is not a monitor event (see `monitor schema events`): "
                "only format `standard` sends it as is"
            )
        return self.event


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert (`alert.created`, `alert.updated`) as chat targets show it: texts trimmed, a
    title and a rule title always, a link only when it is http(s)."""

    id: str
    rule_id: str
    rule_title: str
    severity: str
    score: float
    title: str
    link: str | None
    summary: str
    published: str | None
    feed_name: str
    timestamp: str
    matches: tuple[MatchedTerm, ...]
    also: tuple[str, ...] = ()  # the titles of the other rules the item matched

    @property
    def rules_label(self) -> str:
        """The rule's title, and the other rules the item matched: `A (also: B, C)`."""
        if not self.also:
            return self.rule_title
        return f"{self.rule_title} (also: {', '.join(self.also)})"

    @classmethod
    def of(cls, message_id: str, event: AlertCreated | AlertUpdated) -> AlertView:
        data, item = event.data, event.data.item
        return cls(
            id=message_id,
            rule_id=data.rule.id.strip(),
            rule_title=data.rule.title.strip() or data.rule.id.strip(),
            severity=data.rule.severity,
            score=data.score,
            title=item.title.strip() or "(untitled item)",
            link=web_link(item.link),
            summary=item.summary.strip(),
            published=(item.published or "").strip() or None,
            feed_name=(item.feed.name or "").strip() or (item.feed.url or "").strip(),
            timestamp=event.timestamp,
            matches=tuple(data.matches),
            also=tuple(other.title.strip() or other.id for other in data.also),
        )

    def terms(self, limit: int = 10) -> list[str]:
        """The distinct matched texts, in order: what fired."""
        seen: dict[str, None] = {}
        for hit in self.matches:
            text = hit.text.strip() or hit.term.strip()
            if text:
                seen.setdefault(text, None)
        return list(seen)[:limit]


def web_link(value: str | None) -> str | None:
    """`value` when it is an http(s) URL (a feed may put anything in a link), else None."""
    return value if value is not None and value.startswith(("http://", "https://")) else None


Build = Callable[[WebhookConfig, Alert, int], OutgoingRequest]
BuildOffLoop = Callable[[WebhookConfig, Alert, int], Awaitable[OutgoingRequest]]
Hint = Callable[[httpx.Response], RateHint]
MessageRef = Callable[[httpx.Response], str | None]
# hands a built message over without HTTP; raises DeliveryError, returns the server's answer
Send = Callable[[WebhookConfig, OutgoingRequest], Awaitable[str]]


def no_hint(_response: httpx.Response) -> RateHint:
    return RateHint()


def no_ref(_response: httpx.Response) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """A delivery target: one per module, describing itself."""

    name: str
    build: Build
    settings: type[WebhookConfig]  # its keys, defaults and checks (a subclass naming `format`)
    rate_limit: float | None = None  # requests per second; None: unlimited
    burst: int = 1  # requests allowed at once before the rate applies
    concurrency: int = 8
    secret_fields: tuple[str, ...] = ("url", "secret")
    hint: Hint = no_hint
    message_ref: MessageRef = no_ref  # the id of the message a 2xx answer created, for edits
    max_body_bytes: int | None = None
    notes: str = ""
    build_off_loop: BuildOffLoop | None = None  # for targets whose build runs user code (json)
    send: Send | None = None  # for targets not spoken to over HTTP (email, apprise)

    async def request(self, hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
        """The request for one attempt, built off the event loop when the target says so."""
        if self.build_off_loop is not None:
            return await self.build_off_loop(hook, alert, timestamp)
        return self.build(hook, alert, timestamp)

    def describe(self) -> str:
        rate = "unlimited" if self.rate_limit is None else f"{self.rate_limit:g}/s"
        return (
            f"{self.name}: rate {rate} (burst {self.burst}), {self.concurrency} at once, "
            f"secret: {', '.join(self.secret_fields)}"
        )


def json_body(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
