"""A WebSub hub for tests, written here from the W3C Recommendation (not from monitor's code).

hub = LocalHub(server)                      # serves POST /hub on a LocalServer
hub.url                                     # what a feed names as rel="hub"
hub.answer = 500                            # answer subscription requests with this instead
hub.deny = True                             # verify nothing: tell the subscriber hub.mode=denied
hub.grant = 2                               # lease granted, seconds (default: what was asked)
hub.hold = threading.Event()                # answer no request until the event is set
hub.wait_for(lambda events: …)              # event-driven: requests, verifications, denials
hub.publish(topic, body)                    # signed POST to every verified callback of topic
hub.publish(topic, body, gzip=True, chunked=True)   # … gzip-encoded (signed as sent), chunked
websub_config(folder, server, hub, receiver, interval="1h")   # a daemon config naming the hub

Like a real hub it answers a subscription request with 202 at once and verifies intent after,
from another thread: GET callback?hub.mode=…&hub.topic=…&hub.challenge=…&hub.lease_seconds=…,
and counts the subscription verified only if the answer is 2xx and echoes the challenge (a
callback it cannot reach counts as refused, status 0). Each event records when it happened
(time.monotonic()), so tests can measure how often the hub is asked.
"""

from __future__ import annotations

import gzip as gzip_codec
import hashlib
import hmac
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.ops.daemon import edit_config
from tests.support.pipeline import REPO, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer, RecordedRequest, Reply

DATA = REPO / "tests" / "data" / "websub"


@dataclass(frozen=True)
class HubEvent:
    kind: str  # request | verified | refused | denied
    mode: str  # subscribe | unsubscribe | denied
    topic: str
    callback: str
    status: int = 0  # the subscriber's answer to a verification
    form: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


@dataclass
class Subscriber:
    callback: str
    secret: str
    lease: int


class LocalHub:
    def __init__(self, server: LocalServer, path: str = "/hub") -> None:
        self.server = server
        self.path = path
        self.answer = 202
        self.deny = False
        self.grant: int | None = None
        self.hold: threading.Event | None = None
        self.events: list[HubEvent] = []
        self.subscribers: dict[tuple[str, str], Subscriber] = {}  # (topic, callback)
        self._changed = threading.Condition()
        server.route(path, self._handle)

    @property
    def url(self) -> str:
        return self.server.url(self.path)

    def _record(self, event: HubEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[HubEvent]], bool], timeout: float = 20.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: condition(self.events), timeout=timeout)

    def of(self, kind: str, mode: str = "subscribe") -> list[HubEvent]:
        with self._changed:
            return [e for e in self.events if e.kind == kind and e.mode == mode]

    # -- the hub's side of the protocol -------------------------------------------------------

    def _handle(self, request: RecordedRequest) -> Reply:
        form = dict(urllib.parse.parse_qsl(request.body.decode(), keep_blank_values=True))
        mode, topic = form.get("hub.mode", ""), form.get("hub.topic", "")
        callback = form.get("hub.callback", "")
        self._record(HubEvent("request", mode, topic, callback, form=form))
        if self.hold is not None:
            self.hold.wait(timeout=30)  # a hub that does not answer (until the test is over)
        if request.method != "POST" or mode not in ("subscribe", "unsubscribe"):
            return Reply(400, b"bad request")
        if self.answer != 202:
            return Reply(self.answer, b"hub trouble")
        threading.Thread(target=self._verify, args=(form,), daemon=True).start()
        return Reply(202, b"")

    def _verify(self, form: dict[str, str]) -> None:
        mode, topic, callback = form["hub.mode"], form["hub.topic"], form["hub.callback"]
        if self.deny:
            self.tell_denied(topic, callback, "not allowed here")
            return
        lease = self.grant or int(form.get("hub.lease_seconds") or 86400)
        challenge = secrets.token_urlsafe(24)
        try:
            status, body = self.verification(
                callback, mode, topic, challenge=challenge, lease_seconds=lease
            )
        except OSError:  # the callback cannot be reached (no server there)
            status, body = 0, b""
        verified = 200 <= status < 300 and body == challenge.encode()
        self._record(HubEvent("verified" if verified else "refused", mode, topic, callback, status))
        if verified and mode == "subscribe":
            self.subscribers[(topic, callback)] = Subscriber(callback, form["hub.secret"], lease)
        elif verified:
            self.subscribers.pop((topic, callback), None)

    def tell_denied(self, topic: str, callback: str, reason: str) -> int:
        """Tell a subscriber its subscription is denied (or revoked), as a hub may at any time."""
        self.subscribers.pop((topic, callback), None)
        status, _ = self.verification(callback, "denied", topic, reason=reason)
        self._record(HubEvent("denied", "denied", topic, callback, status))
        return status

    @staticmethod
    def verification(
        callback: str, mode: str, topic: str, **params: str | int
    ) -> tuple[int, bytes]:
        """GET the callback as a hub verifies intent; (status, body)."""
        query = {"hub.mode": mode, "hub.topic": topic} | {
            f"hub.{k}": str(v) for k, v in params.items()
        }
        separator = "&" if "?" in callback else "?"
        return _request(callback + separator + urllib.parse.urlencode(query))

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        method: str = "sha256",
        secret: str | None = None,
        signed: bool = True,
        gzip: bool = False,
        chunked: bool = False,
    ) -> list[int]:
        """POST `body` to every verified subscriber of `topic`, signed with its secret (or
        `secret`); the subscribers' statuses. `gzip`: sent with Content-Encoding: gzip (and
        signed as sent); `chunked`: sent with Transfer-Encoding: chunked, in 1 KiB chunks."""
        statuses = []
        sent = gzip_codec.compress(body) if gzip else body
        for (sub_topic, _), sub in list(self.subscribers.items()):
            if sub_topic != topic:
                continue
            headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
            if gzip:
                headers["Content-Encoding"] = "gzip"
            if signed:
                key = (secret or sub.secret).encode()
                digest = hmac.new(key, sent, getattr(hashlib, method)).hexdigest()
                headers["X-Hub-Signature"] = f"{method}={digest}"
            headers["Link"] = f'<{self.url}>; rel="hub", <{topic}>; rel="self"'
            data = _chunks(sent) if chunked else sent
            statuses.append(_request(sub.callback, data, headers)[0])
        return statuses


def _chunks(data: bytes, size: int = 1024) -> Iterator[bytes]:
    """An iterable body: urllib sends it with Transfer-Encoding: chunked, one chunk each."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _request(
    url: str,
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- building blocks for tests and benchmarks -------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def hub_document(name: str, hub: LocalHub, topic: str) -> bytes:
    """A document from tests/data/websub naming `hub` and `topic`, its dates hours before now."""
    now = datetime.now(UTC)
    text = (DATA / name).read_text(encoding="utf-8")
    text = text.replace("{{hub}}", hub.url).replace("{{self}}", topic)
    text = re.sub(
        r"\{\{hours-ago:(\d+)\}\}",
        lambda m: format_datetime(now - timedelta(hours=int(m.group(1))), usegmt=True),
        text,
    )
    return text.encode("utf-8")


def websub_config(
    tmp_path: Path,
    server: LocalServer,
    hub: LocalHub,
    receiver: SignedReceiver,
    *,
    interval: str,
    lease: str = "1h",
    allow_private: bool = True,
) -> tuple[Path, str]:
    """A config folder with one feed naming `hub`; returns it and the feed's URL (the topic).

    The hub listens on 127.0.0.1, where a hub a feed names may not go unless the operator says
    so: `allow_private` is that explicit opt-in (fetch.allow_private)."""
    topic = server.url("/wire.xml")
    serve_feed(server, "/wire.xml", hub_document("wire.xml", hub, topic))
    port = free_port()
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": topic, "name": "Push Wire", "interval": interval}],
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
    )

    def websub(document: dict[str, object]) -> None:
        document["http"] = f"127.0.0.1:{port}"
        document["websub"] = {"callback": f"http://127.0.0.1:{port}/websub/", "lease": lease}
        if allow_private:
            document["fetch"] = {"allow_private": True}

    edit_config(config, websub)
    return config, topic
