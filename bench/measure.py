"""Running a command and measuring it from outside: wall time and the process's own peak RSS.

ru_maxrss of a child is not usable here: Linux carries the parent's high-water mark across
fork and exec. /proc/PID/status VmHWM belongs to the process's own memory since exec.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def high_water_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_measured(command: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS MiB, exit code, stdout) of `command`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=cwd)
    peak_kib = 0
    while process.poll() is None:
        peak_kib = max(peak_kib, high_water_kib(process.pid))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    stdout = process.stdout.read() if process.stdout else ""
    return elapsed, peak_kib / 1024, process.returncode, stdout
