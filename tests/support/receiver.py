"""A webhook receiver for tests, verifying Standard Webhooks signatures with its own code, and
every body against the shipped schema of events (config/schema/events.schema.json).

Verification is written here from the specification, independently of monitor's signer, and
cross-checked with the `standardwebhooks` package from PyPI. The schema check closes every
object of the schema (no key it does not list), so a body carrying a field the schema lacks
fails too: every test that delivers to a SignedReceiver checks that the schema tells all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from standardwebhooks.webhooks import Webhook

from tests.support.servers import LocalServer, RecordedRequest, Reply

SECRET = "whsec_" + base64.b64encode(b"monitor-test-secret-0123456789ab").decode()
SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema" / "events.schema.json"


def closed(schema: Any) -> Any:
    """`schema` with `additionalProperties: false` on every object that lists its properties."""
    if isinstance(schema, list):
        return [closed(part) for part in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if "properties" in result:
        result.setdefault("additionalProperties", False)
    return result


def _validators(schema: dict[str, Any]) -> dict[str, jsonschema.Draft202012Validator]:
    """One validator per event type, each of the union's branch for it (its `type` const), so
    that a problem is told of the body's own type, not of all five."""
    schema = closed(schema)
    common = {k: v for k, v in schema.items() if k not in ("oneOf", "discriminator")}
    found = {}
    for branch in schema["oneOf"]:
        name = branch["$ref"].removeprefix("#/$defs/")
        kind = schema["$defs"][name]["properties"]["type"]["const"]
        found[kind] = jsonschema.Draft202012Validator({**common, "$ref": branch["$ref"]})
    return found


EVENTS = _validators(json.loads(SCHEMA.read_text(encoding="utf-8")))


def event_problems(body: bytes, content_type: str = "application/json") -> list[str]:
    """Why a body monitor sent is not an event of the schema (none: it is one). A CloudEvent
    (`application/cloudevents+json`) is checked by the event it carries."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    if content_type.startswith("application/cloudevents+json") and isinstance(document, dict):
        document = {
            "type": str(document.get("type", "")).removeprefix("org.monitor."),
            "timestamp": document.get("time"),
            "data": document.get("data"),
        }
    kind = document.get("type") if isinstance(document, dict) else None
    validator = EVENTS.get(kind) if isinstance(kind, str) else None
    if validator is None:
        return [f"type: {kind!r} is none of {', '.join(EVENTS)}"]
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


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
    """POST /hook: answers with the next status of `statuses` (then 200), records deliveries.

    A body that is not an event of the schema is answered 400 and kept in `invalid`; reading
    `deliveries` then fails the test, saying why."""

    def __init__(self, server: LocalServer, secret: str = SECRET, path: str = "/hook") -> None:
        self.server = server
        self.secret = secret
        self.path = path
        self._statuses: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Condition()  # notified when a delivery is recorded
        self._deliveries: list[Delivery] = []
        self.invalid: list[str] = []
        server.route(path, self._handle)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            assert not self.invalid, "bodies outside the events schema:\n" + "\n".join(self.invalid)
            return self._deliveries

    def wait_for_deliveries(self, count: int, timeout: float = 20.0) -> bool:
        """Whether `count` deliveries were recorded within `timeout` seconds. (The server's own
        `wait_for` sees a request as it arrives, before this receiver has recorded it.)"""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._deliveries) >= count, timeout=timeout)

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
        problems = event_problems(request.body, request.headers.get("content-type", ""))
        with self._lock:
            if problems:
                self.invalid.append(f"{msg_id}: " + "; ".join(problems))
                return Reply(400, b'{"error": "not an event of the schema"}')
            status, headers = self._statuses.pop(0) if self._statuses else (200, {})
            if 200 <= status < 300:
                self._deliveries.append(
                    Delivery(msg_id, timestamp, json.loads(request.body), valid)
                )
                self._lock.notify_all()
        return Reply(status, b"{}", {"Content-Type": "application/json", **headers})

    def attempts(self) -> list[RecordedRequest]:
        return self.server.requests_to(self.path)
