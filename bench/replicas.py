"""One replica against two on one PostgreSQL: cycle time and database load over the shared farm.

    .venv/bin/python -m bench.replicas --feeds 1000            # then --feeds 10000

For each replica count (`--replicas 1,2`): a fresh PostgreSQL database, the real `monitor run`
daemons started together on a config of N farm feeds (shipped rules, backfill `all`, interval 1h,
a local webhook answering 204), then
  cold  from launch until every feed has been polled once (everything new: parse, match, store);
  warm  every feed made due at once, until each has been polled again (nginx answers 304).
With --takeover, two replicas then run with the default heartbeat and one is SIGKILLed
mid-cycle: how long until the other frees its claims, and until every feed is polled.
Per phase: wall time, the feeds each replica polled, CPU seconds of the monitor processes, and
the database's load from pg_stat_database (transactions committed, rows returned / fetched /
inserted / updated / deleted, blocks read / hit) as deltas over the phase.

The farm is ../shared/bench (feedfarm.py generates it into /tmp, serve.sh serves it with nginx
on 127.0.0.1:--port, 8931 by default); nothing is written under ../shared. Replica logs (warnings
and errors) are kept in /tmp/monitor-bench-replicas/logs. Every feed is on one
host here, so `fetch.per_host` is raised to what one replica polls at once (as with feeds
spread over many hosts). nginx, PostgreSQL and the replicas share this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa
import yaml

from monitor.pipeline.refresh import MAX_FEEDS_IN_FLIGHT

REPO = Path(__file__).resolve().parent.parent
SHARED_BENCH = REPO.parent / "shared" / "bench"
WORK = Path(tempfile.gettempdir()) / "monitor-bench-replicas"
SECRET = "whsec_" + "bW9uaXRvci1iZW5jaC1zZWNyZXQtMDEyMzQ1Njc4OWFi"
MONITOR = [sys.executable, "-m", "monitor"]  # how a replica is started
ADMIN = os.environ.get("MONITOR_TEST_POSTGRESQL", "postgresql+psycopg://127.0.0.1:5432/test")
COUNTERS = (
    "xact_commit",
    "xact_rollback",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "blks_read",
    "blks_hit",
)


def farm(feeds: int) -> Path:
    """The generated farm for `feeds` feeds under /tmp, made once and reused."""
    directory = WORK / f"farm-{feeds}"
    if not (directory / "manifest.json").is_file():
        shutil.rmtree(directory, ignore_errors=True)
        generate = [sys.executable, str(SHARED_BENCH / "feedfarm.py"), str(directory)]
        subprocess.run([*generate, "--feeds", str(feeds)], check=True, stdout=subprocess.DEVNULL)
    return directory


def farm_urls(directory: Path, base: str) -> list[str]:
    listing = subprocess.run(
        [sys.executable, str(SHARED_BENCH / "feedfarm.py"), str(directory), "--list-urls", base],
        check=True,
        capture_output=True,
        text=True,
    )
    return listing.stdout.split()


def webhook_sink() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Phase:
    name: str
    seconds: float
    polled_by: list[int]
    cpu: float
    database: dict[str, int]
    pending: int


class Database:
    """A fresh database for one run, and the counters we read from it."""

    def __init__(self) -> None:
        self.name = f"monitor_bench_{uuid.uuid4().hex[:10]}"
        self.admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as db:
            db.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = sa.make_url(ADMIN).set(database=self.name).render_as_string(False)
        self.engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")

    def scalar(self, query: str, **params: object) -> int:
        try:
            with self.engine.connect() as db:
                return int(db.scalar(sa.text(query), params) or 0)
        except sa.exc.ProgrammingError:  # not migrated yet
            return 0

    def counters(self) -> dict[str, int]:
        columns = ", ".join(COUNTERS)
        query = f"SELECT {columns} FROM pg_stat_database WHERE datname = :name"
        with self.admin.connect() as db:
            db.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            row = db.execute(sa.text(query), {"name": self.name}).one()
        return dict(zip(COUNTERS, (int(v) for v in row), strict=True))

    def polled_by(self) -> list[int]:
        with self.engine.connect() as db:
            rows = db.execute(sa.text("SELECT count(*) FROM feeds GROUP BY claimed_by"))
            return sorted((int(count) for (count,) in rows), reverse=True)

    def drop(self) -> None:
        self.engine.dispose()
        with self.admin.connect() as db:
            db.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def _stat(pid: int | str) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """CPU of a replica and its parse workers: user + system, of children reaped too."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    ticks, todo = 0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields:
            ticks += sum(int(value) for value in fields[11:15])
        todo += children.get(current, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_until(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s")
        time.sleep(0.25)


def write_config(workdir: Path, database: Database, urls: list[str], hook: str) -> None:
    shutil.copytree(REPO / "config" / "rules", workdir / "rules")
    document = {
        "storage": database.url,
        "rules": "rules/",
        "defaults": {"interval": "1h", "backfill": "all"},
        "fetch": {"per_host": MAX_FEEDS_IN_FLIGHT},
        "feeds": [{"url": url} for url in urls],
        "webhooks": [{"name": "sink", "url": hook, "secret": SECRET}],
    }
    (workdir / "monitor.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")


def start_replica(workdir: Path, name: str) -> subprocess.Popen[bytes]:
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    log = (WORK / "logs" / f"{name}.log").open("wb")
    command = [*MONITOR, "--log-level", "warning", "run", "--config", str(workdir)]
    return subprocess.Popen(command, cwd=workdir, stderr=log, stdout=log)


def stop_replicas(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(count: int, urls: list[str], hook: str, timeout: float) -> list[Phase]:
    database = Database()
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-replicas-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        write_config(workdir, database, urls, hook)
        before = database.counters()
        started = time.monotonic()
        processes += [start_replica(workdir, f"{count}-replicas-{i}") for i in range(count)]
        total = len(urls)
        polled = "SELECT count(*) FROM feeds WHERE last_checked_at IS NOT NULL"
        wait_until(lambda: _running(processes) and database.scalar(polled) >= total, timeout)
        phases = [_phase("cold", started, before, database, processes)]

        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        before = database.counters()
        mark = datetime.now(UTC).replace(tzinfo=None)
        with database.engine.connect() as db:
            db.execute(sa.text("UPDATE feeds SET next_check_at = :now"), {"now": mark})
        started = time.monotonic()
        again = "SELECT count(*) FROM feeds WHERE last_checked_at >= :mark"
        wait_until(
            lambda: _running(processes) and database.scalar(again, mark=mark) >= total, timeout
        )
        phases.append(_phase("warm", started, before, database, processes, cpu_before))
        return phases
    finally:
        stop_replicas(processes)
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def takeover(urls: list[str], hook: str, timeout: float) -> str:
    """Two replicas with the default heartbeat; the first is SIGKILLed mid-cold-cycle. How long
    until the second has freed its claims, and until every feed has been polled."""
    database = Database()
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-replicas-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        write_config(workdir, database, urls, hook)
        doomed = start_replica(workdir, "takeover-killed")
        processes.append(doomed)
        polled = "SELECT count(*) FROM feeds WHERE last_checked_at IS NOT NULL"
        wait_until(lambda: database.scalar(polled) >= len(urls) // 10, timeout)
        processes.append(start_replica(workdir, "takeover-survivor"))
        wait_until(lambda: database.scalar("SELECT count(*) FROM replicas") >= 2, timeout)
        held = (
            "SELECT count(*) FROM feeds JOIN replicas ON feeds.claimed_by = replicas.id "
            "WHERE replicas.pid = :pid AND feeds.lease_until > now() AT TIME ZONE 'UTC'"
        )
        holding = database.scalar(held, pid=doomed.pid)
        doomed.kill()
        killed = time.monotonic()
        wait_until(lambda: database.scalar(held, pid=doomed.pid) == 0, timeout)
        freed = time.monotonic() - killed
        wait_until(
            lambda: _running(processes[1:]) and database.scalar(polled) >= len(urls), timeout
        )
        done = time.monotonic() - killed
        return (
            f"takeover: SIGKILL of a replica holding {holding} feeds mid-cycle; its claims freed "
            f"after {freed:.1f}s, every feed polled {done:.1f}s after the kill"
        )
    finally:
        stop_replicas(processes)
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def _running(processes: list[subprocess.Popen[bytes]]) -> bool:
    """True while every replica runs; a replica that exits ends the benchmark (see its log)."""
    for process in processes:
        if process.poll() is not None:
            raise SystemExit(
                f"replica pid {process.pid} exited with {process.returncode}; see {WORK}/logs"
            )
    return True


def _phase(  # noqa: PLR0917 - one measurement's parts
    name: str,
    started: float,
    before: dict[str, int],
    database: Database,
    processes: list[subprocess.Popen[bytes]],
    cpu_before: float = 0.0,
) -> Phase:
    seconds = time.monotonic() - started
    after = database.counters()
    pending = database.scalar("SELECT count(*) FROM deliveries WHERE state = 'pending'")
    cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
    delta = {key: after[key] - before[key] for key in COUNTERS}
    return Phase(name, seconds, database.polled_by(), cpu, delta, pending)


def report(count: int, feeds: int, phases: list[Phase]) -> None:
    for phase in phases:
        d = phase.database
        print(
            f"{count} replica{'s' if count > 1 else ' '} {phase.name:4} {phase.seconds:7.1f}s "
            f"{feeds / phase.seconds:6.0f} feeds/s  split {'/'.join(map(str, phase.polled_by))}  "
            f"monitor CPU {phase.cpu:6.1f}s  | db: {d['xact_commit']} commits "
            f"({d['xact_commit'] / feeds:.1f}/feed), {d['xact_rollback']} rollbacks, "
            f"rows returned {d['tup_returned']} fetched {d['tup_fetched']} inserted "
            f"{d['tup_inserted']} updated {d['tup_updated']} deleted {d['tup_deleted']}, "
            f"blocks read {d['blks_read']} hit {d['blks_hit']}; {phase.pending} deliveries pending"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--replicas", default="1,2", help="replica counts to compare")
    parser.add_argument("--port", type=int, default=8931, help="nginx port for the farm")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per phase at most")
    parser.add_argument(
        "--takeover", action="store_true", help="then kill one of two replicas mid-cycle"
    )
    args = parser.parse_args()
    directory = farm(args.feeds)
    serve = str(SHARED_BENCH / "serve.sh")
    subprocess.run([serve, "start", str(args.port), str(directory)], check=True)
    sink = webhook_sink()
    try:
        urls = farm_urls(directory, f"http://127.0.0.1:{args.port}")
        hook = f"http://127.0.0.1:{sink.server_address[1]}/hook"
        print(f"{len(urls)} farm feeds, cpus={os.cpu_count()}, PostgreSQL {ADMIN}")
        for count in (int(c) for c in args.replicas.split(",") if c):
            report(count, len(urls), run(count, urls, hook, args.timeout))
        if args.takeover:
            print(takeover(urls, hook, args.timeout))
    finally:
        sink.shutdown()
        subprocess.run([serve, "stop", str(args.port)], check=False)


if __name__ == "__main__":
    main()
