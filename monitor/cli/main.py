"""Command-line interface: argument parsing only; each command family has its module in cli/."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.cli import backtest as backtesting
from monitor.cli import completion, rules, status
from monitor.cli import delivery as delivery_commands
from monitor.cli import feeds as feeds_commands
from monitor.cli import mutes as mute_commands
from monitor.cli import opml as opml_commands
from monitor.cli import run as running
from monitor.cli.reporting import count_argument, duration_argument
from monitor.durations import parse_duration
from monitor.processes import (
    exit_without_teardown,
    fewer_malloc_arenas,
    name_main_after_the_package,
)
from monitor.runtime.logs import FORMATS, default_format

EXIT_OK, EXIT_INVALID = 0, 2
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command killed by SIGPIPE (128 + 13)
ConfigOption = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]

DESCRIPTION = """\
Watch news feeds, match new items against YAML watch rules, and deliver each match once as a
signed webhook alert. Config lives in DIR/monitor.yaml (default DIR: ./config)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monitor", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="how much to log on stderr (default: info)",
    )
    parser.add_argument(
        "--log-format",
        default=default_format(),
        choices=FORMATS,
        help="text: readable lines; json: one JSON object per line with stable keys (feed_url, "
        "rule_id, alert_id, webhook). Default: $MONITOR_LOG_FORMAT, else text",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config",
            type=Path,
            default=Path("config"),
            metavar="DIR",
            help="folder holding monitor.yaml (default: ./config)",
        )
        return p

    run = with_config(
        sub.add_parser(
            "run",
            help="run the daemon (or one cycle with --once)",
            description="Poll feeds on schedule, match new items, deliver alerts. Edits of "
            "monitor.yaml and the rule files take effect without a restart (an edit that does not "
            "validate is logged and the last good config stays in force). With `http:` (or "
            "$MONITOR_HTTP) set, "
            "serves GET /healthz and GET /metrics, and the console and API behind a token "
            "(http.token, else $MONITOR_TOKEN, else one made at start and shown on a terminal). "
            "On SIGTERM/SIGINT: stops taking work, gives "
            "work in flight --grace to finish (a second signal cuts it short), re-queues the "
            "rest. Several daemons on one PostgreSQL share the work (see `monitor status`); each "
            "sends a heartbeat every $MONITOR_HEARTBEAT (default 10s) and one silent for 3 "
            "heartbeats has its work taken over. Exit codes: 0 clean stop or cycle done, 1 "
            "cannot start (storage, HTTP address, $MONITOR_HEARTBEAT), 2 invalid config.",
        )
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="poll every feed once, deliver what is due, print a one-line summary and exit",
    )
    run.add_argument(
        "--max-wait",
        type=duration_argument,
        default=parse_duration("30s"),
        metavar="DURATION",
        help="with --once: keep retrying failed deliveries while a retry falls due within this "
        "time, and send a digest whose window (`digest:`, quiet hours) closes within it "
        "(default: 30s); what is left stays queued (or held) for the next run",
    )
    run.add_argument(
        "--quiet",
        action="store_true",
        help="with --once: no status line (feeds done, new items, alerts) while it runs; the "
        "line is drawn only when stderr is a terminal anyway",
    )
    run.add_argument(
        "--processes",
        type=count_argument,
        metavar="N",
        help="with --once: poll in N processes, each with its share of the feeds and of "
        "fetch.per_host (default on Linux: one per core once there are 100 feeds; never "
        "more than fetch.per_host, and 1 when fetch.host_spacing is set); the first one "
        "delivers",
    )
    run.add_argument(
        "--grace",
        type=duration_argument,
        default=parse_duration("10s"),
        metavar="DURATION",
        help="on SIGTERM/SIGINT, how long polls and deliveries in flight may take to finish "
        "before they are cancelled and re-queued (default: 10s)",
    )

    check = with_config(
        sub.add_parser(
            "check",
            help="validate config and rules, and run the rules' examples",
            description="Validate monitor.yaml and every rule file, then run each rule's "
            "`examples:`; print every problem at once as PATH:LINE:COL: message (paths relative "
            "to the config folder), a failing example with why it matched or why not. Exit "
            "codes: 0 valid, 2 invalid or an example fails.",
        )
    )
    _drafts_option(check)

    match = with_config(
        sub.add_parser(
            "match",
            help="dry-run the rules over items given as JSON Lines",
            description="Read items as JSON Lines (FILE or stdin; keys: title, summary|description|"
            "content, id, link, published, lang) and write one JSON line per (item, rule) match. "
            "With --explain, say for every rule (or the one given with --rule) why it matched or "
            "why not: the clause that failed, the absent terms and the closest words of the item "
            "with why each was refused. Touches no state. Exit codes: 0, 1 a --feed URL cannot "
            "be fetched, 2 invalid config or input, or unknown rule.",
        )
    )
    match.add_argument("file", nargs="?", type=Path, metavar="FILE", help="default: stdin")
    match.add_argument(
        "--feed",
        metavar="FILE_OR_URL",
        help="match the items of a feed document (RSS, Atom, JSON Feed) instead of JSON Lines: a "
        "saved file, or a URL fetched as the daemon fetches (the config's fetch limits); exit 1 "
        "when the URL cannot be fetched",
    )
    match.add_argument(
        "--explain",
        action="store_true",
        help="explain each (item, rule), matched or not, in readable text instead of JSON",
    )
    match.add_argument(
        "--fulltext",
        action="store_true",
        help="with --feed: also read the article pages the daemon would read for full text "
        "(the items a rule with `fulltext`, or the feed's `fulltext`, would fetch), fetched as "
        "it fetches them, and match their main text as `content` (hits marked as the page's)",
    )
    match.add_argument("--rule", metavar="ID", help="only this rule (default: every rule)")
    match.add_argument(
        "--json",
        action="store_true",
        help="with --explain: one JSON line per (item, rule) with `matched` and the reasons",
    )
    _drafts_option(match)

    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema of the config and rule files, or of the events sent",
        description="Print the JSON Schema for editors: `config` (monitor.yaml), `rules` (a rule "
        "file), or by default one schema that accepts either; `events`: every body monitor "
        "sends to webhooks, for receivers.",
    )
    schema.add_argument(
        "kind", nargs="?", choices=["config", "rules", "events"], help="default: config and rules"
    )

    terms = with_config(
        sub.add_parser(
            "terms",
            help="list the term sets: where each is defined, shared or not, which rules use it",
            description="Every term set of the rule files: where it is defined (PATH:LINE:COL), "
            "whether it is shared (its file says `shared: true`) or its file's own, how many "
            "terms it has, and the rules that use it, directly or through another set. Exit "
            "codes: 0, 2 invalid config.",
        )
    )
    terms.add_argument("--json", action="store_true", help="one JSON object per set")
    _drafts_option(terms)
    terms.set_defaults(handler=lambda a: rules.terms(a.config, a.rules, as_json=a.json))

    _register_ops(sub, with_config)
    delivery_commands.register(sub, with_config)
    mute_commands.register(sub, with_config)
    feeds_commands.register(sub, with_config)
    opml_commands.register(sub.choices["feeds"])  # `monitor feeds import|export`
    status.register(sub, with_config)
    completion.register(sub)
    completion.attach(parser)  # last: it walks every command's options
    return parser


def _register_ops(sub: Any, with_config: ConfigOption) -> None:
    """`monitor backtest` and `monitor health`."""
    health = with_config(
        sub.add_parser(
            "health",
            help="ask the running daemon whether it is healthy (for container health checks)",
            description="GET /healthz of the daemon configured in DIR (its `http:` key, or "
            "$MONITOR_HTTP) and print the answer. Only `http:` is read from monitor.yaml, so an "
            "edit the daemon rejected does not fail the check. Exit codes: 0 healthy, 1 "
            "unhealthy or unreachable, 2 no HTTP address configured.",
        )
    )
    health.set_defaults(handler=lambda a: running.health(a.config, a.url, a.timeout))
    health.add_argument(
        "--url", metavar="URL", help="ask this URL instead, e.g. http://127.0.0.1:9108/healthz"
    )
    health.add_argument(
        "--timeout",
        type=duration_argument,
        default=parse_duration("5s"),
        metavar="DURATION",
        help="how long to wait for an answer (default: 5s)",
    )

    backtest = with_config(
        sub.add_parser(
            "backtest",
            help="run the current rules over stored items; show what would change",
            description="Match the rules on disk against items already in the store (no "
            "network, no state changed) and list what would alert now that did not, and what "
            "alerted that would not now. Item text is kept for retention.item_text (default "
            "30d). Progress goes to stderr. Exit codes: 0, 1 storage unavailable, 2 invalid "
            "config or unknown rule.",
        )
    )
    backtest.set_defaults(
        handler=lambda a: backtesting.backtest_command(
            a.config, a.since, a.rule, as_json=a.json, show=a.show, drafts=a.rules
        )
    )
    backtest.add_argument(
        "--since",
        type=duration_argument,
        default=parse_duration("7d"),
        metavar="DURATION",
        help="items first seen within this time (default: 7d)",
    )
    backtest.add_argument("--rule", metavar="ID", help="only this rule (default: every rule)")
    _drafts_option(backtest)
    backtest.add_argument(
        "--show",
        type=int,
        default=10,
        metavar="N",
        help="items listed per rule and change (default: 10)",
    )
    backtest.add_argument(
        "--json", action="store_true", help="one JSON object per difference instead of a report"
    )


def _drafts_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules",
        type=Path,
        metavar="DRAFT",
        help="use draft rules: the rule files of DRAFT (a file, or a folder such as "
        "config/rules/drafts/, which the daemon does not read) take the place of the live "
        "files of the same name",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    completion.complete(parser)  # a shell asking for completions: answered, and exits
    args = parser.parse_args(argv)
    running.setup_logging(args.log_level, args.log_format)
    if args.command == "run":
        return running.run(
            args.config,
            once=args.once,
            max_wait=args.max_wait,
            grace=args.grace,
            quiet=args.quiet,
            processes=args.processes,
        )
    if args.command == "check":
        return rules.check(args.config, args.rules)
    if args.command == "match":
        if args.feed is not None and args.file is not None:
            build_parser().error("match: give FILE (JSON Lines) or --feed, not both")
        if args.fulltext and args.feed is None:
            build_parser().error("match: --fulltext needs --feed (the items' links to read)")
        return rules.match(
            args.config,
            args.file,
            explain=args.explain,
            rule=args.rule,
            as_json=args.json,
            feed=args.feed,
            drafts=args.rules,
            fulltext=args.fulltext,
        )
    if args.command == "schema":
        return rules.schema(args.kind, sys.stdout)
    handler: Callable[[argparse.Namespace], int] = args.handler  # registered by a stage module
    return handler(args)


def entry() -> None:
    """The `monitor` command (and `python -m monitor`): `main` in a process of its own.

    What exists once the modules are loaded (~70,000 objects: modules, classes, functions) lives
    as long as the process, so it is frozen out of the garbage collector's sight (`gc.freeze`):
    full collections skip it, and so does the collection at exit, which took ~0.1 s of every
    `run --once` (measured with bench/peer.py). Frozen again before exit, what the command
    made is left to the process's end the same way, and so is freeing it all: the
    interpreter's teardown is skipped (monitor.processes.exit_without_teardown). The collector
    is resumed here if the launcher (monitor.cli.launch) paused it for the imports.
    """
    name_main_after_the_package()  # worker processes do not run the script again
    fewer_malloc_arenas()  # before any thread starts
    gc.freeze()
    gc.enable()
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `monitor alerts | head`: the reader has all it wanted
        # what is still buffered cannot be written either; the flush at exit must not try
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    gc.freeze()
    exit_without_teardown(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
