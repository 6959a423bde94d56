"""Parsing in worker processes gives exactly what parsing in a thread gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monitor.feeds.parser import ParsedFeed
from monitor.feeds.parsing import POOL_MIN_FEEDS, parse_off_loop, use_processes
from tests.support.pipeline import feed_document


async def test_processes_and_threads_parse_alike() -> None:
    body = feed_document("havana-wire.xml")
    common = {
        "url": "http://127.0.0.1/wire.xml",
        "base_url": "http://127.0.0.1/wire.xml",
        "headers": {"content-type": "application/rss+xml"},
        "feed_name": "Wire",
    }
    in_thread = await parse_off_loop(body, processes=False, **common)  # type: ignore[arg-type]
    in_process = await parse_off_loop(body, processes=True, **common)  # type: ignore[arg-type]
    assert isinstance(in_process, ParsedFeed)
    assert in_process == in_thread
    assert len(in_process.items) == 4


def test_small_configs_parse_in_threads() -> None:
    assert not use_processes(POOL_MIN_FEEDS - 1)


SCRIPT = """\
from concurrent.futures import ProcessPoolExecutor

from monitor.cli.main import entry  # what the `monitor` console script imports
from monitor.processes import forkserver, name_main_after_the_package

NAMES = ("monitor.cli.main", "sqlalchemy", "pydantic", "monitor.feeds.parser")
CHECK = f"[name in __import__('sys').modules for name in {NAMES}]"
if __name__ == "__main__":
    name_main_after_the_package()  # as entry() does first
    with ProcessPoolExecutor(1, mp_context=forkserver()) as pool:
        print(pool.submit(eval, CHECK).result())
"""


def test_a_worker_of_a_script_holds_the_parser_not_the_application(tmp_path: Path) -> None:
    """Started from a script, as from the `monitor` console script, a worker does not run the
    script again: it has the parser the forkserver preloaded, not monitor.cli.main."""
    script = tmp_path / "monitor-like"
    script.write_text(SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[False, False, False, True]"
