"""What running the rules' examples costs, beside loading the config: the daemon runs them on
start and on every reload, so this is what they add to both.

    .venv/bin/python -m bench.bench_examples [--config config] [--runs 3]

Each run is a fresh process (a cold lexicon, as at start-up); it prints the process CPU time of
loading and compiling the config without examples, of the first run of the examples (words not
seen yet) and of a second run (warm). A benchmark, not a test: docs/rules.md quotes the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _once(config: Path) -> str:
    """One measurement in this process: load, examples cold, examples warm."""
    from monitor.config.settings import load_config  # noqa: PLC0415 - timed from a cold start
    from monitor.matching.examples import run_examples  # noqa: PLC0415

    start = time.process_time()
    loaded = load_config(config, {}, examples=False)
    loaded_at = time.process_time()
    failures = run_examples(loaded.matcher)
    cold_at = time.process_time()
    run_examples(loaded.matcher)
    warm_at = time.process_time()
    return (
        f"load and compile {loaded_at - start:.3f} s; {len(loaded.matcher.examples)} examples: "
        f"{(cold_at - loaded_at) * 1000:.1f} ms cold, {(warm_at - cold_at) * 1000:.1f} ms warm; "
        f"{len(failures)} failing"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(_once(args.config))
        return 0
    for run in range(1, args.runs + 1):
        child = [
            sys.executable,
            "-m",
            "bench.bench_examples",
            "--child",
            "--config",
            str(args.config),
        ]
        done = subprocess.run(child, cwd=REPO, capture_output=True, text=True, check=False)
        print(f"run {run}: {done.stdout.strip() or done.stderr.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
