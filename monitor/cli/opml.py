"""`monitor feeds import FILE.opml` and `monitor feeds export`: the feed list in OPML.

Both are subcommands of `monitor feeds`, whose own listing (`monitor feeds` alone) is
monitor.cli.feeds. Import reads the OPML (monitor.config.opml), adds the new feeds to the end of
the config's `feeds:` list as text (monitor.config.feedlist: comments and order kept), and says
what it added, what it skipped as duplicates and what it refused; `--dry-run` says it and
writes nothing. Export writes the configured feeds as OPML 2.0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from monitor.cli.reporting import load_or_report
from monitor.config.feedlist import FeedListError, append_feeds
from monitor.config.opml import Imported, OpmlError, plan_import, read_opml, write_opml
from monitor.config.settings import CONFIG_FILE
from monitor.http.urls import shown_url

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def register(feeds: argparse.ArgumentParser) -> None:
    """`import` and `export` under the `monitor feeds` parser; `monitor feeds` alone still lists.
    Their `--config` keeps what `monitor feeds --config DIR import …` set (SUPPRESS)."""
    sub = feeds.add_subparsers(dest="feeds_command", metavar="{import,export}")
    sub.required = False
    importing = sub.add_parser(
        "import",
        help="add the feeds of an OPML file (any feed reader's export) to monitor.yaml",
        description="Add the feeds of an OPML file to the end of the `feeds:` list of "
        "monitor.yaml (or --into FILE), keeping the file's comments, order and formatting. "
        "Outline folders and `category` become feeds[].tags, text/title the name. A feed "
        "already configured (the same URL, whatever its scheme, host case or trailing slash) "
        "is skipped and named; an outline that is no usable feed is refused with its reason. "
        "Exit codes: 0 done (also with skips), 1 the file cannot be read or edited, 2 invalid "
        "config.",
    )
    importing.add_argument("opml", type=Path, metavar="FILE.opml", help="the OPML file to read")
    importing.add_argument(
        "--dry-run", action="store_true", help="say what would be added; write nothing"
    )
    importing.add_argument(
        "--into",
        type=Path,
        metavar="FILE",
        help="the YAML file whose `feeds:` list gets the feeds (default: DIR/monitor.yaml)",
    )
    _config_option(importing)
    importing.set_defaults(handler=run_import)
    exporting = sub.add_parser(
        "export",
        help="write the configured feeds as OPML 2.0, for a feed reader",
        description="Write every enabled feed of monitor.yaml as OPML 2.0: name, xmlUrl, its "
        "tags as `category` and a folder per first tag, its lang as `language`. URLs are "
        "written as the config spells them (`${TOKEN}` stays a reference); a URL with "
        "credentials in it is written masked. Headers, auth and proxies are never exported. "
        "Exit codes: 0, 1 the output cannot be written, 2 invalid config.",
    )
    exporting.add_argument(
        "--output", type=Path, metavar="FILE", help="write here instead of standard output"
    )
    _config_option(exporting)
    exporting.set_defaults(handler=run_export)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="folder holding monitor.yaml (default: ./config)",
    )


def run_import(args: argparse.Namespace) -> int:
    config = load_or_report(args.config, secrets=False)
    if config is None:
        return EXIT_INVALID
    target: Path = args.into or args.config / CONFIG_FILE
    try:
        found = read_opml(args.opml.read_bytes())
        text = target.read_text(encoding="utf-8")
    except (OSError, OpmlError) as exc:
        print(f"{getattr(exc, 'filename', None) or args.opml}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    existing = [feed.url for feed in config.settings.feeds] + _written_urls(text)
    plan = plan_import(found, existing)
    try:
        edited = append_feeds(text, [outline.entry() for outline in plan.added])
    except FeedListError as exc:
        print(f"{target}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if plan.added and not args.dry_run:
        try:
            _replace(target, edited)
        except OSError as exc:
            print(f"{target}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(_report(plan, target, dry_run=args.dry_run))
    return EXIT_OK


def _written_urls(text: str) -> list[str]:
    """The feed URLs as the file spells them (`--into` another file, `${ENV}` unexpanded)."""
    try:
        data: Any = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return []
    feeds = data.get("feeds") if isinstance(data, dict) else None
    return [str(f["url"]) for f in feeds or [] if isinstance(f, dict) and "url" in f]


def _replace(target: Path, text: str) -> None:
    """Write `text` to `target` at once: a daemon watching the file never reads half of it."""
    mode = target.stat().st_mode & 0o777
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temporary).chmod(mode)
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _report(plan: Imported, target: Path, *, dry_run: bool) -> str:
    verb = "would add" if dry_run else "added"
    lines = [
        f"{verb} {len(plan.added)} feeds to {target}, skipped {len(plan.duplicates)} "
        f"duplicates, {len(plan.invalid)} invalid"
        + (" (dry run: nothing written)" if dry_run else "")
    ]
    lines += [f"  + {shown_url(c.url)}" + (f"  ({c.name})" if c.name else "") for c in plan.added]
    lines += [f"  = {shown_url(s.url)}: {shown_url(s.reason)}" for s in plan.duplicates]
    lines += [f"  ! {shown_url(s.url) or '(no URL)'}: {s.reason}" for s in plan.invalid]
    return "\n".join(lines)


def run_export(args: argparse.Namespace) -> int:
    config = load_or_report(args.config, secrets=False)
    if config is None:
        return EXIT_INVALID
    path = config.directory / CONFIG_FILE
    written = _written_urls(path.read_text(encoding="utf-8"))
    enabled = [(index, feed) for index, feed in enumerate(config.settings.feeds) if feed.enabled]
    urls = {position: written[index] for position, (index, _) in enumerate(enabled)
            if index < len(written)}  # fmt: skip
    exported = write_opml(
        [feed for _, feed in enabled], urls, title="monitor feeds", now=datetime.now(UTC)
    )
    try:
        if args.output is None:
            sys.stdout.write(exported.document.decode("utf-8"))
        else:
            args.output.write_bytes(exported.document)
    except OSError as exc:
        print(f"{args.output}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    skipped = len(config.settings.feeds) - len(enabled)
    notes = [f"exported {exported.feeds} feeds"]
    if skipped:
        notes.append(f"{skipped} disabled left out")
    if exported.masked:
        notes.append(f"{exported.masked} URLs with credentials written masked (use feeds[].auth)")
    print(", ".join(notes), file=sys.stderr)
    return EXIT_OK
