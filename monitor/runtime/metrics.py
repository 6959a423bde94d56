"""Prometheus metrics for `GET /metrics`: counted from pipeline outcomes, read from the store.

Two sources, so every number has one owner:

- counted as work finishes, in this process: polls by outcome (`RefreshOutcome`), new items,
  alerts created, HTTP latency of feed fetches and webhook deliveries (httpx event hooks on the
  shared clients: time until the response headers arrive), deliveries by outcome
  (`DispatchSummary`), config reloads and reload errors, scheduler ticks;
- read from the store when scraped (the store is the truth, shared by replicas, survives
  restarts): alerts by rule, deliveries by state, outbox depth, feeds in backoff.

Every daemon has its own `CollectorRegistry`, so tests can run several in one process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.delivery.dispatcher import DispatchSummary
from monitor.pipeline.refresh import RefreshOutcome
from monitor.store import Store
from monitor.store.counts import StoreCounts, store_counts

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_STARTED = "monitor_started"  # key of the request extension holding the start time


class Metrics:
    """The daemon's metrics; `observe_*` methods are called as work finishes."""

    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(
            "monitor_polls", "Feed polls by outcome (fetched, unchanged, failed).", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.items = Counter("monitor_items_seen", "New items recorded as seen.", registry=r)
        self.alerts = Counter("monitor_alerts_created", "Alerts created by polls.", registry=r)
        self.fetch_seconds = Histogram(
            "monitor_fetch_seconds",
            "Feed fetches: seconds from request to response headers.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "monitor_delivery_seconds",
            "Webhook deliveries: seconds from request to response headers.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "monitor_deliveries", "Delivery attempts by result (delivered, retrying, failed).",
            ["result"], registry=r,
        )  # fmt: skip
        self.reloads = Counter(
            "monitor_config_reloads", "Config edits applied without a restart.", registry=r
        )
        self.reload_errors = Counter(
            "monitor_config_reload_errors",
            "Config edits rejected (invalid); the last good config stayed in force.",
            registry=r,
        )
        self.config_valid = Gauge(
            "monitor_config_last_reload_ok",
            "1 if the config on disk is the one in force, 0 after a rejected edit.",
            registry=r,
        )
        self.config_valid.set(1)
        self.last_tick = Gauge(
            "monitor_scheduler_last_tick_timestamp_seconds",
            "Unix time of the scheduler's last tick.",
            registry=r,
        )
        self.started = Gauge(
            "monitor_start_time_seconds", "Unix time the daemon started.", registry=r
        )
        self.started.set(time.time())
        for outcome in ("fetched", "unchanged", "failed"):
            self.polls.labels(outcome)
        for result in ("delivered", "retrying", "failed"):
            self.deliveries.labels(result)
        self.pushes = Counter(
            "monitor_websub_pushes",
            "WebSub pushes received, by outcome: accepted, unsigned, bad_signature (dropped), "
            "unknown (no live subscription), unparsable, too_large, too_slow, no_length, busy "
            "(503: too many at once), bad_body (400/501), bad_encoding (415), error.",
            ["outcome"],
            registry=r,
        )
        for outcome in ("accepted", "unsigned", "bad_signature", "unknown"):
            self.pushes.labels(outcome)
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_open_fds, …
        if store is not None:
            r.register(StoreCollector(store))

    def observe_refresh(self, outcome: RefreshOutcome) -> None:
        self.polls.labels(outcome.status).inc()
        self.items.inc(outcome.new_items)
        self.alerts.inc(outcome.alerts)

    def observe_push(self, outcome: str, refresh: RefreshOutcome | None) -> None:
        """A WebSub push (monitor.pipeline.websub); its new items and alerts count as a poll's."""
        self.pushes.labels(outcome).inc()
        if refresh is not None:
            self.items.inc(refresh.new_items)
            self.alerts.inc(refresh.alerts)

    def observe_dispatch(self, summary: DispatchSummary) -> None:
        self.deliveries.labels("delivered").inc(summary.delivered)
        self.deliveries.labels("retrying").inc(summary.retrying)
        self.deliveries.labels("failed").inc(summary.failed)

    def observe_tick(self) -> None:
        self.last_tick.set(time.time())

    def observe_reload(self, *, ok: bool) -> None:
        (self.reloads if ok else self.reload_errors).inc()
        self.config_valid.set(1 if ok else 0)

    def instrument(self, client: httpx.AsyncClient, histogram: Histogram) -> None:
        """Time every request `client` sends, until its response headers, into `histogram`."""
        client.event_hooks["request"].append(_mark_start)
        client.event_hooks["response"].append(_observer(histogram))

    def exposition(self) -> bytes:
        """The Prometheus text format; reads the store, so call it off the event loop."""
        return generate_latest(self.registry)


async def _mark_start(request: httpx.Request) -> None:
    request.extensions[_STARTED] = time.monotonic()


def _observer(histogram: Histogram) -> Callable[[httpx.Response], object]:
    async def observe(response: httpx.Response) -> None:
        started = response.request.extensions.get(_STARTED)
        if isinstance(started, float):
            histogram.observe(time.monotonic() - started)

    return observe


class StoreCollector(Collector):
    """Gauges read from the store at scrape time; a store that does not answer yields none."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no fixed description: nothing is queried at registration

    def collect(self) -> Iterator[Metric]:
        try:
            counts = store_counts(self.store.engine)
        except Exception as exc:  # a scrape must not fail because the database is down
            log.warning("metrics: cannot read the store: %s", exc)
            return
        yield from _families(counts)


def _families(counts: StoreCounts) -> Iterator[Metric]:
    matches = CounterMetricFamily(
        "monitor_matches",
        "Alerts in the store by rule (every match that alerted).",
        labels=["rule"],
    )
    for rule, count in sorted(counts.alerts_by_rule.items()):
        matches.add_metric([rule], count)
    yield matches
    states = GaugeMetricFamily(
        "monitor_alert_deliveries",
        "Deliveries in the store by state (pending, delivered, failed).",
        labels=["state"],
    )
    for state in ("pending", "delivered", "failed"):
        states.add_metric([state], counts.deliveries_by_state.get(state, 0))
    yield states
    yield GaugeMetricFamily(
        "monitor_outbox_depth", "Deliveries waiting to be sent.", value=counts.outbox_depth
    )
    yield GaugeMetricFamily("monitor_feeds", "Active feeds.", value=counts.feeds)
    yield GaugeMetricFamily(
        "monitor_feeds_in_backoff",
        "Active feeds whose last poll failed (retried with backoff).",
        value=counts.feeds_in_backoff,
    )
