"""Soak: the real daemon over many local feeds for N minutes; memory, descriptors, database size.

    .venv/bin/python -m bench.soak --feeds 1000 --minutes 10 --interval 30s
    .venv/bin/python -m bench.soak --feeds 10000 --rules 1000 --minutes 60 --interval 10m
    .venv/bin/python -m bench.soak --feeds 10000 --rules 1000 --once

The second and third are the figures of issue #21: the daemon under 150 MiB RSS summed over its
processes, steady over an hour; `run --once` under 200 MiB.

Generates a feed farm with ../shared/bench/feedfarm.py and serves it with nginx
(../shared/bench/serve.sh; conditional GETs answered with 304) — or, without nginx, a stdlib
server that answers If-Modified-Since. The config holds the shipped rules and, with --rules N,
N synthetic ones (bench/rulegen.py: shaped like the shipped ones, seeded, a few matching farm
items), and `fetch.per_host: 10` (the farm is one host). Runs `monitor run` with every feed on
--interval, delivering to `monitor sink`, and every --mutate-every seconds adds fresh items to a
fraction of the feeds (so items are stored, matched and alerts delivered all along). Samples the
RSS of the daemon and of its whole process tree (the forkserver, its parse workers, the
resource tracker: /proc/PID/task/*/children, recursively), the tree's PSS (smaps_rollup: shared
pages counted once), open file descriptors, threads, database size (with its WAL) and a few
/metrics counters, and prints the curve with the peak and the second half's drift. The question
it answers: does anything grow without levelling off?

--once runs `monitor run --once --quiet` instead (`--processes N` passed on), twice over the
same farm and config: a cold pass (every item new; --backfill defaults to `all` there, so every
item is matched) then an unchanged one (every feed answers 304). The tree's summed RSS is
sampled every 0.1 s; the peak, the daemon's own ru_maxrss (os.wait4) and the wall time of each
pass are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from bench import rulegen

REPO = Path(__file__).resolve().parent.parent
PASSES = ("cold", "unchanged")  # of --once
SHARED_BENCH = REPO.parent / "shared" / "bench"
SECRET = "whsec_" + "bW9uaXRvci1zb2FrLXNlY3JldC0wMTIzNDU2Nzg5YWI="
SOAK_RULE = """\
version: 1
rules:
  - id: soak-watch
    title: Any farm item naming Russia, Cuba, Havana or Moscow (about 2 % of items)
    severity: low
    match:
      any: [Russia, Cuba, Havana, Moscow]
"""
METRICS = {
    "polls": 'monitor_polls_total{outcome="fetched"}',
    "304s": 'monitor_polls_total{outcome="unchanged"}',
    "failed": 'monitor_polls_total{outcome="failed"}',
    "items": "monitor_items_seen_total",
    "alerts": "monitor_alerts_created_total",
    "outbox": "monitor_outbox_depth",
    "reloads": "monitor_config_reloads_total",
}


def main() -> int:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="monitor-soak-"))
    work.chmod(0o755)  # nginx's workers (nobody) read the farm
    farm = work / "farm"
    feedfarm = [sys.executable, str(SHARED_BENCH / "feedfarm.py"), str(farm)]
    subprocess.run([*feedfarm, "--feeds", str(args.feeds), "--items", str(args.items)], check=True)
    strip_ttl(farm)
    stop_farm = serve(farm, args.port)
    sink = subprocess.Popen(
        [sys.executable, "-m", "monitor", "sink", "--port", "0", "--secret", SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    daemon: subprocess.Popen[str] | None = None
    try:
        sink_url = sink_address(sink)
        config = write_config(work, args, sink_url)
        if args.once:
            passes = [run_once(config, work, name, args.processes) for name in PASSES]
            print_passes(passes, args)
            return 0
        log = (work / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        base = wait_for_http(work / "daemon.log", daemon)
        samples = soak(daemon, base, work, feedfarm, args)
        print_curve(samples, args)
        if args.json:
            args.json.write_text(json.dumps(samples, indent=1), encoding="utf-8")
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = daemon.wait(timeout=60)
            print(f"daemon stopped with exit code {code} in {time.monotonic() - started:.1f}s")
        sink.terminate()  # SIGTERM: a background shell may have made SIGINT ignored
        try:
            sink.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sink.kill()
        stop_farm()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=0, help="synthetic rules besides the shipped")
    parser.add_argument("--rule-seed", type=int, default=1)
    parser.add_argument(
        "--once", action="store_true", help="two `run --once` passes (cold, unchanged)"
    )
    parser.add_argument("--backfill", help="defaults.backfill (default: none; with --once: all)")
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", default="30s", help="every feed's poll interval")
    parser.add_argument("--sample", type=float, default=30, help="seconds between samples")
    parser.add_argument("--mutate-every", type=float, default=60, help="seconds")
    parser.add_argument("--mutate", type=float, default=0.05, help="fraction of feeds")
    parser.add_argument(
        "--reload-every", type=float, default=0, help="seconds between rule edits (0: none)"
    )
    parser.add_argument("--port", type=int, default=18765, help="the farm's port")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", type=Path, help="also write the samples here")
    parser.add_argument(
        "--processes", type=int, help="with --once: `run --once --processes N` (default: its own)"
    )
    args = parser.parse_args()
    if args.backfill is None:
        args.backfill = "all" if args.once else "none"

    return args


def serve(farm: Path, port: int) -> partial[None]:
    """nginx via serve.sh when it is installed, else a stdlib server (If-Modified-Since only)."""
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        script = str(SHARED_BENCH / "serve.sh")
        subprocess.run(["bash", script, "start", str(port), str(farm)], check=True)
        print(f"farm: nginx on 127.0.0.1:{port}")
        return partial(_run_quietly, ["bash", script, "stop", str(port)])
    handler = partial(_QuietHandler, directory=str(farm))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"farm: stdlib server on 127.0.0.1:{port} (nginx not found)")
    return partial(_shutdown, server)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


def _run_quietly(command: list[str]) -> None:
    subprocess.run(command, check=False, capture_output=True)


def _shutdown(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def sink_address(sink: subprocess.Popen[str]) -> str:
    assert sink.stdout is not None
    for line in sink.stdout:
        found = re.search(r"(http://[\d.]+:\d+)", line)
        if found:
            threading.Thread(target=sink.stdout.read, daemon=True).start()  # drain
            return found.group(1) + "/hook"
    raise RuntimeError("monitor sink did not say where it listens")


def write_config(work: Path, args: argparse.Namespace, sink_url: str) -> Path:
    config = work / "config"
    shutil.copytree(REPO / "config" / "rules", config / "rules")
    (config / "rules" / "soak.yaml").write_text(SOAK_RULE, encoding="utf-8")
    rulegen.write(config / "rules", args.rules, seed=args.rule_seed)
    base = f"http://127.0.0.1:{args.port}/feeds"
    document = {
        "version": 1,
        "storage": f"sqlite:///{work / 'data' / 'monitor.db'}",
        "http": "127.0.0.1:0",
        "rules": "rules/",
        "defaults": {"interval": args.interval, "backfill": args.backfill},
        "fetch": {"per_host": 10},  # the farm is one host; the default 4 would throttle it
        "feeds": [{"url": f"{base}/f{i:05d}.xml"} for i in range(args.feeds)],
        "webhooks": [{"name": "sink", "url": sink_url, "secret": SECRET}],
    }
    (config / "monitor.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return config


def wait_for_http(log: Path, daemon: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"http (http://[\d.]+:\d+)", log.read_text(encoding="utf-8"))
        if found:
            return found.group(1)
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited: {log.read_text(encoding='utf-8')[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError("the daemon did not start within 120s")


def strip_ttl(farm: Path) -> None:
    """Drop the farm's `<ttl>30</ttl>`: monitor honors it (30 min between polls), and a soak
    wants the short interval. The file's mtime (its ETag and Last-Modified) is kept."""
    for path in (farm / "feeds").glob("*.xml"):
        text = path.read_text(encoding="utf-8")
        if "<ttl>" in text:
            stat = path.stat()
            path.write_text(re.sub(r"<ttl>\d+</ttl>\n?", "", text), encoding="utf-8")
            os.utime(path, (stat.st_atime, stat.st_mtime))


def edit_rule(path: Path) -> None:
    """A rule edit the daemon reloads: the soak rule's severity, low <-> medium."""
    text = path.read_text(encoding="utf-8")
    swapped = "medium" if "severity: low" in text else "low"
    path.write_text(re.sub(r"severity: \w+", f"severity: {swapped}", text), encoding="utf-8")


def soak(
    daemon: subprocess.Popen[str],
    base: str,
    work: Path,
    feedfarm: list[str],
    args: argparse.Namespace,
) -> list[dict[str, float]]:
    database, farm = work / "data" / "monitor.db", work / "farm"
    started = time.monotonic()
    end = started + args.minutes * 60
    next_sample, next_mutation = started, started + args.mutate_every
    never = end + 1
    next_reload = started + args.reload_every if args.reload_every else never
    samples: list[dict[str, float]] = []
    while time.monotonic() < end and daemon.poll() is None:
        now = time.monotonic()
        if now >= next_reload:
            edit_rule(work / "config" / "rules" / "soak.yaml")
            next_reload += args.reload_every
        if now >= next_mutation:
            subprocess.run(
                [*feedfarm, "--mutate", str(args.mutate), "--seed", str(int(now))],
                check=True,
                capture_output=True,
            )
            strip_ttl(farm)
            next_mutation += args.mutate_every
        if now >= next_sample:
            samples.append(sample(daemon.pid, base, database, now - started))
            print(format_row(samples[-1]), flush=True)
            next_sample += args.sample
        wake = min(next_sample, next_mutation, next_reload, end)
        time.sleep(max(0.0, wake - time.monotonic()))
    samples.append(sample(daemon.pid, base, database, time.monotonic() - started))
    return samples


def sample(pid: int, base: str, database: Path, elapsed: float) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    size = sum(p.stat().st_size for p in database.parent.glob(database.name + "*") if p.is_file())
    row = {"t": round(elapsed), **tree_memory(pid)}
    row |= {
        "fds": sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir()),
        "threads": threads,
        "db_mib": round(size / 2**20, 2),
    }
    with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
        text = response.read().decode("utf-8")
    for key, name in METRICS.items():
        found = re.search("^" + re.escape(name) + r" (\S+)$", text, flags=re.MULTILINE)
        row[key] = float(found.group(1)) if found else 0.0
    return row


def tree_memory(pid: int) -> dict[str, float]:
    """The process's own RSS, and the RSS and PSS summed over it and all its descendants
    (the forkserver, its parse workers, the resource tracker), in MiB. RSS counts the pages
    the processes share (the forkserver's preloaded modules) once per process; PSS splits them."""
    own = _kib(pid, "status", "VmRSS")
    rss = pss = procs = 0
    for member in process_tree(pid):
        kib = _kib(member, "status", "VmRSS")
        if kib is None:  # gone, or a zombie
            continue
        rss, procs = rss + kib, procs + 1
        pss += _kib(member, "smaps_rollup", "Pss") or 0
    return {
        "rss_mib": round((own or 0) / 1024, 1),
        "tree_mib": round(rss / 1024, 1),
        "procs": procs,
        "pss_mib": round(pss / 1024, 1),
    }


def process_tree(pid: int) -> list[int]:
    """PID and its descendants, from /proc/PID/task/*/children (a worker of a forkserver is
    the forkserver's child, not the daemon's: hence the recursion)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                todo.extend(int(kid) for kid in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def _kib(pid: int, name: str, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/{name}").read_text(encoding="utf-8")
    except OSError:  # gone, or smaps_rollup not readable
        return None
    found = re.search(rf"^{key}:\s+(\d+) kB", text, flags=re.MULTILINE)
    return int(found.group(1)) if found else None


def run_once(config: Path, work: Path, name: str, processes: int | None) -> dict[str, Any]:
    """One `monitor run --once` pass, its process tree sampled every 0.1 s until it exits."""
    command = [sys.executable, "-m", "monitor", "run", "--once", "--quiet", "--config", str(config)]
    if processes is not None:
        command += ["--processes", str(processes)]
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    output: list[str] = []
    for stream in (process.stdout, process.stderr):
        threading.Thread(target=lambda s=stream: output.extend(s), daemon=True).start()
    peak: dict[str, float] = {"tree_mib": 0.0}
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        now = tree_memory(process.pid)
        if now["tree_mib"] > peak["tree_mib"]:
            peak = now
        time.sleep(0.1)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    time.sleep(0.2)  # let the readers drain the pipes
    summary = next((line for line in output if " polled (" in line), "".join(output)[-500:])
    print(f"{name}: exit {process.returncode}, {wall:.1f}s; {summary.strip()}", flush=True)
    return {
        "pass": name,
        "exit": process.returncode,
        "wall_s": round(wall, 1),
        "peak_tree_mib": peak["tree_mib"],
        "peak_procs": peak.get("procs", 0),
        "peak_pss_mib": peak.get("pss_mib", 0.0),
        "maxrss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux: the daemon alone
    }


def print_passes(passes: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(
        f"run --once: {args.feeds} feeds x {args.items} items, {args.rules} synthetic rules "
        f"+ the shipped, backfill {args.backfill}"
    )
    print(
        f"{'pass':<10} {'exit':>4} {'wall s':>7} {'peak tree MiB':>13} {'procs':>5} "
        f"{'PSS MiB':>8} {'maxrss MiB':>10}"
    )
    for run in passes:
        print(
            f"{run['pass']:<10} {run['exit']:>4} {run['wall_s']:>7.1f} "
            f"{run['peak_tree_mib']:>13.1f} {run['peak_procs']:>5} {run['peak_pss_mib']:>8.1f} "
            f"{run['maxrss_mib']:>10.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps(passes, indent=1), encoding="utf-8")


HEADER = (
    f"{'t s':>6} {'RSS MiB':>8} {'tree MiB':>8} {'procs':>5} {'PSS MiB':>8} {'fds':>5} "
    f"{'thr':>4} {'db MiB':>7} {'200s':>7} {'304s':>7} {'fail':>5} {'items':>7} {'alerts':>6} "
    f"{'outbox':>6} {'reload':>6}"
)


def format_row(row: dict[str, float]) -> str:
    return (
        f"{row['t']:>6.0f} {row['rss_mib']:>8.1f} {row['tree_mib']:>8.1f} {row['procs']:>5.0f} "
        f"{row['pss_mib']:>8.1f} {row['fds']:>5.0f} {row['threads']:>4.0f} "
        f"{row['db_mib']:>7.2f} {row['polls']:>7.0f} {row['304s']:>7.0f} {row['failed']:>5.0f} "
        f"{row['items']:>7.0f} {row['alerts']:>6.0f} {row['outbox']:>6.0f} {row['reloads']:>6.0f}"
    )


def print_curve(samples: list[dict[str, float]], args: argparse.Namespace) -> None:
    print()
    print(
        f"soak: {args.feeds} feeds x {args.items} items, {args.rules} synthetic rules + the "
        f"shipped, interval {args.interval}, {args.minutes:g} min, "
        f"{args.mutate:.0%} of feeds mutated every {args.mutate_every:g}s"
        + (f", a rule edited every {args.reload_every:g}s" if args.reload_every else "")
    )
    print(HEADER)
    for row in samples:
        print(format_row(row))
    peak = max(samples, key=lambda row: row["tree_mib"])
    print(
        f"peak: tree RSS {peak['tree_mib']:.1f} MiB at {peak['t']:.0f}s "
        f"({peak['procs']:.0f} processes, PSS {peak['pss_mib']:.1f} MiB, "
        f"daemon {peak['rss_mib']:.1f} MiB)"
    )
    if len(samples) >= 4:
        second = samples[len(samples) // 2 :]
        half, last = second[0], second[-1]
        print(
            f"second half: tree RSS {half['tree_mib']:.1f} -> {last['tree_mib']:.1f} MiB "
            f"({last['tree_mib'] - half['tree_mib']:+.1f}; {slope(second, 'tree_mib'):+.1f} "
            f"MiB/h fitted; range {min(r['tree_mib'] for r in second):.1f}-"
            f"{max(r['tree_mib'] for r in second):.1f}), "
            f"daemon {half['rss_mib']:.1f} -> {last['rss_mib']:.1f}, "
            f"fds {half['fds']:.0f} -> {last['fds']:.0f}, "
            f"db {half['db_mib']:.2f} -> {last['db_mib']:.2f} MiB"
        )


def slope(rows: list[dict[str, float]], key: str) -> float:
    """Least-squares slope of `key` against time, per hour."""
    ts = [row["t"] for row in rows]
    ys = [row[key] for row in rows]
    mean_t, mean_y = sum(ts) / len(ts), sum(ys) / len(ys)
    spread = sum((t - mean_t) ** 2 for t in ts)
    if not spread:
        return 0.0
    return sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys, strict=True)) / spread * 3600


if __name__ == "__main__":
    sys.exit(main())
