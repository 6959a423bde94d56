"""Wiring and lifecycle of the long-running daemon (`run --once` is monitor.runtime.once).

Both use the same parts: `Pipeline.refresh` for a feed (monitor.pipeline.refresh) and
`Dispatcher.deliver_due` for the outbox (monitor.delivery.dispatcher); the daemon merely lets the
scheduler (monitor.runtime.scheduler) call them when the store says work is due.

The daemon's life: open the store -> put the config in force -> watch the config files
(monitor.runtime.reload; SIGHUP reloads too) -> serve `http:` if configured (monitor.web: health,
metrics, WebSub callbacks, the console behind its token) -> tick (monitor.runtime.scheduler)
until SIGTERM or SIGINT -> stop claiming work, give work in flight `grace` seconds (a second
signal cuts that short), cancel and re-queue the rest -> exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy.engine import make_url

from monitor.config.settings import MIN_TOKEN, HttpSettings, LoadedConfig
from monitor.delivery.dispatcher import make_delivery_client
from monitor.errors import MonitorError, StartError
from monitor.feeds.fetcher import make_client
from monitor.feeds.websub import make_hub_client
from monitor.pipeline.pipeline import Pipeline
from monitor.pipeline.websub.callback import Callback
from monitor.runtime.metrics import Metrics
from monitor.runtime.reload import ConfigWatcher
from monitor.runtime.scheduler import Scheduler
from monitor.store import Store, owners
from monitor.store.replicas import Heartbeat, heartbeat_interval
from monitor.web.app import build_app
from monitor.web.auth import TOKEN_ENV, Auth, Tokens
from monitor.web.context import WebContext
from monitor.web.health import Health
from monitor.web.routes import all_routes
from monitor.web.server import WebServer, configured_address
from monitor.wording import plural

log = logging.getLogger(__name__)
STOP_GRACE = 10.0  # seconds in-flight work gets to finish on SIGTERM before it is cancelled
WATCH_READY_TIMEOUT = 5.0  # seconds to wait for the config watch before starting without it


def describe_storage(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def console_tokens(http: HttpSettings | None, environ: Mapping[str, str] | None = None) -> Tokens:
    """The console's tokens: `http.token`, else MONITOR_TOKEN, else one made for this run."""
    env = os.environ if environ is None else environ
    token = http.token.get_secret_value() if http and http.token else None
    read = http.read_token.get_secret_value() if http and http.read_token else None
    from_env = env.get(TOKEN_ENV) or None
    if token is None and from_env is not None:
        # held to what `http.token` is held to at load: an environment is no excuse
        if len(from_env) < MIN_TOKEN or any(c.isspace() for c in from_env):
            raise StartError(f"{TOKEN_ENV}: a token is at least {MIN_TOKEN} characters, no spaces")
        if from_env == read:
            raise StartError(f"{TOKEN_ENV} equals http.read_token: the read token must differ")
    return Tokens.resolve(token, read, from_env)


def token_notice(tokens: Tokens, url: str, *, terminal: bool) -> tuple[str | None, str | None]:
    """What to say of a token made at start: (a line for the terminal, a line for the log).

    The link carries the token, and a token in a log is a secret in a log (journald, a log
    shipper, `docker logs` keep it): it is printed only when stderr is a terminal a person
    watches; otherwise the log says how to set one.
    """
    if tokens.source != "generated":
        return None, None
    if terminal:
        return (
            f"console: {url}/login?token={tokens.write}  "
            f"(a token for this run; set http.token or {TOKEN_ENV} to keep one)",
            None,
        )
    return None, (
        f"console: no token configured; one was made for this run and is not shown, since "
        f"stderr is not a terminal: set {TOKEN_ENV} (or http.token) to use {url}/"
    )


def _link_host(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening everywhere: ask locally
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def start_summary(config: LoadedConfig, http: str | None) -> str:
    """The first line the daemon logs: what it is about to do, secrets hidden."""
    settings = config.settings
    hooks = ", ".join(hook.name for hook in settings.webhooks) or "none: alerts are only recorded"
    files = len(config.rule_files)
    return (
        f"monitor running: {plural(len(settings.feeds), 'feed')}, "
        f"{plural(len(config.matcher.rules), 'rule')} (in {plural(files, 'file')}), "
        f"{plural(len(settings.webhooks), 'webhook')} ({hooks}), "
        f"storage {describe_storage(config.storage_url)}, "
        f"http {http or 'off'}, config {config.directory} (watched for edits)"
    )


async def run_daemon(
    config: LoadedConfig, stop: asyncio.Event | None = None, *, grace: float = STOP_GRACE
) -> None:
    """Run until SIGTERM or SIGINT (or `stop` is set); in-flight work gets `grace` to finish."""
    stop = stop or asyncio.Event()
    hurry = asyncio.Event()  # a second signal: cancel work in flight now
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            log.warning("second signal: cancelling work in flight now")
            hurry.set()
        stop.set()

    try:
        http = config.settings.http
        address = configured_address(http.listen if http else None)
        heartbeat = heartbeat_interval()
    except ValueError as exc:
        raise StartError(str(exc)) from None
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    try:
        store = await asyncio.to_thread(Store.open, config.storage_url)
        try:
            replica = Heartbeat(store.engine, str(owners.current()), heartbeat)
            await asyncio.to_thread(replica.start, datetime.now(UTC))
            try:
                await _run_pipeline(config, store, replica, address, stop, hurry, grace)
            finally:  # a clean stop: what is left is freed and the replica is gone from status
                await _leave(replica)
        finally:
            await asyncio.to_thread(store.close)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("stopped")


async def _leave(replica: Heartbeat) -> None:
    try:
        await asyncio.to_thread(replica.stop, datetime.now(UTC))
    except MonitorError as exc:
        log.warning("cannot remove this replica from the store (%s); it shows as dead", exc)


async def _run_pipeline(  # noqa: PLR0917 - the daemon's parts, passed down once
    config: LoadedConfig,
    store: Store,
    replica: Heartbeat,
    address: tuple[str, int] | None,
    stop: asyncio.Event,
    hurry: asyncio.Event,
    grace: float,
) -> None:
    metrics = Metrics(store)
    async with (
        make_client() as feed_client,
        make_delivery_client() as delivery_client,
        make_hub_client() as hub_client,
    ):
        metrics.instrument(feed_client, metrics.fetch_seconds)
        metrics.instrument(delivery_client, metrics.delivery_seconds)
        pipeline = Pipeline(config, store, feed_client, delivery_client, metrics)
        callback = None
        if address is not None:  # hubs call back on the HTTP server (`websub:` turns it on)
            callback = pipeline.use_websub(hub_client, metrics.observe_push)
        await asyncio.to_thread(pipeline.sync_feeds)
        scheduler = Scheduler(pipeline, replica, metrics)
        await _serve(
            pipeline,
            callback=callback,
            scheduler=scheduler,
            metrics=metrics,
            address=address,
            stop=stop,
            hurry=hurry,
            grace=grace,
        )


def _announce(tokens: Tokens, url: str) -> None:
    terminal, logged = token_notice(tokens, url, terminal=sys.stderr.isatty())
    if terminal:
        print(terminal, file=sys.stderr, flush=True)
    if logged:
        log.info(logged)


async def _serve(
    pipeline: Pipeline,
    *,
    callback: Callback | None,
    scheduler: Scheduler,
    metrics: Metrics,
    address: tuple[str, int] | None,
    stop: asyncio.Event,
    hurry: asyncio.Event,
    grace: float,
) -> None:
    """Watch the config, serve HTTP, tick until `stop`; then wind down in that order reversed."""
    watcher = ConfigWatcher(pipeline.config, pipeline.apply, metrics)
    watching = asyncio.create_task(watcher.run(stop))
    tokens = console_tokens(pipeline.config.settings.http)
    app = build_app(
        Health(pipeline.store, lambda: scheduler.last_tick),
        metrics.exposition,
        auth=Auth(tokens),
        websub=callback,
        extra_routes=all_routes(WebContext(pipeline.store, lambda: pipeline.config)),
    )
    server = WebServer(app)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, watcher.request_reload)
    try:
        try:
            await asyncio.wait_for(watcher.ready.wait(), timeout=WATCH_READY_TIMEOUT)
        except TimeoutError:
            log.warning(
                "config watch not ready after %.0fs; edits may be missed", WATCH_READY_TIMEOUT
            )
        http = link = None
        if address is not None:
            try:
                host, port = await server.start(*address)
            except OSError as exc:
                raise StartError(
                    f"http: cannot listen on {address[0]}:{address[1]}: {exc.strerror}"
                ) from exc
            http = f"http://{host}:{port} (console at /, {tokens.described})"
            link = _link_host(host, port)
        log.info(start_summary(pipeline.config, http))
        if link is not None:
            _announce(tokens, link)
        scheduler.start()
        await stop.wait()
        log.info("stopping: no new work; waiting up to %.0fs for work in flight", grace)
        await scheduler.stop(grace, hurry)
        if pipeline.subscriber is not None:  # its background requests to hubs: finish, else cancel
            await pipeline.subscriber.stop(0.0 if hurry.is_set() else min(grace, 5.0))
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        stop.set()
        await server.stop()
        await watching
