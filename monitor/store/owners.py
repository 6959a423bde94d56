"""Who holds a claimed delivery, and whether that process is still alive.

A claim records its owner as `host|boot id|pid namespace|pid|start time`. When a `run --once`
or a daemon finds deliveries leased by an owner on the same host, the same boot and the same pid
namespace (so the pid means the same process table) whose pid is gone, a zombie, or a different
process (its start time differs), that owner died: its leases are released at once instead of
waiting out the lease. Owners elsewhere (another machine, another container) cannot be checked,
so their work is taken over only when the lease ends (`Dispatcher.lease`). Off Linux, without
/proc, the start time and boot id are unknown and a pid that no longer exists is the only proof.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class Owner:
    host: str
    boot: str
    pid_ns: str
    pid: int
    started: str

    def __str__(self) -> str:
        return "|".join((self.host, self.boot, self.pid_ns, str(self.pid), self.started))[:200]

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        parts = text.split("|")
        if len(parts) != 5 or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], parts[2], int(parts[3]), parts[4])

    def same_machine(self, other: Owner) -> bool:
        return (self.host, self.boot, self.pid_ns) == (other.host, other.boot, other.pid_ns)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc/PID/stat, or None when there is none."""
    text = _read(PROC / str(pid) / "stat")
    if not text:
        return None
    fields = text.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


@cache
def current() -> Owner:
    pid = os.getpid()
    stat = _stat(pid)
    try:
        pid_ns = str((PROC / str(pid) / "ns" / "pid").readlink())
    except OSError:
        pid_ns = ""
    return Owner(
        host=socket.gethostname()[:80],
        boot=_read(PROC / "sys" / "kernel" / "random" / "boot_id"),
        pid_ns=pid_ns,
        pid=pid,
        started=stat[1] if stat else "",
    )


# a forked child is another process: it must not claim work as its parent (monitor.runtime.split)
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=current.cache_clear)


def is_dead(claimed_by: str, me: Owner | None = None) -> bool:
    """True only when `claimed_by` is provably a process that no longer runs."""
    me = me or current()
    owner = Owner.parse(claimed_by)
    if owner is None or not owner.same_machine(me) or owner == me:
        return False
    if me.started:  # /proc is there: check state and start time
        stat = _stat(owner.pid)
        if stat is not None:
            return stat[0] in ("Z", "X") or stat[1] != owner.started
        # no stat: gone, or hidden (/proc mounted hidepid, systemd ProtectProc): ask the kernel
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
