"""`monitor mute` and `monitor unmute`: silence a rule, a feed or a story for a while.

Alerts raised meanwhile are recorded with their deliveries `muted` (monitor.store.mutes): never
sent, shown by `monitor alerts --state muted`, sent by `monitor replay ID` if wanted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitor.cli.reporting import duration_argument, open_read_only
from monitor.cli.table import table
from monitor.config.settings import LoadedConfig
from monitor.durations import approximate_duration, parse_duration
from monitor.errors import StoreError
from monitor.http.urls import shown_url
from monitor.store import Store, mutes

ConfigOption = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
DEFAULT_FOR = "1d"


def register(sub: Any, with_config: ConfigOption) -> None:
    """Add `mute` and `unmute` to `sub` (argparse's subparsers action)."""
    mute = with_config(
        sub.add_parser(
            "mute",
            help="silence a rule, a feed or a story for a while; without arguments, list mutes",
            description="Mute `rule ID`, `feed URL_OR_NAME` or `story ALERT_ID` (the story of "
            "that alert: later alerts telling the same story, from any outlet) for --for. "
            "Alerts raised meanwhile are recorded with their deliveries `muted`: never sent, "
            "listed by `monitor alerts --state muted`, sent by `monitor replay ID` if wanted. "
            "Without arguments, list the mutes in force with their ids (for `monitor unmute`). "
            "A running daemon sees a mute at its next alert. Exit codes: 0, 1 storage "
            "unavailable, 2 invalid config or unknown rule, feed or alert.",
        )
    )
    mute.add_argument("kind", nargs="?", choices=mutes.KINDS, help="what to mute")
    mute.add_argument(
        "target", nargs="?", metavar="WHICH", help="rule id, feed URL or name, or alert id"
    )
    mute.add_argument(
        "--for",
        dest="duration",
        type=duration_argument,
        default=parse_duration(DEFAULT_FOR),
        metavar="DURATION",
        help=f"how long (default: {DEFAULT_FOR})",
    )
    mute.add_argument("--reason", help="a note shown in the list")
    mute.set_defaults(handler=mute_command)

    unmute = with_config(
        sub.add_parser(
            "unmute",
            help="end mutes now, by id (see `monitor mute`)",
            description="End the mutes given by id now (`monitor mute` lists them). What was "
            "muted meanwhile stays muted; `monitor replay ID` sends it. Exit codes: 0, 1 "
            "storage unavailable or no such mute in force, 2 invalid config.",
        )
    )
    unmute.add_argument("ids", nargs="+", type=int, metavar="ID", help="mute ids")
    unmute.set_defaults(handler=unmute_command)


def mute_command(args: argparse.Namespace) -> int:
    if args.kind is not None and args.target is None:
        print(f"mute: name the {args.kind} to mute", file=sys.stderr)
        return EXIT_INVALID
    opened = open_read_only(args.config)
    if isinstance(opened, int):
        return opened
    config, store = opened
    now = datetime.now(UTC)
    try:
        if args.kind is None:
            _list(mutes.active(store.engine, now), now)
            return EXIT_OK
        return _add(store, config, args, now)
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()


def _add(store: Store, config: LoadedConfig, args: argparse.Namespace, now: datetime) -> int:
    kind: mutes.MuteKind = args.kind
    target: str = args.target
    story = None
    if kind == "rule":
        known = [rule.id for rule in config.matcher.rules]
        if target not in known:
            print(f"mute: no rule {target}; rules: {', '.join(known)}", file=sys.stderr)
            return EXIT_INVALID
    elif kind == "feed":
        feed = next((f for f in config.settings.feeds if target in (f.url, f.name)), None)
        if feed is None:
            print(
                f"mute: no feed {shown_url(target)} (give its URL or name; `monitor feeds` "
                "lists them)",
                file=sys.stderr,
            )
            return EXIT_INVALID
        target = feed.url
    else:
        story = mutes.story_of(store.engine, target)
        if story is None:
            print(f"mute: no alert {target} (`monitor alerts` lists them)", file=sys.stderr)
            return EXIT_INVALID
    mute = mutes.add(
        store.engine,
        kind,
        target,
        now=now,
        until=now + args.duration,
        reason=args.reason,
        story=story,
    )
    print(
        f"mute {mute.id}: {_shown(mute)} muted for {approximate_duration(args.duration)}, "
        f"until {_when(mute.until)}; `monitor unmute {mute.id}` ends it"
    )
    return EXIT_OK


def unmute_command(args: argparse.Namespace) -> int:
    opened = open_read_only(args.config)
    if isinstance(opened, int):
        return opened
    _config, store = opened
    try:
        lifted = mutes.lift(store.engine, args.ids, datetime.now(UTC))
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    for mute_id in sorted(set(args.ids) - set(lifted)):
        print(f"unmute: no mute {mute_id} in force (`monitor mute` lists them)", file=sys.stderr)
    if lifted:
        print(f"unmuted {', '.join(str(i) for i in lifted)}")
    return EXIT_OK if lifted else EXIT_FAILED


def _list(in_force: list[mutes.Mute], now: datetime) -> None:
    if not in_force:
        print("no mutes in force")
        return
    rows = [
        (str(m.id), _shown(m), _when(m.until), approximate_duration(m.until - now), m.reason or "")
        for m in in_force
    ]
    for line in table(("ID", "MUTED", "UNTIL", "LEFT", "REASON"), rows, right={0}):
        print(line)


def _shown(mute: mutes.Mute) -> str:
    if mute.kind == "feed":
        return f"feed {shown_url(mute.target)}"
    if mute.kind == "story" and mute.story is not None:
        return f"story of {mute.target} ({mute.story.title[:60]})"
    return mute.describe()


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
