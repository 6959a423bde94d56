"""Score story grouping on the labeled sets: pairwise precision, recall and F1, per file and per
language pair, and the cost of one comparison.

    .venv/bin/python -m bench.eval_grouping [FILE ...] [--pairs] [--misses]

Each file (default: tests/data/grouping/dev.jsonl and heldout.jsonl) is clustered the way the
daemon groups alerts: items in file order; each joins `best_match` among the earlier groups of
its rule (compared with each group's texts, as monitor/delivery/noise.py does), else starts a
group. A pair of items of one rule
counts as *predicted* when they end in one group and as *true* when they carry one `event` label.
`--ablate` scores the function with each of its ideas turned off in turn (and a plain
rapidfuzz token_set_ratio baseline), at the shipped threshold and at the best for each.
`--pairs` also scores every pair on its own with `same_story` (no clustering) and clustering
against each group's first text alone, `--misses` prints
the pairs clustering got wrong. The timings: reading a text (folding, once per alert) and
comparing two texts already read (per alert and open group).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from monitor.delivery import grouping
from monitor.delivery.grouping import (
    StoryText,
    best_match,
    clear_caches,
    same_story,
    story_similarity,
)
from monitor.store.routing import MAX_TEXTS
from monitor.text import words

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "grouping"
DEFAULT_FILES = (DATA / "dev.jsonl", DATA / "heldout.jsonl")


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    lang: str
    rule: str
    event: str
    text: StoryText


@dataclass(slots=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    pairs: int = 0

    def add(self, predicted: bool, true: bool) -> None:
        self.pairs += 1
        self.tp += predicted and true
        self.fp += predicted and not true
        self.fn += true and not predicted

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(slots=True)
class Score:
    total: Counts = field(default_factory=Counts)
    by_langs: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    misses: list[tuple[str, Row, Row]] = field(default_factory=list)


def read_rows(path: Path) -> list[Row]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        try:
            text = StoryText(data["title"], data.get("summary") or "", data.get("lang"))
            rows.append(Row(data["id"], data["lang"], data["rule"], data["event"], text))
        except KeyError as missing:
            raise SystemExit(f"{path}:{number}: missing key {missing}") from None
    return rows


def cluster(rows: Iterable[Row], *, first_only: bool = False) -> dict[str, int]:
    """Group id per row id, assigned in order as the daemon does (monitor/delivery/noise.py):
    each row is compared with the texts of the open groups of its rule (the first MAX_TEXTS of
    each; with `first_only`, the first alone) and joins `best_match`, else opens a group."""
    groups: dict[str, list[tuple[int, StoryText]]] = defaultdict(list)
    sizes: dict[int, int] = defaultdict(int)
    assigned: dict[str, int] = {}
    next_id = 0
    for row in rows:
        texts = groups[row.rule]
        found = best_match(row.text, texts)
        if found is None:
            found, next_id = next_id, next_id + 1
        if sizes[found] < (1 if first_only else MAX_TEXTS):
            texts.append((found, row.text))
        sizes[found] += 1
        assigned[row.id] = found
    return assigned


def score(rows: list[Row], *, clustered: bool = True, first_only: bool = False) -> Score:
    """Pairwise counts over pairs of one rule: by clustering, or each pair by `same_story`."""
    groups = cluster(rows, first_only=first_only) if clustered else {}
    result = Score()
    for a, b in combinations(rows, 2):
        if a.rule != b.rule:
            continue
        predicted = groups[a.id] == groups[b.id] if clustered else same_story(a.text, b.text)
        true = a.event == b.event
        result.total.add(predicted, true)
        result.by_langs["-".join(sorted((a.lang, b.lang)))].add(predicted, true)
        if predicted != true:
            result.misses.append(("merged" if predicted else "split", a, b))
    return result


def micros(rows: list[Row], repeat: int = 5) -> tuple[float, float]:
    """µs to read one text (nothing cached), and µs per comparison of two texts already read
    (as the daemon compares each new alert with the open groups): the best of `repeat` runs."""
    texts = [row.text for row in rows]
    pairs = list(combinations(texts, 2))
    read = compare = float("inf")
    for _ in range(repeat):
        clear_caches()
        start = time.perf_counter()
        for text in texts:
            story_similarity(text, text)
        read = min(read, time.perf_counter() - start)
        start = time.perf_counter()
        for a, b in pairs:
            story_similarity(a, b)
        compare = min(compare, time.perf_counter() - start)
    return read / len(texts) * 1e6, compare / len(pairs) * 1e6


def _token_set(a: StoryText, b: StoryText) -> float:
    """The plain baseline: rapidfuzz token_set_ratio of folded title + summary."""
    return fuzz.token_set_ratio(
        " ".join(words(f"{a.title} {a.summary}")), " ".join(words(f"{b.title} {b.summary}"))
    )


# Each idea of monitor/delivery/grouping.py turned off in turn: module settings to change.
ABLATIONS: dict[str, dict[str, Any]] = {
    "shipped": {},
    "no stop words": {"_STOP": frozenset()},
    "no glossary": {"_CONCEPT_STEMS": {}},
    "no aliases": {"ALIASES": {}, "ALIASES_EXACT": {}},
    "no phonetic spelling": {"_SPELLING_RULES": ()},
    "no spelling match": {"SPELLING": 100.0},
    "names weigh 1": {"ENTITY": 1.0},
    "title weighs 1": {"TITLE": 1.0},
    "no place conflict": {"PLACE_CONFLICT": 1.0},
    "no call conflict": {"CALL_CONFLICT": 1.0},
    "no content floor": {"MIN_CONTENT": 0.0},
    "title only": {"_READ_SUMMARY": False},
    "token_set_ratio": {"story_similarity": _token_set},
}


@contextmanager
def ablated(settings: dict[str, Any]) -> Iterator[None]:
    saved = {name: getattr(grouping, name) for name in settings}
    try:
        for name, value in settings.items():
            setattr(grouping, name, value)
        clear_caches()
        yield
    finally:
        for name, value in saved.items():
            setattr(grouping, name, value)
        clear_caches()


def ablation_report(path: Path) -> None:
    """F1 (clustered, pairwise) of each ablation at the shipped threshold and at its best one."""
    rows = read_rows(path)
    print(f"{path.name}: clustered F1 at THRESHOLD {grouping.THRESHOLD:g}, and at the best")
    shipped = grouping.THRESHOLD
    for name, settings in ABLATIONS.items():
        with ablated(settings):
            at_shipped = score(rows).total
            best = (0.0, shipped)
            for threshold in range(20, 92, 2):
                grouping.THRESHOLD = float(threshold)
                best = max(best, (score(rows).total.f1, float(threshold)))
            grouping.THRESHOLD = shipped
        print(
            f"  {name:<22} P {at_shipped.precision:5.3f} R {at_shipped.recall:5.3f}"
            f" F1 {at_shipped.f1:5.3f} | best F1 {best[0]:5.3f} at {best[1]:g}"
        )


def line(name: str, counts: Counts) -> str:
    return (
        f"  {name:<10} P {counts.precision:5.3f}  R {counts.recall:5.3f}  F1 {counts.f1:5.3f}"
        f"   (tp {counts.tp}, fp {counts.fp}, fn {counts.fn}; {counts.pairs} pairs)"
    )


def report(path: Path, *, pairs: bool, misses: bool) -> None:
    rows = read_rows(path)
    events = len({(row.rule, row.event) for row in rows})
    print(
        f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
        f"{len(rows)} items, {events} events"
    )
    result = score(rows)
    print(line("clustered", result.total))
    for langs, counts in sorted(result.by_langs.items()):
        print(line(langs, counts))
    if pairs:
        print(line("pairwise", score(rows, clustered=False).total))
        print(line("vs first", score(rows, first_only=True).total))
    if misses:
        for kind, a, b in result.misses:
            similarity = story_similarity(a.text, b.text)
            print(f"    {kind} {similarity:5.1f} {a.id} [{a.event}] {a.text.title!r}")
            print(f"    {' ' * len(kind)}       {b.id} [{b.event}] {b.text.title!r}")
    read, compare = micros(rows)
    print(f"  {compare:.1f} µs/pair compared, {read:.1f} µs/text read (caches cleared)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=list(DEFAULT_FILES))
    parser.add_argument("--pairs", action="store_true", help="also score pairs without clustering")
    parser.add_argument("--misses", action="store_true", help="print the pairs clustered wrong")
    parser.add_argument(
        "--ablate", action="store_true", help="score with each idea of the function turned off"
    )
    args = parser.parse_args(argv)
    for path in args.files:
        if args.ablate:
            ablation_report(path)
        else:
            report(path, pairs=args.pairs, misses=args.misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
