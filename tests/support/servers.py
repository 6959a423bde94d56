"""A real HTTP server on 127.0.0.1 for tests: feeds, webhook receivers, hostile publishers.

server = LocalServer()            # binds 127.0.0.1 on a free port, serves from a thread
server.static("/feed.xml", body, headers={"Content-Type": "application/rss+xml"})
server.route("/hook", handler)    # handler(request: RecordedRequest) -> Reply
server.raw("/drip", writer)       # writer(handler: BaseHTTPRequestHandler) writes raw bytes
server.url("/feed.xml")
server.requests                   # every request received, in order
server.wait_for(lambda reqs: len(reqs) >= 3, timeout=5)   # event-driven, no sleeps
server.errors                     # tracebacks of handlers that raised (kept, not printed)
server.close()

LocalServer(tls=context)          # HTTPS with an ssl.SSLContext (tests make one with trustme)
"""

from __future__ import annotations

import ssl
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[RecordedRequest], Reply]
RawWriter = Callable[[BaseHTTPRequestHandler], None]


class LocalServer:
    def __init__(
        self,
        *,
        poll_interval: float = 0.5,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """`poll_interval`: how often serve_forever looks for shutdown (close() waits as long);
        `tls`: serve HTTPS with this server-side context (the handshake runs in the request's
        thread, so a client that refuses the certificate holds up no one); `host`: the address
        to listen on (a Docker network's gateway, for containers to reach)."""
        self.host = host
        self._handlers: dict[str, Handler | RawWriter] = {}
        self._raw: set[str] = set()
        self.requests: list[RecordedRequest] = []
        self.connections = 0  # TCP connections accepted (keep-alive reuses one for many requests)
        self._changed = threading.Condition()
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def setup(self) -> None:  # once per connection
                super().setup()
                with server._changed:
                    server.connections += 1

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                recorded = RecordedRequest(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with server._changed:
                    server.requests.append(recorded)
                    server._changed.notify_all()
                handler = server._handlers.get(path)
                if handler is None:
                    self._send(Reply(404, b"not found"))
                    return
                if path in server._raw:
                    handler(self)  # type: ignore[arg-type]
                    return
                self._send(handler(recorded))  # type: ignore[arg-type]

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                names = {k.lower() for k in reply.headers}
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if "content-length" not in names:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD" and reply.status not in (204, 304):
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = _handle  # noqa: N815

        self._server = _Server((host, 0), _RequestHandler)
        self._server.daemon_threads = True
        self.scheme = _serve_tls(self._server, tls)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(poll_interval,), daemon=True
        )
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> None:
        self._handlers[path] = handler
        self._raw.discard(path)

    def raw(self, path: str, writer: RawWriter) -> None:
        self._handlers[path] = writer
        self._raw.add(path)

    def static(
        self, path: str, body: bytes, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        reply = Reply(status, body, dict(headers or {}))
        self.route(path, lambda _request: reply)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._changed:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def wait_for(
        self, condition: Callable[[list[RecordedRequest]], bool], timeout: float = 10.0
    ) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: condition(self.requests), timeout=timeout)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of handlers that raised (a client hanging up mid-reply, mostly)."""
        return self._server.errors

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: clients opening more connections at once than
    # that (a pool of 16 under a loaded machine) saw some of them reset by the server
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.errors: list[str] = []

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver prints the traceback to sys.stderr: with the CLI running in the test's
        # process, that is the command's captured stderr, and a client that hangs up on a
        # hostile feed (as it should) would read as a traceback of monitor's. Kept, not printed.
        self.errors.append(traceback.format_exc())


def _serve_tls(server: ThreadingHTTPServer, context: ssl.SSLContext | None) -> str:
    """Accept TLS on `server` if given a context (each handshake happens on the connection's
    first read); the URL scheme it serves."""
    if context is None:
        return "http"
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    return "https"
