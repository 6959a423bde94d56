"""What leaving a changed document's known entries out of its parse saves (monitor.feeds.entries).

    .venv/bin/python -m bench.known_entries [--items 40] [--new 3] [--documents 200] [--runs 5]

DOCUMENTS RSS 2.0 documents of ITEMS items each, shaped like the shared farm's (a title, link,
guid, date, author, category and a description of about 600 characters, half of them in CDATA
with markup), each then given NEW items at the top and as many fallen off the bottom. Prints,
per document (the best of RUNS passes over all of them): the parse of the changed document
whole, its parse with the last one's digests, and the cut-and-digest step alone, which a first
poll pays without the gain.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from monitor.feeds.entries import split_entries
from monitor.feeds.parser import ParsedFeed, parse_feed

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}
WORDS = (
    *("minister", "visit", "talks", "sanctions", "embassy", "delegation", "agreement", "trade"),
    *("energy", "security", "government", "officials", "statement", "ministry", "cooperation"),
    *("regional", "border", "summit"),
)


def item(feed: int, number: int, rng: random.Random) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(85)).capitalize() + "."
    description = f"<![CDATA[<p>{text}</p>]]>" if number % 2 else text
    return (
        f"<item><title>{' '.join(rng.choice(WORDS) for _ in range(9)).capitalize()}</title>"
        f"<link>https://news.example/{feed}/{number}.html</link>"
        f'<guid isPermaLink="false">urn:bench:{feed}:{number}</guid>'
        f"<pubDate>Wed, 02 Dec 2026 {number % 24:02d}:00:00 GMT</pubDate>"
        f"<dc:creator>Staff {feed % 40}</dc:creator><category>World</category>"
        f"<description>{description}</description></item>\n"
    )


def document(feed: int, first: int, last: int) -> bytes:
    """Items `last` down to `first`, each the same bytes in every document of this feed."""
    items = "".join(item(feed, n, random.Random(f"{feed}:{n}")) for n in range(last, first - 1, -1))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Wire {feed}</title><link>https://news.example/{feed}/</link>"
        f"<description>News</description><ttl>30</ttl>\n{items}</channel></rss>\n"
    ).encode()


def best_ms(runs: int, count: int, work: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--new", type=int, default=3)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pairs = []
    for feed in range(args.documents):
        last = document(feed, 1, args.items)
        now = document(feed, 1 + args.new, args.items + args.new)
        before = parse_feed(last, url=f"https://news.example/{feed}.xml", headers=HEADERS)
        assert isinstance(before, ParsedFeed)
        pairs.append((feed, now, before.entry_digests))

    def parse(known: bool) -> Callable[[], None]:
        def run() -> None:
            for feed, body, digests in pairs:
                url = f"https://news.example/{feed}.xml"
                parse_feed(body, url=url, headers=HEADERS, known=digests if known else b"")

        return run

    def split() -> None:
        for _feed, body, _digests in pairs:
            split_entries(body)

    size = sum(len(body) for _feed, body, _digests in pairs) / len(pairs) / 1024
    whole = best_ms(args.runs, len(pairs), parse(known=False))
    pruned = best_ms(args.runs, len(pairs), parse(known=True))
    cut = best_ms(args.runs, len(pairs), split)
    feed, body, digests = pairs[0]
    check = parse_feed(body, url=f"https://news.example/{feed}.xml", headers=HEADERS, known=digests)
    assert isinstance(check, ParsedFeed)
    print(
        f"{len(pairs)} documents of {args.items} items ({size:.0f} KB), {args.new} new in each; "
        f"best of {args.runs} passes, per document"
    )
    print(f"  parse whole                     {whole:7.2f} ms")
    print(f"  parse without the known entries {pruned:7.2f} ms  ({check.known_entries} left out)")
    print(f"  cut and digest alone            {cut:7.2f} ms  ({cut / whole:.1%} of a whole parse)")


if __name__ == "__main__":
    main()
