"""A webhook receiver for tests, verifying Standard Webhooks signatures with its own code.

Verification is written here from the specification, independently of monitor's signer, and
cross-checked with the `standardwebhooks` package from PyPI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from standardwebhooks.webhooks import Webhook

from tests.support.servers import LocalServer, RecordedRequest, Reply

SECRET = "whsec_" + base64.b64encode(b"monitor-test-secret-0123456789ab").decode()


def expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(
        key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    timestamp: str
    body: dict[str, object]
    valid_signature: bool


class SignedReceiver:
    """POST /hook: answers with the next status of `statuses` (then 200), records deliveries."""

    def __init__(self, server: LocalServer, secret: str = SECRET, path: str = "/hook") -> None:
        self.server = server
        self.secret = secret
        self.path = path
        self._statuses: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        server.route(path, self._handle)

    @property
    def url(self) -> str:
        return self.server.url(self.path)

    def answer(self, statuses: Iterable[int | tuple[int, dict[str, str]]]) -> None:
        with self._lock:
            self._statuses = [s if isinstance(s, tuple) else (s, {}) for s in statuses]

    def _handle(self, request: RecordedRequest) -> Reply:
        msg_id = request.headers.get("webhook-id", "")
        timestamp = request.headers.get("webhook-timestamp", "")
        signatures = request.headers.get("webhook-signature", "").split()
        mine = expected_signature(self.secret, msg_id, timestamp, request.body)
        valid = any(hmac.compare_digest(mine, s) for s in signatures)
        if valid:  # and the reference implementation agrees
            Webhook(self.secret).verify(request.body, dict(request.headers))
        with self._lock:
            status, headers = self._statuses.pop(0) if self._statuses else (200, {})
            if 200 <= status < 300:
                self.deliveries.append(Delivery(msg_id, timestamp, json.loads(request.body), valid))
        return Reply(status, b"{}", {"Content-Type": "application/json", **headers})

    def attempts(self) -> list[RecordedRequest]:
        return self.server.requests_to(self.path)
