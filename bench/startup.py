"""What a start costs before the first poll: importing, and loading a config with its rules.

    .venv/bin/python -m bench.startup [--feeds 1000] [--rules 0] [--runs 5]

Each figure is the median of RUNS fresh processes (`python -c`), as `run --once` from cron or a
`monitor health` check starts: the time to import what `monitor run --once` imports, the time
of `load_config` over the shipped rules (and RULES synthetic ones, bench/rulegen.py) and FEEDS
feeds when the rules must be compiled (an empty `rules/` cache) and when they are saved, and which
dictionaries each load opened. The word
dictionaries' tries come from the usual cache folder (built first if missing), the compiled rules
go to a temporary one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bench import rulegen
from monitor.dictionaries import cache_root

REPO = Path(__file__).resolve().parent.parent
PROBE = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from monitor.config.settings import load_config
from monitor.runtime.once import run_once
imported = time.perf_counter()
config = load_config(Path(sys.argv[1]), {})
loaded = time.perf_counter()
opened = [name for name in ("pymorphy3", "simplemma") if name in sys.modules]
print(json.dumps({"import": imported - started, "load": loaded - imported, "opened": opened}))
"""


def _config(folder: Path, feeds: int, rules: int) -> Path:
    shutil.copytree(REPO / "config" / "rules", folder / "rules")
    if rules:
        rulegen.write(folder / "rules", rules)
    document = {
        "storage": f"sqlite:///{folder / 'monitor.db'}",
        "feeds": [{"url": f"http://127.0.0.1:9/feeds/f{n:05}.xml"} for n in range(feeds)],
    }
    (folder / "monitor.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return folder


Probe = tuple[float, float, list[str]]  # import s, load_config s, the dictionaries it opened


def _probe(config: Path, cache: Path) -> Probe:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        capture_output=True, text=True, check=True, cwd=REPO,
        env={**os.environ, "MONITOR_CACHE_DIR": str(cache)},
    )  # fmt: skip
    found = json.loads(done.stdout)
    return float(found["import"]), float(found["load"]), list(found["opened"])


def _report(name: str, runs: list[Probe]) -> None:
    imports = statistics.median(run[0] for run in runs)
    loads = statistics.median(run[1] for run in runs)
    opened = ", ".join(runs[-1][2]) or "none"
    print(f"{name:<16} import {imports:6.3f} s   load_config {loads:6.3f} s   opened: {opened}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=0, help="synthetic rules besides the shipped")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    dictionaries = cache_root() / "dictionaries"
    if not dictionaries.is_dir():
        subprocess.run([sys.executable, "-P", "-m", "monitor.dictionaries"], check=True)
    with tempfile.TemporaryDirectory(prefix="monitor-startup-") as scratch:
        root = Path(scratch)
        config = _config(root / "config", args.feeds, args.rules)
        cache = root / "cache"
        cache.mkdir()
        (cache / "dictionaries").symlink_to(dictionaries, target_is_directory=True)
        compiled: list[Probe] = []
        loaded: list[Probe] = []
        for _ in range(args.runs):
            shutil.rmtree(cache / "rules", ignore_errors=True)
            compiled.append(_probe(config, cache))  # compiles and saves
            loaded.append(_probe(config, cache))  # loads what it saved
        rules = f" and {args.rules} synthetic ones" if args.rules else ""
        print(f"{args.feeds} feeds, the shipped rules{rules}, median of {args.runs} processes each")
        _report("rules compiled", compiled)
        _report("rules saved", loaded)


if __name__ == "__main__":
    main()
