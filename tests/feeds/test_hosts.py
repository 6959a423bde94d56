"""Per-host politeness: concurrency per host and spacing between starts."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path

from monitor.config.settings import load_config
from monitor.feeds.hosts import HostLimiter
from monitor.pipeline.refresh import refresh_context
from tests.support.pipeline import write_config


async def test_at_most_n_requests_to_one_host_and_other_hosts_unaffected() -> None:
    limiter = HostLimiter(per_host=2)
    running: dict[str, int] = {"a.example": 0, "b.example": 0}
    peak: dict[str, int] = {"a.example": 0, "b.example": 0}
    release = asyncio.Event()

    async def fetch(host: str) -> None:
        async with limiter.slot(f"https://{host}/feed/{id(object())}"):
            running[host] += 1
            peak[host] = max(peak[host], running[host])
            if host == "a.example":
                await release.wait()
            running[host] -= 1

    tasks = [asyncio.create_task(fetch("a.example")) for _ in range(5)]
    others = [asyncio.create_task(fetch("b.example")) for _ in range(2)]
    await asyncio.gather(*others)  # b is never held up by a's backlog
    assert running["a.example"] == 2
    release.set()
    await asyncio.gather(*tasks)
    assert peak["a.example"] == 2


async def test_starts_on_one_host_are_spaced() -> None:
    limiter = HostLimiter(per_host=10, spacing=timedelta(milliseconds=50))
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def fetch() -> None:
        async with limiter.slot("https://a.example/rss"):
            starts.append(loop.time())

    await asyncio.gather(*(fetch() for _ in range(4)))
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= 0.045 for gap in gaps), gaps


def test_the_limiter_survives_a_reload_unless_fetch_settings_change(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c", feeds=[{"url": "http://127.0.0.1:9/feed.xml"}])
    loaded = load_config(config, {})
    context = refresh_context(None, None, loaded)  # type: ignore[arg-type]
    reloaded = context.reloaded(load_config(config, {}))
    assert reloaded.hosts is context.hosts
    text = (config / "monitor.yaml").read_text(encoding="utf-8")
    (config / "monitor.yaml").write_text(text + "fetch:\n  per_host: 2\n", encoding="utf-8")
    changed = context.reloaded(load_config(config, {}))
    assert changed.hosts is not context.hosts
    assert changed.hosts.per_host == 2
