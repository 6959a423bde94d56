"""How fast matching is: items per second with the shipped rules and with generated rules, and
matching time relative to `feedparser.parse` of the same items.

    .venv/bin/python -m bench.bench_matching [--data ../shared/eval/dev.jsonl] [--rules 1000]

Two workloads: the real-world feeds of ../shared/corpus (a general news mix, where most items
share no word with the rules) and the labeled dev items served as RSS (all on the watched
topics: the worst case). A benchmark, not a test: it prints figures (docs/rules.md quotes them).
Times are process CPU time: the cores are shared, and wall-clock time measured the neighbours.
"""

from __future__ import annotations

import argparse
import html
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import feedparser

from bench.eval_rules import DEFAULT_DATA, DEFAULT_RULES, load_matcher, read_rows, to_item
from monitor.matching import Matcher, RuleFile, compile_rules
from monitor.models import Item
from monitor.text import tokenize

FALLBACK_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "matching"
DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "real-world"
FEED_SIZE = 50  # items per RSS document


def load_items(path: Path) -> list[dict[str, object]]:
    if path.is_file():
        return read_rows(path)
    rows: list[dict[str, object]] = []
    for name in ("holdout.jsonl", "holdout2.jsonl", "more-rules.jsonl"):
        rows.extend(read_rows(FALLBACK_DATA / name))
    return rows


def as_rss(rows: list[dict[str, object]]) -> bytes:
    entries = "".join(
        f"<item><title>{html.escape(str(r['title']))}</title>"
        f"<description>{html.escape(str(r.get('summary', '')))}</description>"
        f"<guid>{html.escape(str(r.get('id', i)))}</guid></item>"
        for i, r in enumerate(rows)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>bench</title>'
        f"<link>https://example.org/</link><description>bench</description>{entries}"
        "</channel></rss>"
    ).encode()


def generated_rules(
    rows: list[dict[str, object]], count: int, analyzer: str | None = "lemma", seed: int = 7
) -> Matcher:
    """`count` rules over the items' own vocabulary (so they fire), in the shapes analysts write:
    two term sets near each other, an `any` of a third, and an exclusion."""
    rng = random.Random(seed)
    words = sorted(
        {t.folded for r in rows for t in tokenize(f"{r['title']} {r.get('summary', '')}")} - {""}
    )
    words = [w for w in words if len(w) > 3]
    terms = {f"s{i}": rng.sample(words, 8) for i in range(count // 2)}
    rules = []
    for i in range(count):
        a, b, c, d = (f"$s{rng.randrange(len(terms))}" for _ in range(4))
        rules.append(
            {
                "id": f"generated-{i}",
                "title": f"Generated {i}",
                "match": {
                    "all": [{"near": [a, b], "within": 10}, {"any": [c, rng.choice(words) + "*"]}],
                    "not": [d],
                },
            }
        )
    compiled = compile_rules([(Path("generated.yaml"), RuleFile.model_validate(
        {"terms": terms, "rules": rules}))], analyzer=analyzer)  # fmt: skip
    if isinstance(compiled, list):
        raise SystemExit(f"generated rules do not compile: {compiled[:3]}")
    return compiled


def seconds(run: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def match_all(matcher: Matcher, items: list[Item]) -> int:
    return sum(len(matcher.match(item)) for item in items)


def corpus_workload(corpus: Path) -> tuple[list[bytes], list[Item]]:
    """The corpus feeds as bytes, and their entries as items (title, summary, content, tags)."""
    documents = [p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file()]
    items: list[Item] = []
    for document in documents:
        for entry in feedparser.parse(document).entries:
            content = " ".join(str(c.get("value", "")) for c in entry.get("content", []))
            tags = tuple(str(t.get("term", "")) for t in entry.get("tags", []))
            items.append(
                Item(
                    title=str(entry.get("title", "")), summary=str(entry.get("summary", "")),
                    content=content, tags=tags,
                )
            )  # fmt: skip
    return documents, items


def report(name: str, parse: float, items: list[Item], matchers: dict[str, Matcher]) -> None:
    print(f"{name}: {len(items)} items, feedparser.parse {len(items) / parse:.0f} items/s")
    for label, matcher in matchers.items():
        spent = seconds(lambda m=matcher: match_all(m, items))  # type: ignore[misc]
        print(
            f"  {label:<26} {len(items) / spent:9.0f} items/s = {spent / parse:6.1%} of parse time"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rules", type=int, default=1000, help="how many rules to generate")
    parser.add_argument("--copies", type=int, default=10, help="times each item is matched")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of feeds")
    parser.add_argument(
        "--analyzer", choices=["lemma", "morph", "stem", "none"], default="lemma",
        help="morphology for plain words (none: words match as written, as before inflection)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    analyzer = None if args.analyzer == "none" else args.analyzer

    rows = load_items(args.data)
    items = [to_item(row) for row in rows] * args.copies
    feeds = [as_rss(rows[i : i + FEED_SIZE]) for i in range(0, len(rows), FEED_SIZE)]
    parse = seconds(lambda: [feedparser.parse(feed) for feed in feeds]) * args.copies

    start = time.process_time()
    shipped = load_matcher(DEFAULT_RULES, analyzer)
    compile_shipped = time.process_time() - start
    cold = seconds(lambda: match_all(load_matcher(DEFAULT_RULES, analyzer), items[: len(rows)]), 1)
    warm = seconds(lambda: match_all(shipped, items))

    start = time.process_time()
    many = generated_rules(rows, args.rules, analyzer)
    compile_many = time.process_time() - start
    ten = generated_rules(rows, max(1, args.rules // 10), analyzer)
    warm_many = seconds(lambda: match_all(many, items))
    warm_ten = seconds(lambda: match_all(ten, items))

    if args.corpus.is_dir():
        documents, corpus_items = corpus_workload(args.corpus)
        corpus_parse = seconds(lambda: [feedparser.parse(d) for d in documents])
        matchers = {f"shipped ({len(shipped.rules)} rules)": shipped,
                    f"generated ({len(ten.rules)} rules)": ten,
                    f"generated ({len(many.rules)} rules)": many}  # fmt: skip
        report(f"corpus {args.corpus}", corpus_parse, corpus_items, matchers)
    n = len(items)
    print(f"dev items as RSS: {len(rows)} distinct, {n} matched per run ({args.copies} copies)")
    print(f"feedparser.parse as RSS: {n / parse:10.0f} items/s")
    print(
        f"shipped rules ({len(shipped.rules)}): compile {compile_shipped * 1000:.0f} ms, "
        f"first pass (cold cache, incl. compile) {len(rows) / cold:.0f} items/s, "
        f"steady {n / warm:.0f} items/s = {warm / parse:.1%} of parse time"
    )
    print(
        f"generated rules: {args.rules // 10} → {n / warm_ten:.0f} items/s; "
        f"{args.rules} (compile {compile_many:.1f} s) → {n / warm_many:.0f} items/s; "
        f"10x the rules cost {warm_many / warm_ten:.1f}x the time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
