"""Fixtures of the web tests: a store seeded with alerts over both backends, and a client of
the console's routes served by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.apps import routes_app
from tests.web.seed import Seeded, seed
from tests.web.serving import serving


@pytest.fixture
def seeded(tmp_path: Path, storage_url: str) -> Iterator[Seeded]:
    made = seed(tmp_path / "config", storage_url)
    yield made
    made.close()


@pytest.fixture
def client(seeded: Seeded) -> Iterator[httpx.Client]:
    with serving(routes_app(seeded)) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield http
