"""`monitor sink`: a reference webhook receiver, to try monitor and to copy from.

It does what every receiver of format `standard` should do, in this order:
1. read `webhook-id`, `webhook-timestamp`, `webhook-signature` and the raw body;
2. refuse (401) a timestamp more than 5 minutes from now (replays) or a body whose
   `v1,` HMAC-SHA256 over `id.timestamp.body` matches none of the signatures in the header
   (there are several while a secret is being rotated), comparing in constant time;
3. acknowledge with a 2xx at once, and deduplicate on `webhook-id`: monitor delivers at least
   once, so the same alert may come again after a lost answer.
It prints each event readably (alerts, story updates, digests, feed health; other JSON bodies
compactly), on stdout.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import errno
import hashlib
import hmac
import json
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import SecretStr, ValidationError

from monitor.events import (
    EVENT,
    AlertCreated,
    AlertDigest,
    AlertUpdated,
    DigestData,
    FeedRecovered,
    FeedUnhealthy,
)

TOLERANCE = 5 * 60  # seconds, as the Standard Webhooks specification recommends
REMEMBERED = 10_000  # webhook-ids kept for deduplication
MAX_BODY = 2 * 1024 * 1024


def register(sub: Any, with_config: Callable[[argparse.ArgumentParser], Any]) -> None:
    parser = with_config(
        sub.add_parser(
            "sink",
            help="run a reference receiver that verifies signatures and prints alerts",
            description=(
                "Listen on HOST:PORT for webhook POSTs (any path), verify Standard Webhooks "
                "signatures when --secret (or --webhook) is given (401 if invalid or older than "
                "5 minutes), skip repeats of a webhook-id (monitor delivers at least once), and "
                "print each alert readably. For trying monitor locally or in docker-compose, and "
                "as an example for receivers. Stops on Ctrl-C. "
                "Exit codes: 0, 2 bad arguments, invalid config, or the address cannot be "
                "listened on (e.g. already in use)."
            ),
        )
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0: any)")
    parser.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    parser.add_argument(
        "--secret",
        metavar="S",
        help="the webhook's `whsec_…` secret; without it (or --webhook) signatures are not checked",
    )
    parser.add_argument(
        "--webhook",
        metavar="NAME",
        help="take the secret of this webhook from the config (--config DIR); with a list of "
        "secrets, the first",
    )
    parser.add_argument(
        "--status",
        type=int,
        default=200,
        metavar="CODE",
        help="answer every valid delivery with this status (default: 200), e.g. 503 to watch "
        "monitor retry",
    )
    parser.set_defaults(handler=run)


def verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> str | None:
    """None when the request is authentic, else why not."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "").split()
    if not (msg_id and stamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    if not stamp.isdigit() or abs(now - int(stamp)) > TOLERANCE:
        return "timestamp too old or too new"
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return "the sink's secret is not `whsec_` + base64"
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    if any(hmac.compare_digest(expected, s) for s in signatures):
        return None
    return "no signature matches"


def describe(document: Any, msg_id: str) -> str:
    """An event (or a CloudEvent of one) as a few readable lines: alerts, updates of a story,
    digests, feed health; anything else as compact JSON."""
    try:
        event = EVENT.validate_python(_unwrapped(document))
    except ValidationError:
        return json.dumps(document, ensure_ascii=False)[:2000]
    match event:
        case AlertDigest():
            return _digest(event.data)
        case FeedUnhealthy() | FeedRecovered():
            data = event.data
            return (
                f"{event.type.upper()} {data.feed.name or data.feed.url}: {data.reason} since "
                f"{data.since}; last error: {data.last_error}"
            )
        case AlertCreated() | AlertUpdated():
            return _alert(event)


def _unwrapped(document: Any) -> Any:
    """The monitor event a CloudEvent carries (`org.monitor.<type>`, `time`, `data`)."""
    if isinstance(document, dict) and "specversion" in document:
        return {
            "type": str(document.get("type", "")).removeprefix("org.monitor."),
            "timestamp": document.get("time"),
            "data": document.get("data"),
        }
    return document


def _digest(data: DigestData) -> str:
    lines = [f"DIGEST {data.id}: {data.count} alerts"]
    for story in data.stories:
        n = story.sources
        lines.append(
            f"  [{story.severity.upper()}] {story.item.title}  ({n} source{'' if n == 1 else 's'})"
        )
    return "\n".join(lines)


def _alert(event: AlertCreated | AlertUpdated) -> str:
    data, item = event.data, event.data.item
    lines = [
        f"[{data.rule.severity.upper()}] {data.rule.id}  score {data.score}  {data.id}",
        f"  {item.title}",
    ]
    if item.link:
        lines.append(f"  {item.link}")
    if item.feed.name or item.feed.url:
        lines.append(f"  feed: {item.feed.name or item.feed.url}")
    terms = [t for t in dict.fromkeys(m.text for m in data.matches) if t]
    if terms:
        lines.append(f"  matched: {', '.join(terms)}")
    if data.group is not None:
        also = "also reported: " if event.type == "alert.updated" else ""
        lines.append(f"  {also}story {data.group.id}, {data.group.count} sources")
    return "\n".join(lines)


class Sink:
    def __init__(self, secret: str | None, status: int) -> None:
        self.secret = secret
        self.status = status
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """The status to answer, and what to print."""
        msg_id = headers.get("webhook-id", "")
        if self.secret:
            problem = verify(self.secret, headers, body, time.time())
            if problem:
                return 401, f"REFUSED {msg_id or '(no id)'}: {problem}"
        try:
            document = json.loads(body)
        except ValueError:
            return 400, f"REFUSED {msg_id or '(no id)'}: body is not JSON"
        if self.status >= 300:
            return self.status, f"answered {self.status} to {msg_id or '(no id)'}"
        if msg_id:
            with self.lock:
                if msg_id in self.seen:
                    return self.status, f"duplicate {msg_id} (already seen; acknowledged)"
                self.seen[msg_id] = None
                if len(self.seen) > REMEMBERED:
                    self.seen.popitem(last=False)
        checked = "signature ok" if self.secret else "signature not checked"
        return self.status, f"{time.strftime('%H:%M:%S')} {checked}\n{describe(document, msg_id)}"


def make_server(host: str, port: int, sink: Sink) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, "REFUSED: body too large")
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, text = sink.handle(headers, body)
            self._answer(status, text)

        def _answer(self, status: int, text: str) -> None:
            print(text, flush=True)
            reply = b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def _configured_secret(args: argparse.Namespace) -> str | None:
    from monitor.cli.reporting import load_or_report  # noqa: PLC0415 - only with --webhook

    config = load_or_report(args.config)
    if config is None:
        return None
    hook = next((h for h in config.settings.webhooks if h.name == args.webhook), None)
    if hook is None or hook.secret is None:
        print(f"sink: no webhook {args.webhook!r} with a secret in the config", file=sys.stderr)
        return None
    secret = hook.secret if isinstance(hook.secret, SecretStr) else hook.secret[0]
    return secret.get_secret_value()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _why(exc: OSError) -> str:
    """`address already in use (another process listens there: pick another --port)`."""
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (another process listens there; choose another --port)"
    return (exc.strerror or str(exc)).lower()


def run(args: argparse.Namespace) -> int:
    if args.webhook:
        args.secret = _configured_secret(args)
        if args.secret is None:
            return 2
    if args.secret:
        try:
            key = base64.b64decode(args.secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not key:
            print("sink: --secret is `whsec_` + base64", file=sys.stderr)
            return 2
    try:
        server = make_server(args.host, args.port, Sink(args.secret, args.status))
    except OSError as exc:
        print(
            f"sink: cannot listen on {_address(args.host, args.port)}: {_why(exc)}", file=sys.stderr
        )
        return 2
    host, port = str(server.server_address[0]), server.server_address[1]
    print(f"sink listening on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
