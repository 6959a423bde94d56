"""One `monitor run --once` over every hostile feed (production limits) beside good feeds.

    .venv/bin/python -m bench.hostile_once

Issue "Polling" asks that this finishes within 2 minutes and 400 MB peak memory and still alerts
on the good feeds. Prints wall time, the monitor process's peak RSS and its summary line. The
hostile publisher is tests/support/hostile.py: a 1 GiB gzip bomb, a 1 GiB chunked body, a 1 byte
per 0.2 s drip, billion laughs, XXE, a redirect loop, HTML, binary, bad encodings, 500/410/429.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.measure import run_measured
from tests.support.hostile import serve_hostile
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="monitor-hostile-"))
    with LocalServer(poll_interval=0.05) as server:
        print("compressing a 1 GiB gzip bomb…", flush=True)
        publisher = serve_hostile(server, workdir, bomb_bytes=1 << 30, huge_bytes=1 << 30)
        good = [f"/good-{n}.xml" for n in range(20)]
        for path in good:
            serve_feed(server, path, feed_document("havana-wire.xml"))
        feeds = [{"url": url} for url in publisher.urls()] + [{"url": server.url(p)} for p in good]
        config = write_config(workdir / "config", feeds=feeds)
        command = [sys.executable, "-m", "monitor", "--log-level", "error", "run", "--once"]
        elapsed, peak, code, stdout = run_measured([*command, "--config", str(config)], config)
        publisher.stop.set()
    hostile, readable = len(publisher.paths), len(publisher.parsed_paths)
    print(f"{hostile} hostile + {readable} broken-but-readable + {len(good)} good feeds")
    print(f"exit {code}, wall {elapsed:.1f}s, peak RSS {peak:.0f} MiB")
    print(stdout.strip())


if __name__ == "__main__":
    main()
