"""What recording polls costs the main process: seconds, and the peak memory above the start.

    .venv/bin/python -m bench.store_writes --polls 2560 --batch 256

Writes POLLS polls (1 to 40 new items each, one alert per item with a 2 KB payload) through
`Store.record_polls` in batches of BATCH, as the PollWriter groups polls finishing together,
into a fresh SQLite file (or `--url`). Prints the time spent writing and how far the process's
peak RSS rose above where it was once the feeds existed. The polls are made batch by batch,
so only one batch is alive at a time, as in a cold `run --once`.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.models import Item
from monitor.store import NewAlert, SeenItem, Store
from monitor.store.store import FeedState, PollRecord

PAYLOAD = {"data": "x" * 2000}


def _poll(feed: FeedState, now: datetime, items: int) -> PollRecord:
    seen = tuple(
        SeenItem(
            Item(
                title=f"Title {feed.id} {n} of the day's news",
                summary="s" * 600,
                link=f"http://feeds.test/{feed.id}/{n}",
                guid=f"g{feed.id}-{n}",
                published=now,
                feed_url=feed.url,
            ),
            (NewAlert(f"a{feed.id}-{n}", "rule", "high", 90.0, PAYLOAD, ("hook",)),),
        )
        for n in range(items)
    )
    return PollRecord(
        feed.id,
        now,
        next_check_at=now + timedelta(minutes=10),
        etag='"e"',
        last_modified=None,
        title="Feed",
        seen=seen,
        status=200,
        owner="bench",
    )


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--polls", type=int, default=2560)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--url", help="a database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        store = Store.open(url)
        now = datetime.now(UTC)
        store.sync_feeds([(f"http://feeds.test/{n}", None) for n in range(args.polls)], now)
        feeds = store.claim_feeds(
            now, timedelta(minutes=5), due_only=False, limit=args.polls, owner="bench"
        )
        sizes = random.Random(1)
        start = _peak_mib()
        spent = 0.0
        items = 0
        for first in range(0, len(feeds), args.batch):
            polls = [_poll(f, now, sizes.randint(1, 40)) for f in feeds[first : first + args.batch]]
            items += sum(len(poll.seen) for poll in polls)
            began = time.perf_counter()
            store.record_polls(polls)
            spent += time.perf_counter() - began
        store.close()
    print(
        f"{len(feeds)} polls, {items} items in batches of {args.batch}: {spent:.2f} s writing, "
        f"peak RSS {_peak_mib() - start:+.0f} MiB above the start"
    )


if __name__ == "__main__":
    main()
