"""Article pages read for full text (monitor.pipeline.fulltext): one row per link, holding its
main text or why it could not be read, and when. A page is fetched at most once while its row
is kept (`fetch.fulltext.keep`): by this daemon after a restart, and by every replica.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin
from monitor.store.tables import pages
from monitor.store.upsert import conflict_insert

LOOKUP_BATCH = 500  # links per query


@dataclass(frozen=True, slots=True)
class StoredPage:
    url: str
    fetched_at: datetime
    text: str | None  # None: not read, `error` says why
    error: str | None = None


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def stored_pages(engine: Engine, urls: Iterable[str]) -> dict[str, StoredPage]:
    """The pages of `urls` already read (or tried), by URL."""
    by_hash = {url_hash(url): url for url in urls}
    found: dict[str, StoredPage] = {}
    hashes = list(by_hash)
    with engine.connect() as db:
        for start in range(0, len(hashes), LOOKUP_BATCH):
            rows = db.execute(
                sa.select(pages).where(pages.c.url_hash.in_(hashes[start : start + LOOKUP_BATCH]))
            )
            for row in rows:
                url = by_hash[row.url_hash]
                found[url] = StoredPage(url, row.fetched_at, row.text, row.error)
    return found


def record_pages(engine: Engine, read: Sequence[StoredPage]) -> None:
    """Keep what was read; a page another replica recorded meanwhile keeps its row."""
    if not read:
        return
    with begin(engine) as db:
        insert = conflict_insert(db.dialect.name, pages)
        db.execute(
            insert.on_conflict_do_nothing(index_elements=[pages.c.url_hash]),
            [
                {
                    "url_hash": url_hash(page.url),
                    "url": page.url,
                    "fetched_at": page.fetched_at,
                    "text": page.text,
                    "error": page.error,
                }
                for page in read
            ],
        )


def prune_pages(engine: Engine, before: datetime) -> int:
    """Forget the pages read before `before`; how many were."""
    with begin(engine) as db:
        result = db.execute(sa.delete(pages).where(pages.c.fetched_at < before))
    return int(result.rowcount or 0)
