"""Every document of ../shared/corpus through fetch_feed + parse_feed from a local server.

The corpus (2,269 real and test feeds, see its README and MANIFEST.tsv) is never copied into the
repository; the test skips when it is absent. Set MONITOR_CORPUS to use another location.
Each document is served with the Content-Type (or other header) its test declares in the
manifest ("simulated HTTP headers: ..."), else one chosen by its extension.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.feeds.fetcher import (
    Fetched,
    FetchLimits,
    Validators,
    fetch_feed,
    make_client,
)
from monitor.feeds.parser import ParsedFeed, parse_feed
from tests.support.servers import LocalServer

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("MONITOR_CORPUS", REPO.parent / "shared" / "corpus"))
_SIMULATED = re.compile(r"simulated HTTP headers: ([^|]*)")
_BY_EXTENSION = {".json": "application/feed+json", ".rdf": "application/rdf+xml"}
# the corpus in this many tests, so parallel workers share its parsing (CPU-bound) instead of
# one worker ending the run alone with it
SHARDS = 4


@dataclass(frozen=True)
class Document:
    path: str
    headers: dict[str, str]


def manifest() -> list[Document]:
    documents = []
    lines = (CORPUS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        path, *_, description = line.split("\t")
        headers = {"Content-Type": _BY_EXTENSION.get(Path(path).suffix, "application/xml")}
        simulated = _SIMULATED.search(description)
        if simulated:
            name, _, value = simulated.group(1).strip().partition(":")
            if name.lower() == "content-type":
                headers.pop("Content-Type")
            headers[name.strip()] = value.strip()
        documents.append(Document(path, headers))
    return documents


def _invariants(feed: ParsedFeed) -> list[str]:
    """What every Item promises, whatever the document looked like."""
    problems = []
    for item in feed.items:
        if item.published is not None and item.published.utcoffset() != timedelta(0):
            problems.append(f"published not UTC: {item.published!r}")
        if item.link is not None and not item.link.startswith(("http://", "https://")):
            problems.append(f"link not http(s): {item.link!r}")
        for text in (item.title, item.summary, item.content, *item.tags):
            if text != unicodedata.normalize("NFC", text) or text != text.strip():
                problems.append(f"text not normalized: {text[:60]!r}")
        if item.guid is not None and (not item.guid or item.guid != item.guid.strip()):
            problems.append(f"guid not stripped: {item.guid!r}")
    return problems


@pytest.mark.corpus
@pytest.mark.timeout(120)  # the margin is for slow CI machines
@pytest.mark.parametrize("shard", range(SHARDS))
async def test_every_corpus_document_fetches_and_parses(shard: int) -> None:
    """Every SHARDS-th document from `shard` on: together the shards read the whole corpus."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"the feed corpus is not at {CORPUS} (set MONITOR_CORPUS to point at it)")
    documents = manifest()[shard::SHARDS]
    outcomes: Counter[str] = Counter()
    escaped: list[str] = []
    limits = FetchLimits(deadline=30)
    started = time.monotonic()
    with LocalServer(poll_interval=0.02) as server:
        for document in documents:
            body = (CORPUS / document.path).read_bytes()
            server.static(f"/{document.path}", body, headers=document.headers)
        gate = asyncio.Semaphore(16)
        async with make_client(limits=limits) as client:

            async def one(document: Document) -> None:
                try:
                    async with gate:
                        url = server.url(f"/{document.path}")
                        fetched = await fetch_feed(client, url, Validators(), limits)
                    if not isinstance(fetched, Fetched):
                        outcomes["fetch failed"] += 1
                        escaped.append(f"{document.path}: fetch: {fetched}")
                        return
                    parsed = parse_feed(fetched.body, url=fetched.url, headers=fetched.headers)
                    if isinstance(parsed, ParsedFeed):
                        outcomes["parsed"] += 1
                        outcomes["items"] += len(parsed.items)
                        escaped.extend(f"{document.path}: {p}" for p in _invariants(parsed))
                    else:
                        outcomes["parse failed"] += 1
                except Exception as error:  # the point of the test: nothing may escape
                    escaped.append(f"{document.path}: {type(error).__name__}: {error}")

            await asyncio.gather(*(one(document) for document in documents))
    elapsed = time.monotonic() - started
    print(f"corpus shard {shard}: {len(documents)} documents in {elapsed:.1f}s: {dict(outcomes)}")
    assert not escaped, "\n".join(escaped[:20])
    assert outcomes["parsed"] + outcomes["parse failed"] == len(documents)
    assert outcomes["parsed"] > 0.95 * len(documents)
