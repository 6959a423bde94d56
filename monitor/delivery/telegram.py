"""Format `telegram`: a bot's message to a chat, through the Bot API's `sendMessage`.

`url` is the Bot API server (default `https://api.telegram.org`; a self-hosted Bot API server,
or a stand-in in tests). The bot's `token` goes into the request's path
(`POST /bot<token>/sendMessage`), so it is a secret of the request's URL as a Slack webhook's
path is: hidden from httpx's log, scrubbed from a refusal's excerpt, never in `repr`. `chat_id`
is the chat: a number (`-100…` for channels and supergroups) or `@channelusername`.

The text is HTML (`parse_mode: HTML`): feed text is escaped (`&`, `<`, `>`, and `"` in the
link's attribute) and cut between entities; the message keeps within Telegram's 4,096
characters (counted here in UTF-16 units, which is never fewer than Telegram's count after
entities are parsed), dropping whole lines at the end and marking the cut with `…`. Link
previews are off. Telegram lets a bot send about one message a second to a chat and 20 a minute
to a group: the default rate is the group one. A 429 answer carries `parameters.retry_after`
(seconds), which pauses the target.
"""

from __future__ import annotations

import re
from typing import Literal

import httpx
from pydantic import Field, SecretStr, field_validator

from monitor import __version__
from monitor.delivery import lines
from monitor.delivery.base import (
    Alert,
    AlertView,
    OutgoingRequest,
    RateHint,
    Target,
    answer_object,
    json_body,
    pause_of,
)
from monitor.delivery.notices import notice
from monitor.delivery.settings import UNSET, WebhookConfig
from monitor.delivery.text import utf16
from monitor.events import AlertCreated

NAME = "telegram"
API_URL = "https://api.telegram.org"
TEXT_MAX = 4096
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")
_CHAT = re.compile(r"^(-?\d+|@[A-Za-z][A-Za-z0-9_]{3,})$")


class TelegramWebhook(WebhookConfig):
    """The settings of format `telegram`: the bot's token, the chat, the Bot API server."""

    format: Literal["telegram"] = Field(description="`telegram`: a Bot API `sendMessage`.")
    url: str = Field(
        default=API_URL,
        description="The Bot API server: `https://api.telegram.org` (the default), or a "
        "self-hosted Bot API server.",
    )
    token: SecretStr = Field(
        description="The bot's token from @BotFather (`123456:AA…`): write `${TG_TOKEN}`. "
        "Kept out of logs."
    )
    chat_id: int | str = Field(
        description="The chat: its numeric id (`-100…` for channels and supergroups) or "
        "`@channelusername`.",
        json_schema_extra={"examples": [-1001234567890, "@my_alerts"]},
    )

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() == UNSET:  # a `${NAME}` unset, for a command not delivering
            return value
        if not _TOKEN.match(value.get_secret_value().strip()):
            raise ValueError("a bot token looks like `123456789:AA…` (from @BotFather)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("chat_id", mode="before")
    @classmethod
    def _check_chat(cls, value: object) -> str:
        shown = str(value).strip() if isinstance(value, int | str) else ""
        if not _CHAT.match(shown):
            raise ValueError("`chat_id` is a chat's number (like -1001234567890) or @username")
        return shown


def text(alert: Alert) -> str:
    """The message's HTML: the alert, or another event's notice, within TEXT_MAX."""
    event = alert.typed()
    if isinstance(event, AlertCreated):
        rows = lines.alert_lines(AlertView.of(alert.id, event))
    else:
        rows = lines.notice_lines(notice(alert.id, event))
    return lines.fit([lines.html(row) for row in rows], TEXT_MAX, utf16)


def method_url(hook: TelegramWebhook, method: str) -> str:
    return f"{hook.url.rstrip('/')}/bot{hook.token.get_secret_value()}/{method}"


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    assert isinstance(hook, TelegramWebhook)
    document = {
        "chat_id": str(hook.chat_id),
        "text": text(alert),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }
    headers = {"content-type": "application/json", "user-agent": f"monitor/{__version__}"}
    return OutgoingRequest(method_url(hook, "sendMessage"), headers, json_body(document))


def hint(response: httpx.Response) -> RateHint:
    """A 429's `parameters.retry_after` (seconds) pauses the target."""
    if response.status_code != 429:
        return RateHint()
    parameters = answer_object(response).get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return RateHint(pause_of(value))


TARGET = Target(
    name=NAME,
    build=build,
    settings=TelegramWebhook,
    rate_limit=20 / 60,  # Telegram: 20 messages a minute to a group
    burst=3,
    concurrency=1,
    secret_fields=("url", "token"),
    hint=hint,
    notes="Telegram Bot API; the bot token is in the request path.",
)
