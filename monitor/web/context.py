"""What every route of the web layer is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor.config.settings import LoadedConfig
from monitor.store import Store


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WebContext:
    """The daemon's store, the config in force now (it changes on reload), and a clock that
    tests may replace."""

    store: Store
    config: Callable[[], LoadedConfig]
    now: Callable[[], datetime] = field(default=_utcnow)
