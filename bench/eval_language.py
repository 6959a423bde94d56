"""How well, and at what cost, items without a declared language are identified (rule `lang:`).

    .venv/bin/python -m bench.eval_language [--data ../shared/eval/dev.jsonl]

Accuracy of monitor.matching.language.item_language (py3langid's full model, as the matcher
uses it) on the labeled dev items (their `lang` is the outlet's, LABELING.md) and on
tests/data/language/labeled.jsonl (news lines in en/es/ru and a few neighbours: pt, fr, uk),
each on the title alone and on title and summary; the CPU time per item; and the cost of the
first identification in a fresh process (loading the model), measured in a subprocess.
A benchmark, not a test: it prints figures (docs/rules.md quotes them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.eval_rules import DEFAULT_DATA
from monitor.matching.language import item_language
from monitor.models import Item

OWN = Path(__file__).resolve().parent.parent / "tests" / "data" / "language" / "labeled.jsonl"
_FIRST_USE = (  # CPU seconds, peak RSS growth (KiB), resident growth (pages; Linux)
    "import gc, resource, time; import monitor.cli.main; "
    "statm = lambda: int(open('/proc/self/statm').read().split()[1]); before = statm(); "
    "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; t = time.process_time(); "
    "from monitor.matching.language import identify; identify('warm up the model'); "
    "spent = time.process_time() - t; gc.collect(); "
    "print(spent, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss, statm() - before)"
)
_STARTS_WITHOUT = (  # what `monitor` imports at start: py3langid must not be among them
    "import sys, monitor.cli.main, monitor.runtime.daemon; print('py3langid' in sys.modules)"
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _score(rows: list[dict[str, str]], *, summary: bool) -> tuple[int, float, Counter[str]]:
    right, wrong = 0, Counter[str]()
    started = time.process_time()
    for row in rows:
        item = Item(title=row["title"], summary=row.get("summary", "") if summary else "")
        code = item_language(item).code
        if code == row["lang"]:
            right += 1
        else:
            wrong[f"{row['lang']}->{code}"] += 1
    per_item = (time.process_time() - started) / max(len(rows), 1)
    return right, per_item, wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    first = subprocess.run(  # a fresh process: what the first undeclared item costs
        [sys.executable, "-c", _FIRST_USE], capture_output=True, text=True, check=True
    )
    seconds, kib, pages = first.stdout.split()
    print(
        f"first identification in a fresh process (model load): {float(seconds):.2f} s CPU, "
        f"+{int(kib) / 1024:.0f} MiB peak RSS, +{int(pages) * 4 / 1024:.0f} MiB resident after"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", _STARTS_WITHOUT], capture_output=True, text=True, check=True
    )
    print(f"py3langid loaded at start: {loaded.stdout.strip()}")
    item_language(Item(title="warm up the model"))
    sets = [("own", OWN)] + ([("dev", args.data)] if args.data.is_file() else [])
    if len(sets) == 1:
        print(f"({args.data} absent: the dev set is not scored)")
    for name, path in sets:
        rows = _rows(path)
        langs = Counter(row["lang"] for row in rows)
        print(f"{name}: {len(rows)} items ({', '.join(f'{k} {v}' for k, v in langs.items())})")
        for summary in (False, True):
            right, per_item, wrong = _score(rows, summary=summary)
            fields = "title+summary" if summary else "title only"
            print(
                f"  {fields:<14} {right}/{len(rows)} = {right / len(rows):.1%}  "
                f"{per_item * 1e6:.0f} us/item  wrong: {dict(wrong.most_common(6))}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
