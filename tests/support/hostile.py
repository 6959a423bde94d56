"""A hostile publisher: every kind of broken or malicious feed on one local server.

Used by tests/test_hostile_once.py (the real CLI over all of them beside good feeds) and by
bench/hostile_once.py (the same with production limits, timed and measured).
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.feeds.writers import Progress, chunked, drip, repeat
from tests.support.pipeline import REPO
from tests.support.servers import LocalServer

FEEDS = REPO / "tests" / "data" / "feeds"
MARKER = "XXE-MARKER-7f3a9c"
RSS = {"Content-Type": "application/rss+xml"}


@dataclass
class HostilePublisher:
    server: LocalServer
    secret_file: Path
    stop: threading.Event = field(default_factory=threading.Event)
    paths: list[str] = field(default_factory=list)
    parsed_paths: list[str] = field(default_factory=list)  # broken but readable: these parse

    def urls(self) -> list[str]:
        return [self.server.url(p) for p in (*self.paths, *self.parsed_paths)]


def serve_hostile(
    server: LocalServer, workdir: Path, *, bomb_bytes: int, huge_bytes: int
) -> HostilePublisher:
    secret = workdir / "secret.txt"
    secret.write_text(f"{MARKER}\n", encoding="utf-8")
    publisher = HostilePublisher(server, secret)

    def failing(path: str, body: bytes, *, status: int = 200, **headers: str) -> None:
        server.static(path, body, status=status, headers={**RSS, **headers})
        publisher.paths.append(path)

    def readable(path: str, name: str, content_type: str) -> None:
        server.static(path, (FEEDS / name).read_bytes(), headers={"Content-Type": content_type})
        publisher.parsed_paths.append(path)

    xxe = (FEEDS / "hostile" / "xxe.xml").read_text(encoding="utf-8").replace("{path}", str(secret))
    server.static("/xxe.xml", xxe.encode(), headers=RSS)
    publisher.parsed_paths.append("/xxe.xml")  # parses, without the entity's content
    readable("/billion-laughs.xml", "hostile/billion_laughs.xml", "application/rss+xml")
    bomb = gzip.compress(b"\0" * bomb_bytes, compresslevel=1)
    failing("/bomb.xml", bomb, **{"Content-Encoding": "gzip"})
    server.raw("/huge.xml", chunked(Progress(), repeat(b"<!-- padding -->" * 4096, huge_bytes)))
    publisher.paths.append("/huge.xml")
    server.raw("/drip.xml", drip(Progress(), publisher.stop, interval=0.2))
    publisher.paths.append("/drip.xml")
    for a, b in (("/loop-a.xml", "/loop-b.xml"), ("/loop-b.xml", "/loop-a.xml")):
        server.static(a, b"", status=302, headers={"Location": server.url(b)})
    publisher.paths.append("/loop-a.xml")
    failing("/page.html", (FEEDS / "html_page.html").read_bytes(), **{"Content-Type": "text/html"})
    failing("/binary.bin", bytes(range(256)) * 256, **{"Content-Type": "application/octet-stream"})
    failing("/error.xml", b"internal error", status=500)
    failing("/gone.xml", b"", status=410)
    failing("/busy.xml", b"", status=429, **{"Retry-After": "120"})
    readable("/bad-utf8.xml", "es_bad_utf8.xml", "application/rss+xml; charset=utf-8")
    readable("/cp1251-as-utf8.xml", "ru_windows1251_declared_utf8.xml", "application/rss+xml")
    readable("/koi8r.xml", "ru_koi8r.xml", "application/rss+xml")
    readable("/latin1-as-utf8.xml", "es_iso88591_declared_utf8.xml", "application/rss+xml")
    return publisher
