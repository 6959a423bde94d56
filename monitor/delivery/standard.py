"""Format `standard`: JSON signed per the Standard Webhooks specification.

Headers: `webhook-id` (the alert id, the same on every attempt), `webhook-timestamp` (Unix
seconds of this attempt) and `webhook-signature`: `v1,` + base64 of HMAC-SHA256, keyed with the
base64-decoded secret, over `{webhook-id}.{webhook-timestamp}.{body}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from monitor import __version__
from monitor.delivery.settings import WebhookConfig, secret_bytes
from monitor.store import DueDelivery

NAME = "standard"
CONTENT_TYPE = "application/json"


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    url: str
    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:  # URL and signature stay out of logs
        return f"OutgoingRequest(bytes={len(self.body)})"


def build_request(hook: WebhookConfig, delivery: DueDelivery, timestamp: int) -> OutgoingRequest:
    """The request for one attempt of `delivery` to `hook`."""
    body = delivery.payload.encode("utf-8")
    headers = {
        "content-type": CONTENT_TYPE,
        "user-agent": f"monitor/{__version__}",
        "webhook-id": delivery.alert_id,
        "webhook-timestamp": str(timestamp),
    }
    if hook.secret is not None:
        headers["webhook-signature"] = sign(
            secret_bytes(hook.secret), delivery.alert_id, timestamp, body
        )
    return OutgoingRequest(hook.url, headers, body)
