"""Format `json`: the body is rendered from the webhook's own Jinja2 template.

The template runs in Jinja2's immutable sandbox (no attribute tricks, no writes), with
undefined names as errors, and sees `alert` (the event's `data`: for alerts id, rule, score,
matches, item), `event` (the whole event: branch on `event.type` for `alert.updated`,
`alert.digest`, `feed.unhealthy`, …) and `notice` (any event as `title`, `text` and `link`, the
short text chat targets send: `{"text": {{ notice.title | tojson }}}` works for every type).
Filters: Jinja2's `tojson` (use it for every string: it quotes and escapes) and `clip(n)` (cut
to n characters, marked with `…`). The output must be JSON; anything else fails the attempt
with a message saying why. With `secret`, the Standard Webhooks headers sign the rendered body.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field, field_validator

from monitor import __version__
from monitor.delivery.base import Alert, OutgoingRequest, Target
from monitor.delivery.notices import notice
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.standard import requires, signature_headers
from monitor.delivery.text import clip
from monitor.errors import PermanentDeliveryError
from monitor.events import Event, document

if TYPE_CHECKING:
    from jinja2 import Template

NAME = "json"
MAX_OUTPUT = 1_000_000


def _clip(value: object, limit: int = 200) -> str:
    return clip(str(value), limit)


@lru_cache(maxsize=64)
def compile_template(source: str) -> Template:
    """The template compiled in the sandbox; ValueError (a config error) if it does not parse."""
    # jinja2 is imported on first use: most configs have no template, and every start
    # (each CLI command too) would pay for importing it
    from jinja2 import StrictUndefined, TemplateError  # noqa: PLC0415
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: PLC0415

    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["clip"] = _clip
    try:
        return env.from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (template line {line})" if line else ""
        raise ValueError(f"template does not compile{where}: {exc.message}") from None


def summary_of(message_id: str, event: Event) -> dict[str, object]:
    """`notice` in templates: any event as a title, plain text and link (chat-style bodies)."""
    note = notice(message_id, event)
    return {"title": note.title, "text": note.text(), "link": note.link}


def render(source: str, alert: Alert) -> bytes:
    """The body; PermanentDeliveryError when the template fails or its output is not JSON."""
    from jinja2 import TemplateError  # noqa: PLC0415 - see compile_template

    event = alert.typed()
    whole = document(event)
    try:
        text = compile_template(source).render(
            alert=whole["data"], event=whole, notice=summary_of(alert.id, event)
        )
    except (TemplateError, ValueError, TypeError) as exc:
        raise PermanentDeliveryError(f"template failed: {type(exc).__name__}: {exc}") from None
    if len(text) > MAX_OUTPUT:
        raise PermanentDeliveryError(f"template output over {MAX_OUTPUT} characters")
    try:
        json.loads(text)
    except ValueError as exc:
        raise PermanentDeliveryError(f"template output is not JSON: {exc}") from None
    return text.encode("utf-8")


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
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_template(value)
        return value

    def format_problem(self) -> str | None:
        if self.template is None:
            return "format `json` needs a `template` that renders the JSON body"
        return None


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    assert isinstance(hook, JsonWebhook)
    assert hook.template is not None
    body = render(hook.template, alert)
    headers = {
        "content-type": "application/json",
        "user-agent": f"monitor/{__version__}",
        **signature_headers(hook, alert.id, timestamp, body),
    }
    return OutgoingRequest(hook.url, headers, body)


TARGET = Target(
    name=NAME,
    build=build,
    settings=JsonWebhook,
    concurrency=8,
    secret_fields=("url", "secret"),
    notes="Custom JSON from a sandboxed Jinja2 template; signed when `secret` is set.",
)
