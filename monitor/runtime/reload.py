"""Hot reload: watch monitor.yaml and the rule files, put each valid edit in force.

An edit is loaded exactly as `monitor check` would load it. If it validates, the difference is
applied to the running pipeline (`Pipeline.apply`): feeds added, removed or changed (synced to the
store), rules swapped at once, webhooks updated. If it does not, every problem is logged as
`PATH:LINE:COL: message`, `monitor_config_reload_errors_total` goes up, and the last good config
stays in force. Nothing here may stop the daemon: a failure of the watcher itself is logged and
the watch starts again.

`storage` and `http` are read once at start; an edit of either is reported as needing a restart.
SIGHUP reloads too, for file systems that send no events.
Set WATCHFILES_FORCE_POLLING=1 where file events do not arrive (some network or bind mounts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, awatch

from monitor.config.settings import CONFIG_FILE, LoadedConfig, load_config
from monitor.errors import ConfigError
from monitor.runtime.metrics import Metrics
from monitor.wording import plural

log = logging.getLogger(__name__)
DEBOUNCE_MS = 400  # an editor's save (or a git checkout) arrives as one batch of changes
RESTART_WATCH_AFTER = 1.0  # seconds, after the watcher itself failed
RULE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ConfigDiff:
    feeds_added: tuple[str, ...]
    feeds_removed: tuple[str, ...]
    feeds_changed: tuple[str, ...]
    rules_added: tuple[str, ...]
    rules_removed: tuple[str, ...]
    webhooks_added: tuple[str, ...]
    webhooks_removed: tuple[str, ...]
    webhooks_changed: tuple[str, ...]
    rules: int
    restart_needed: tuple[str, ...]  # keys read only at start

    def summary(self) -> str:
        def part(name: str, added: int, removed: int, changed: int | None = None) -> str:
            text = f"{name} +{added} -{removed}"
            return text if changed is None else f"{text} ~{changed}"

        return ", ".join(
            [
                part(
                    "feeds", len(self.feeds_added), len(self.feeds_removed), len(self.feeds_changed)
                ),
                part("rules", len(self.rules_added), len(self.rules_removed))
                + f" ({self.rules} in force)",
                part(
                    "webhooks",
                    len(self.webhooks_added),
                    len(self.webhooks_removed),
                    len(self.webhooks_changed),
                ),
            ]
        )


def diff(old: LoadedConfig, new: LoadedConfig) -> ConfigDiff:
    old_feeds = {f.url: f for f in old.settings.feeds}
    new_feeds = {f.url: f for f in new.settings.feeds}
    old_hooks = {h.name: h for h in old.settings.webhooks}
    new_hooks = {h.name: h for h in new.settings.webhooks}
    old_rules = {r.id for r in old.matcher.rules}
    new_rules = {r.id for r in new.matcher.rules}
    restart = tuple(
        key
        for key, before, after in (
            ("storage", old.storage_url, new.storage_url),
            ("http", old.settings.http, new.settings.http),
        )
        if before != after
    )
    return ConfigDiff(
        feeds_added=tuple(u for u in new_feeds if u not in old_feeds),
        feeds_removed=tuple(u for u in old_feeds if u not in new_feeds),
        feeds_changed=tuple(
            u for u, f in new_feeds.items() if u in old_feeds and old_feeds[u] != f
        ),
        rules_added=tuple(sorted(new_rules - old_rules)),
        rules_removed=tuple(sorted(old_rules - new_rules)),
        webhooks_added=tuple(n for n in new_hooks if n not in old_hooks),
        webhooks_removed=tuple(n for n in old_hooks if n not in new_hooks),
        webhooks_changed=tuple(
            n for n, h in new_hooks.items() if n in old_hooks and old_hooks[n] != h
        ),
        rules=len(new.matcher.rules),
        restart_needed=restart,
    )


def watched(config: LoadedConfig) -> tuple[Path, ...]:
    """The folders to watch: the config's, and each folder holding rule files."""
    folders = {config.directory.resolve(), *(p.resolve().parent for p in config.rule_files)}
    target = (config.directory / config.settings.rules).resolve()
    if target.is_dir():
        folders.add(target)
    return tuple(sorted(folders))


class ConfigWatcher:
    """Watches the files of the config in force; `await apply(config)` puts a new one in force."""

    def __init__(
        self,
        config: LoadedConfig,
        apply: Callable[[LoadedConfig], Awaitable[None]],
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self._apply = apply
        self._metrics = metrics
        self._directory = config.directory
        self.ready = asyncio.Event()  # set once the watch is in place (tests wait on it)
        self._lock = asyncio.Lock()  # one reload at a time (file events and SIGHUP)
        self._requested: set[asyncio.Task[bool]] = set()

    def request_reload(self) -> None:
        """Reload soon (SIGHUP), in order with reloads from file events."""
        log.info("reload requested (SIGHUP)")
        task = asyncio.get_running_loop().create_task(self.reload())
        self._requested.add(task)
        task.add_done_callback(self._requested.discard)

    def relevant(self, _change: Change, path: str) -> bool:
        file = Path(path).resolve()
        if file == (self._directory / CONFIG_FILE).resolve():
            return True
        target = (self._directory / self.config.settings.rules).resolve()
        if file == target or file in {p.resolve() for p in self.config.rule_files}:
            return True
        return file.suffix in RULE_SUFFIXES and file.parent == target

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set, reloading on every relevant change."""
        while not stop.is_set():
            folders = watched(self.config)
            try:
                await self._watch(folders, stop)
            except Exception:  # the daemon never dies of its watcher
                log.exception("config watch failed; watching again in %.0fs", RESTART_WATCH_AFTER)
                await _sleep_unless(stop, RESTART_WATCH_AFTER)

    async def _watch(self, folders: tuple[Path, ...], stop: asyncio.Event) -> None:
        existing = [str(f) for f in folders if f.is_dir()]
        log.debug("watching %s for config edits", ", ".join(existing))
        changes = awatch(
            *existing,
            watch_filter=self.relevant,
            stop_event=stop,
            debounce=DEBOUNCE_MS,
            recursive=False,
            yield_on_timeout=True,
            rust_timeout=500,
        )
        async for batch in changes:
            self.ready.set()  # the first (timeout) batch says the watcher is running
            if not batch:
                continue
            await self.reload(sorted({Path(path) for _change, path in batch}))
            if watched(self.config) != folders:
                return  # the rules moved: watch the new folders

    async def reload(self, changed: Iterable[Path] = ()) -> bool:
        """Load the config from disk; put it in force if it validates. Never raises."""
        async with self._lock:
            return await self._reload(changed)

    async def _reload(self, changed: Iterable[Path]) -> bool:
        names = ", ".join(str(p) for p in changed) or "config"
        try:
            new: LoadedConfig | ConfigError | Exception = await asyncio.to_thread(
                load_config, self._directory
            )
        except (ConfigError, Exception) as exc:  # an edit must never reach the daemon's loop
            new = exc
        if isinstance(new, Exception):
            _log_rejected(new, names)
            self._count(ok=False)
            return False
        change = diff(self.config, new)
        try:
            await self._apply(new)
        except Exception:
            log.exception("config edit valid but not applied; retrying on the next edit")
            self._count(ok=False)
            return False
        self.config = new
        log.info("config reloaded from %s: %s", names, change.summary())
        for key in change.restart_needed:
            log.warning("config: `%s` changed; it takes effect on the next restart", key)
        self._count(ok=True)
        return True

    def _count(self, *, ok: bool) -> None:
        if self._metrics is not None:
            self._metrics.observe_reload(ok=ok)


def _log_rejected(error: Exception, names: str) -> None:
    if isinstance(error, ConfigError):
        for problem in error.problems:
            log.error("config edit rejected: %s", problem)
        reason = f"{plural(len(error.problems), 'problem')} in {names}"
    else:
        reason = f"{type(error).__name__}: {error}"
    log.error("config edit rejected (%s); the last good config stays in force", reason)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return
