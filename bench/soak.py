"""Soak: the real daemon over many local feeds for N minutes; memory, descriptors, database size.

    .venv/bin/python -m bench.soak --feeds 1000 --minutes 10 --interval 30s

Generates a feed farm with ../shared/bench/feedfarm.py and serves it with nginx
(../shared/bench/serve.sh; conditional GETs answered with 304) — or, without nginx, a stdlib
server that answers If-Modified-Since. Runs `monitor run` with every feed on a short interval,
delivering to `monitor sink`, and every --mutate-every seconds adds fresh items to a fraction of
the feeds (so items are stored, matched and alerts delivered all along). Samples the daemon's
RSS (and its parse workers'), open file descriptors, threads, database size (with its WAL) and a
few /metrics counters, and prints the curve. The question it answers: does anything grow without
levelling off?
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

import yaml

REPO = Path(__file__).resolve().parent.parent
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
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
    args = parser.parse_args()

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
    base = f"http://127.0.0.1:{args.port}/feeds"
    document = {
        "version": 1,
        "storage": f"sqlite:///{work / 'data' / 'monitor.db'}",
        "http": "127.0.0.1:0",
        "rules": "rules/",
        "defaults": {"interval": args.interval, "backfill": "none"},
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
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    size = sum(p.stat().st_size for p in database.parent.glob(database.name + "*") if p.is_file())
    children = _children_rss(pid)
    row = {
        "t": round(elapsed),
        "rss_mib": round(rss / 1024, 1),
        "kids": len(children),
        "kids_mib": round(sum(children) / 1024, 1),
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


def _children_rss(pid: int) -> list[int]:
    """RSS in KiB of each child process (the parse workers), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids = (task / "children").read_text(encoding="utf-8").split()
        except OSError:
            continue
        for kid in kids:
            try:
                status = Path(f"/proc/{kid}/status").read_text(encoding="utf-8")
            except OSError:
                continue
            match = re.search(r"VmRSS:\s+(\d+)", status)
            found.append(int(match.group(1)) if match else 0)
    return found


HEADER = (
    f"{'t s':>6} {'RSS MiB':>8} {'kids':>4} {'kids MiB':>8} {'fds':>5} {'thr':>4} {'db MiB':>7} "
    f"{'200s':>7} {'304s':>7} {'fail':>5} {'items':>7} {'alerts':>6} {'outbox':>6} {'reload':>6}"
)


def format_row(row: dict[str, float]) -> str:
    return (
        f"{row['t']:>6.0f} {row['rss_mib']:>8.1f} {row['kids']:>4.0f} {row['kids_mib']:>8.1f} "
        f"{row['fds']:>5.0f} {row['threads']:>4.0f} "
        f"{row['db_mib']:>7.2f} {row['polls']:>7.0f} {row['304s']:>7.0f} {row['failed']:>5.0f} "
        f"{row['items']:>7.0f} {row['alerts']:>6.0f} {row['outbox']:>6.0f} {row['reloads']:>6.0f}"
    )


def print_curve(samples: list[dict[str, float]], args: argparse.Namespace) -> None:
    print()
    print(
        f"soak: {args.feeds} feeds x {args.items} items, interval {args.interval}, "
        f"{args.minutes:g} min, {args.mutate:.0%} of feeds mutated every {args.mutate_every:g}s"
        + (f", a rule edited every {args.reload_every:g}s" if args.reload_every else "")
    )
    print(HEADER)
    for row in samples:
        print(format_row(row))
    if len(samples) >= 4:
        half = samples[len(samples) // 2]
        last = samples[-1]
        print(
            f"second half: RSS {half['rss_mib']:.1f} -> {last['rss_mib']:.1f} MiB "
            f"(+ workers {half['kids_mib']:.1f} -> {last['kids_mib']:.1f}), "
            f"fds {half['fds']:.0f} -> {last['fds']:.0f}, "
            f"db {half['db_mib']:.2f} -> {last['db_mib']:.2f} MiB"
        )


if __name__ == "__main__":
    sys.exit(main())
