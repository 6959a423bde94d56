"""Format `json`: the body is rendered from the webhook's own Jinja2 template.

The template runs in Jinja2's immutable sandbox (no attribute tricks, no writes), with
undefined names as errors, and sees `alert` (the event's `data`: for alerts id, rule, score,
matches, item), `event` (the whole event: branch on `event.type` for `alert.updated`,
`alert.digest`, `feed.unhealthy`, …) and `notice` (any event as `title`, `text` and `link`, the
short text chat targets send: `{"text": {{ notice.title | tojson }}}` works for every type).
Filters: Jinja2's `tojson` (use it for every string: it quotes and escapes) and `clip(n)` (cut
to n characters, marked with `…`). The output must be JSON; anything else fails the attempt
with a message saying why. With `secret`, the Standard Webhooks headers sign the rendered body.

A template is code: it renders in a worker process, off the event loop, within limits of time,
memory and size (monitor.delivery.template_worker, template_sandbox); going over one fails the
attempt for good, naming the limit. At config load each template is rendered once with a sample
of every event type its webhook receives (template_samples), so `monitor check` and a reload
refuse a template that fails, goes over a limit or does not produce JSON.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from monitor import __version__
from monitor.delivery import template_worker
from monitor.delivery.base import Alert, OutgoingRequest, Target
from monitor.delivery.notices import notice
from monitor.delivery.settings import ALERT_EVENTS, WebhookConfig
from monitor.delivery.standard import requires, signature_headers
from monitor.delivery.template_samples import sample
from monitor.errors import PermanentDeliveryError, TransientDeliveryError
from monitor.events import Event, EventType, document

NAME = "json"


def summary_of(message_id: str, event: Event) -> dict[str, object]:
    """`notice` in templates: any event as a title, plain text and link (chat-style bodies)."""
    note = notice(message_id, event)
    return {"title": note.title, "text": note.text(), "link": note.link}


def context_of(alert: Alert) -> dict[str, object]:
    """What a template sees: `alert`, `event` and `notice`."""
    event = alert.typed()
    whole = document(event)
    return {"alert": whole["data"], "event": whole, "notice": summary_of(alert.id, event)}


def _body(rendered: template_worker.Rendered) -> bytes:
    if rendered.text is None:
        error = rendered.error or "template failed"
        raise (PermanentDeliveryError if rendered.permanent else TransientDeliveryError)(error)
    try:
        json.loads(rendered.text)
    except ValueError as exc:
        raise PermanentDeliveryError(f"template output is not JSON: {exc}") from None
    return rendered.text.encode("utf-8")


def render(source: str, alert: Alert) -> bytes:
    """The body, rendered in a worker (this blocks: on the event loop use render_off_loop);
    PermanentDeliveryError when the template fails, goes over a limit or is not JSON."""
    return _body(template_worker.render(source, context_of(alert)))


async def render_off_loop(source: str, alert: Alert) -> bytes:
    """render(), the event loop going on meanwhile."""
    return _body(await template_worker.render_off_loop(source, context_of(alert)))


@lru_cache(maxsize=64)
def check_template(source: str, events: tuple[EventType, ...], *, grouped: bool = False) -> None:
    """ValueError unless `source` renders JSON, within the limits, from a sample of each of
    `events` (successes are remembered: a reload does not render unchanged templates again)."""
    for event_type in events:
        try:
            render(source, sample(event_type, grouped=grouped))
        except (PermanentDeliveryError, TransientDeliveryError) as exc:
            raise ValueError(f"with a sample `{event_type}` event, {exc}") from None


def _received(settings: dict[str, Any]) -> tuple[EventType, ...]:
    """The event types a webhook with these settings is sent: of its `events`, updates only
    with `group`, digests only with `digest` or `quiet` (a template for alerts alone, on the
    default `events`, is fine without them)."""
    events: list[EventType] = settings.get("events", list(ALERT_EVENTS))  # absent: invalid
    sent = {
        "alert.updated": settings.get("group") is not None,
        "alert.digest": settings.get("digest") is not None or settings.get("quiet") is not None,
    }
    return tuple(e for e in dict.fromkeys(events) if sent.get(e, True))


class JsonWebhook(WebhookConfig):
    """The settings of format `json`: the template that renders the body."""

    model_config = ConfigDict(json_schema_extra=requires("template"))

    format: Literal["json"] = Field(
        description="`json`: your own JSON from `template` (signed when `secret` is set)."
    )
    template: str | None = Field(
        default=None,
        description="A Jinja2 template (sandboxed) rendering the JSON body; it sees `alert` "
        "(the event's `data`), `event` (the whole event) and `notice` (any event as `title`, "
        "`text` and `link`).",
    )

    @field_validator("template")
    @classmethod
    def _renders(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            # jinja2 is imported on first use: most configs have no template, and every start
            # (each CLI command too) would pay for importing it
            from monitor.delivery.template_sandbox import compile_template  # noqa: PLC0415

            compile_template(value)
            grouped = info.data.get("group") is not None
            check_template(value, _received(info.data), grouped=grouped)
        return value

    def format_problem(self) -> str | None:
        if self.template is None:
            return "format `json` needs a `template` that renders the JSON body"
        return None


def _request(hook: JsonWebhook, alert: Alert, timestamp: int, body: bytes) -> OutgoingRequest:
    headers = {
        "content-type": "application/json",
        "user-agent": f"monitor/{__version__}",
        **signature_headers(hook, alert.id, timestamp, body),
    }
    return OutgoingRequest(hook.url, headers, body)


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    assert isinstance(hook, JsonWebhook)
    assert hook.template is not None
    return _request(hook, alert, timestamp, render(hook.template, alert))


async def build_off_loop(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    assert isinstance(hook, JsonWebhook)
    assert hook.template is not None
    return _request(hook, alert, timestamp, await render_off_loop(hook.template, alert))


TARGET = Target(
    name=NAME,
    build=build,
    build_off_loop=build_off_loop,
    settings=JsonWebhook,
    concurrency=8,
    secret_fields=("url", "secret"),
    notes="Custom JSON from a sandboxed Jinja2 template; signed when `secret` is set.",
)
