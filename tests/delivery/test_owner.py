"""Who holds a claim, and when that holder is provably dead."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from monitor.store.owners import Owner, current, is_dead

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _owner_of(pid: int) -> Owner:
    me = current()
    started = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    return Owner(me.host, me.boot, me.pid_ns, pid, started)


def test_owner_round_trips_through_text() -> None:
    me = current()
    assert Owner.parse(str(me)) == me
    assert Owner.parse("garbage") is None
    assert Owner.parse("a|b|c|notapid|e") is None


@pytest.mark.parametrize(
    "claimed_by",
    ["", "garbage", "other-host|boot|ns|1|1", "legacy-owner-without-fields"],
)
def test_what_cannot_be_proven_dead_is_alive(claimed_by: str) -> None:
    assert not is_dead(claimed_by)


def test_the_current_process_is_alive() -> None:
    assert not is_dead(str(current()))


@needs_proc
def test_a_process_is_dead_once_it_exits_or_its_pid_is_reused() -> None:
    with subprocess.Popen(["sleep", "30"]) as process:
        owner = _owner_of(process.pid)
        assert not is_dead(str(owner))
        reused = Owner(owner.host, owner.boot, owner.pid_ns, owner.pid, owner.started + "0")
        assert is_dead(str(reused))  # same pid, another start time: another process
        process.kill()
        process.wait()
    assert is_dead(str(owner))


@needs_proc
def test_a_zombie_is_dead() -> None:
    process = subprocess.Popen(["true"])
    owner = _owner_of(process.pid)
    try:
        # wait for it to exit without reaping it: it stays in /proc, in state Z
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        state = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()[0]
        assert state == "Z"
        assert is_dead(str(owner))
    finally:
        process.wait()


def test_another_machine_is_never_judged() -> None:
    me = current()
    elsewhere = Owner(me.host, "another-boot", me.pid_ns, 999_999, "1")
    assert not is_dead(str(elsewhere))
