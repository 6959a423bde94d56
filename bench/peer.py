"""`monitor` as a peer of ../shared/bench/run_peers.py (the nginx feed farm).

    cd ../shared/bench; M=/path/to/monitor
    python3 run_peers.py --feeds 1000 --reps 3 --peers floor-c10 \\
      --custom "monitor=$M/.venv/bin/python $M/bench/peer.py --urls {urls} --state {state}"

(run_peers.py runs the command in its own folder; the script puts the repository on sys.path.)
Each phase is one `run --once` of the real pipeline (conditional GET, parse without a changed
feed's known entries, identity, matching with the shipped rules, the polls' transactions in
SQLite) over the farm's URLs, with `fetch.per_host: 10` (the farm is one host; the floor uses 10
connections). Prints the JSON
line run_peers.py reads: new items recorded (not entries parsed) and the inner wall time.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
gc.disable()  # as the `monitor` command loads the application (monitor.cli.launch)

import yaml  # noqa: E402

from monitor.config.settings import load_config  # noqa: E402
from monitor.processes import (  # noqa: E402
    exit_without_teardown,
    fewer_malloc_arenas,
    name_main_after_the_package,
)
from monitor.runtime.once import run_cycle  # noqa: E402


def write_config(state: Path, urls: list[str]) -> Path:
    directory = state / "config"
    if not directory.exists():
        directory.mkdir(parents=True)
        shutil.copytree(REPO / "config" / "rules", directory / "rules")
    document = {
        "storage": f"sqlite:///{state / 'monitor.db'}",
        "defaults": {"interval": "10m", "backfill": "24h"},
        "fetch": {"per_host": 10},
        "feeds": [{"url": url} for url in urls],
    }
    text = yaml.dump(document, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    config = directory / "monitor.yaml"
    if not config.exists() or config.read_text(encoding="utf-8") != text:  # phases share it
        config.write_text(text, encoding="utf-8")
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description="monitor as a run_peers.py peer")
    parser.add_argument("--urls", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    name_main_after_the_package()  # as `monitor` does first (monitor.cli.main.entry)
    fewer_malloc_arenas()  # as `monitor` does next
    gc.freeze()  # as `monitor` does once its modules are loaded, and resumes the collector
    gc.enable()
    urls = [line.strip() for line in args.urls.read_text().splitlines() if line.strip()]
    args.state.mkdir(parents=True, exist_ok=True)
    config = load_config(write_config(args.state, urls), {})
    started = time.perf_counter()
    summary = run_cycle(config, timedelta(0))  # as `monitor run --once` does
    inner = time.perf_counter() - started
    print(summary.line(), file=sys.stderr)
    print(json.dumps({"items": summary.new_items, "inner_wall": round(inner, 3)}))
    gc.freeze()  # as `monitor run --once` does before it exits


if __name__ == "__main__":
    main()
    exit_without_teardown(0)  # as `monitor` exits
