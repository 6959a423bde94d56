"""Webhook receivers that attack the sender: an answer of a gigabyte, one that trickles.

Each writes raw bytes on a LocalServer and counts what it managed to send before the client hung
up, so a test asserts what was read (bounded) rather than how long it took.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.support.servers import LocalServer

GIB = 1 << 30
CHUNK = 64 * 1024


@dataclass
class HostileReceiver:
    """What a hostile route sent: bytes of body written, and whether the client hung up."""

    server: LocalServer
    path: str
    sent: int = 0
    hung_up: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)  # set by the test at its end

    @property
    def url(self) -> str:
        return self.server.url(self.path)


def flood(
    server: LocalServer, path: str, *, status: int = 200, head: bytes = b""
) -> HostileReceiver:
    """Answers `status` announcing 1 GiB: `head`, then spaces until the client hangs up."""
    receiver = HostileReceiver(server, path)

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(GIB))
        handler.end_headers()
        try:
            handler.wfile.write(head)
            receiver.sent += len(head)
            while receiver.sent < GIB and not receiver.stop.is_set():
                handler.wfile.write(b" " * CHUNK)
                receiver.sent += CHUNK
        except OSError:
            receiver.hung_up.set()

    server.raw(path, write)
    return receiver


def trickle(server: LocalServer, path: str, *, every: float = 0.02) -> HostileReceiver:
    """Answers 200 announcing 1 MiB, then writes one byte every `every` seconds: each read
    succeeds well within any per-read timeout, the whole answer never comes."""
    receiver = HostileReceiver(server, path)

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(1 << 20))
        handler.end_headers()
        try:
            handler.wfile.flush()
            while not receiver.stop.wait(every):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                receiver.sent += 1
        except OSError:
            receiver.hung_up.set()

    server.raw(path, write)
    return receiver
