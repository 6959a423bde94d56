"""How long `monitor run --once` takes over N local feeds: cold (all new), then warm (all 304).

    .venv/bin/python -m bench.run_once --feeds 100 --items 40

Serves N generated RSS feeds (ETag + 304 support) and a 200-answering webhook receiver from one
stdlib HTTP server on 127.0.0.1, writes a config using the shipped rules, runs the real CLI
twice and prints wall time, peak RSS of the monitor process and the summary lines.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from bench.measure import run_measured

REPO = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + "bW9uaXRvci1iZW5jaC1zZWNyZXQtMDEyMzQ1Njc4OWFi"
HEADLINES = [
    "Lavrov meets Cuban foreign minister Bruno Rodríguez in Moscow",
    "US Treasury adds Cuban entities to the restricted list",
    "Markets rally as central banks hold rates",
    "Heavy rain floods low-lying districts of the capital",
    "Президент России провёл переговоры с кубинским коллегой",
    "Cuba y Rusia firman acuerdo de cooperación energética",
]


def feed(index: int, items: int) -> bytes:
    now = time.time()
    entries = []
    for n in range(items):
        title = HEADLINES[(index + n) % len(HEADLINES)] if n % 10 == 0 else f"Story {index}-{n}"
        entries.append(
            f"<item><title>{title}</title><guid>feed{index}-item{n}</guid>"
            f"<link>https://bench.example/{index}/{n}</link>"
            f"<pubDate>{formatdate(now - n * 600, usegmt=True)}</pubDate>"
            f"<description>Item {n} of feed {index}: a paragraph of plain filler text "
            f"standing in for a summary.</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Bench feed {index}</title><link>https://bench.example/{index}</link>"
        f"<description>bench</description>{''.join(entries)}</channel></rss>"
    ).encode()


def serve(documents: dict[str, bytes]) -> ThreadingHTTPServer:
    etags = {
        path: '"' + hashlib.sha1(body).hexdigest()[:16] + '"' for path, body in documents.items()
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:
            body = documents.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == etags[self.path]:
                self.send_response(304)
                self.send_header("ETag", etags[self.path])
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", etags[self.path])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(config: Path) -> tuple[float, float, str]:
    command = [sys.executable, "-m", "monitor", "--log-level", "error", "run", "--once"]
    elapsed, peak, code, stdout = run_measured([*command, "--config", str(config)], config)
    if code != 0:
        raise SystemExit(f"monitor exited {code}")
    return elapsed, peak, stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=40)
    args = parser.parse_args()
    documents = {f"/feed/{i}.xml": feed(i, args.items) for i in range(args.feeds)}
    server = serve(documents)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    try:
        shutil.copytree(REPO / "config" / "rules", workdir / "rules")
        document = {
            "storage": f"sqlite:///{workdir / 'monitor.db'}",
            "defaults": {"interval": "10m", "backfill": "all"},
            "feeds": [{"url": base + path} for path in documents],
            "webhooks": [{"name": "sink", "url": base + "/hook", "secret": SECRET}],
        }
        (workdir / "monitor.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
        print(f"{args.feeds} feeds x {args.items} items, cpus={os.cpu_count()}")
        for phase in ("cold", "warm"):
            elapsed, peak, summary = run(workdir)
            print(f"{phase:5} {elapsed:6.2f}s  peak RSS {peak:6.1f} MiB  | {summary}")
    finally:
        server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
