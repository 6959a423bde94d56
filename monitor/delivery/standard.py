"""Format `standard`: JSON signed per the Standard Webhooks specification.

Headers: `webhook-id` (the event's id, for alerts the alert id; the same on every attempt),
`webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`: `v1,` + base64 of
HMAC-SHA256, keyed with the base64-decoded secret, over `{webhook-id}.{webhook-timestamp}.{body}`.
While a secret is being rotated (`secret: [new, old]`) the header carries one signature per
secret, separated by spaces, so receivers holding either accept the alert. The body is the stored
event (`alert.created`, or `alert.updated`, `alert.digest`, `feed.unhealthy`, … as queued in the
outbox), sent as is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field

from monitor import __version__
from monitor.delivery.base import Alert, OutgoingRequest, Target
from monitor.delivery.settings import WebhookConfig

if TYPE_CHECKING:  # the store (SQLAlchemy) is not imported for reading a config
    from monitor.store import DueDelivery

NAME = "standard"
CONTENT_TYPE = "application/json"


def requires(*keys: str) -> Any:
    """`json_schema_extra` marking keys required in the schema that a validator requires (so
    that its message, not "missing key", is what a config gets)."""

    def extra(schema: dict[str, Any]) -> None:
        schema["required"] = [*schema.get("required", []), *keys]

    return extra


class StandardWebhook(WebhookConfig):
    """The settings of format `standard`, the default: every alert is signed."""

    model_config = ConfigDict(json_schema_extra=requires("secret"))

    format: Literal["standard"] = Field(
        default="standard",
        description="`standard` (the default): JSON signed per the Standard Webhooks "
        "specification; needs `secret`.",
    )

    def format_problem(self) -> str | None:
        if self.secret is None:
            return "format `standard` signs every alert and needs a `secret` (`whsec_` + base64)"
        return None


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,…` signature for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    hook: WebhookConfig, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and, when the hook has secrets, `webhook-signature`."""
    headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    keys = hook.signing_keys()
    if keys:
        headers["webhook-signature"] = " ".join(
            sign(key, message_id, timestamp, body) for key in keys
        )
    return headers


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    body = alert.raw.encode("utf-8")
    headers = {
        "content-type": CONTENT_TYPE,
        "user-agent": f"monitor/{__version__}",
        **signature_headers(hook, alert.id, timestamp, body),
    }
    return OutgoingRequest(hook.url, headers, body)


def build_request(hook: WebhookConfig, delivery: DueDelivery, timestamp: int) -> OutgoingRequest:
    """The request for one attempt of `delivery` to `hook`."""
    return build(hook, Alert.parse(delivery.message_id, delivery.payload), timestamp)


TARGET = Target(
    name=NAME,
    build=build,
    settings=StandardWebhook,
    concurrency=8,
    secret_fields=("url", "secret"),
    notes="Standard Webhooks: signed JSON; the receiver deduplicates on webhook-id.",
)
