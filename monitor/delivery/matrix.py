"""Format `matrix`: a message in a Matrix room, through the client-server API.

`url` is the homeserver (`https://matrix.example.org`, the base of its client-server API);
`room_id` the room (`!abc:example.org`: the room's id, not an alias, as sending needs);
`access_token` a bot account's token, sent as `Authorization: Bearer` and kept out of logs.

Each delivery is `PUT /_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txnId}` with a
transaction id made of the event's id and the webhook's name: the same on every attempt, so a
retry after a lost answer is recognised by the homeserver and not posted twice (the spec's
idempotency of `txnId` per access token). The message is an `m.notice` by default (the msgtype
the spec gives bots: clients never answer it), with `body` in plain text and `formatted_body`
in `org.matrix.custom.html`; feed text is escaped. An event is at most 65,536 bytes in all;
the body and the HTML are each kept under 24,000 bytes, dropping whole lines at the end (`…`).
A 429 (`M_LIMIT_EXCEEDED`) carries `retry_after_ms`, which pauses the target.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

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
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.text import utf8
from monitor.events import AlertCreated

NAME = "matrix"
PART_MAX_BYTES = 24_000  # each of body and formatted_body: both fit an event's 65,536 bytes
_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]")


class MatrixWebhook(WebhookConfig):
    """The settings of format `matrix`: the homeserver (`url`), the room, the access token."""

    format: Literal["matrix"] = Field(description="`matrix`: a message in a Matrix room.")
    url: str = Field(
        description="The homeserver: the base URL of its client-server API, e.g. "
        "`https://matrix.example.org`."
    )
    room_id: str = Field(
        pattern=r"^![^:\s]+:\S+$",
        description="The room's id, `!…:server` (Room settings → Advanced), not an alias.",
    )
    access_token: SecretStr = Field(
        description="The access token of the account that posts: write `${MATRIX_TOKEN}`. "
        "Kept out of logs."
    )
    msgtype: Literal["m.notice", "m.text"] = Field(
        default="m.notice",
        description="`m.notice` (the default: what bots send, never answered by clients) or "
        "`m.text`.",
    )


def transaction_id(message_id: str, hook_name: str) -> str:
    """The same for every attempt of one delivery, so the homeserver posts it once."""
    return _UNSAFE.sub("_", f"monitor.{message_id}.{hook_name}")


def content(alert: Alert, msgtype: str) -> dict[str, str]:
    event = alert.typed()
    if isinstance(event, AlertCreated):
        rows = lines.alert_lines(AlertView.of(alert.id, event))
    else:
        rows = lines.notice_lines(notice(alert.id, event))
    return {
        "msgtype": msgtype,
        "body": lines.fit([lines.text(row) for row in rows], PART_MAX_BYTES, utf8),
        "format": "org.matrix.custom.html",
        "formatted_body": lines.fit(
            [lines.html(row) for row in rows], PART_MAX_BYTES, utf8, sep="<br>\n"
        ),
    }


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    assert isinstance(hook, MatrixWebhook)
    room = quote(hook.room_id, safe="")
    txn = transaction_id(alert.id, hook.name)
    url = f"{hook.url.rstrip('/')}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"
    headers = {
        "content-type": "application/json",
        "user-agent": f"monitor/{__version__}",
        "authorization": "Bearer " + hook.access_token.get_secret_value(),
    }
    return OutgoingRequest(url, headers, json_body(content(alert, hook.msgtype)), method="PUT")


def hint(response: httpx.Response) -> RateHint:
    """A 429's `retry_after_ms` pauses the target."""
    if response.status_code != 429:
        return RateHint()
    return RateHint(pause_of(answer_object(response).get("retry_after_ms"), per_second=1000))


TARGET = Target(
    name=NAME,
    build=build,
    settings=MatrixWebhook,
    rate_limit=0.2,  # Synapse's default `rc_message`: 0.2 a second, bursts of 10
    burst=10,
    concurrency=1,
    secret_fields=("url", "access_token"),
    hint=hint,
    notes="Matrix client-server API; the access token is a Bearer token.",
)
