"""Raw responses for LocalServer.raw(): publishers that drip, never stop, or lie about sizes.

Each writer stops when the client goes away (a broken pipe) or when `stop` is set, and records
how many body bytes it got out, so tests can show the client stopped reading early.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.support.servers import RawWriter

GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


@dataclass
class Progress:
    sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)


def _head(handler: BaseHTTPRequestHandler, headers: Mapping[str, str]) -> None:
    handler.send_response(200)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.flush()


def drip(
    progress: Progress, stop: threading.Event, *, interval: float = 0.05, prefix: bytes = b""
) -> RawWriter:
    """One byte every `interval` seconds behind a Content-Length it never reaches."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        try:
            _head(handler, {"Content-Type": "application/rss+xml", "Content-Length": "1000000"})
            handler.wfile.write(prefix)
            while not stop.wait(interval):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                progress.sent += 1
        except GONE:
            pass
        finally:
            progress.done.set()

    return write


def chunked(
    progress: Progress, chunks: Iterator[bytes], headers: Mapping[str, str] | None = None
) -> RawWriter:
    """Transfer-Encoding: chunked from a generator: as long as the generator, nothing in memory."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        try:
            _head(
                handler,
                {
                    "Content-Type": "application/rss+xml",
                    "Transfer-Encoding": "chunked",
                    **(headers or {}),
                },
            )
            for chunk in chunks:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                progress.sent += len(chunk)
            handler.wfile.write(b"0\r\n\r\n")
        except GONE:
            pass
        finally:
            progress.done.set()

    return write


def declared(progress: Progress, length: int, chunks: Iterator[bytes]) -> RawWriter:
    """A Content-Length of `length`, then as much of it as the client will take."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        try:
            _head(handler, {"Content-Type": "application/rss+xml", "Content-Length": str(length)})
            for chunk in chunks:
                handler.wfile.write(chunk)
                progress.sent += len(chunk)
        except GONE:
            pass
        finally:
            progress.done.set()

    return write


def repeat(block: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes as repeats of one `block`: a gibibyte without allocating one."""
    sent = 0
    while sent < total:
        piece = block[: total - sent]
        sent += len(piece)
        yield piece
