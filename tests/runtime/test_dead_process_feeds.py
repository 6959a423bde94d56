"""A daemon's heartbeat ends the feed leases of a process here that died (a killed `run --once`,
which has no heartbeat of its own), and leaves those of a live one."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.store import Store, owners
from monitor.store.replicas import Heartbeat, Replicas

LEASE = timedelta(minutes=5)


def _owner_of(process: subprocess.Popen[bytes]) -> str:
    """The claim owner `process` would write: this machine's, with its pid and start time."""
    stat = (Path("/proc") / str(process.pid) / "stat").read_text()
    started = stat.rpartition(")")[2].split()[19]
    return str(dataclasses.replace(owners.current(), pid=process.pid, started=started))


def test_a_heartbeat_frees_the_feeds_of_a_dead_process_and_not_of_a_live_one(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    now = datetime.now(UTC)
    store.sync_feeds([("http://a.test/feed", None), ("http://b.test/feed", None)], now)
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        dead_owner, live_owner = _owner_of(killed), _owner_of(alive)
        assert len(store.claim_feeds(now, LEASE, due_only=False, limit=1, owner=dead_owner)) == 1
        assert len(store.claim_feeds(now, LEASE, due_only=False, limit=1, owner=live_owner)) == 1
        killed.kill()
        killed.wait(10)

        released = Heartbeat(store.engine, str(owners.current())).start(now)

        assert [(r.pid, r.feeds) for r in released] == [(killed.pid, 1)]
        taken = store.claim_feeds(now, LEASE, due_only=False, owner="me")
        assert [f.claimed_by for f in taken] == ["me"]  # the dead one's feed, at once
        assert Replicas(store.engine).feeds_held_by_others(now, "me") == 1  # the live one's
    finally:
        alive.kill()
        alive.wait(10)
        killed.kill()
        killed.wait(10)
        store.close()
