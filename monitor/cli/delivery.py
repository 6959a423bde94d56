"""Delivery's own commands: `monitor alerts`, `monitor replay`, `monitor webhooks`, `monitor sink`.

`register` adds their parsers to the CLI; each parser sets `handler`, a function taking the
parsed arguments and returning the exit code, which `monitor.cli.main.main` calls. They read and
write the store named by the config (`--config DIR`); none prints a webhook URL in full or a
secret.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitor.cli.reporting import load_or_report
from monitor.config.settings import LoadedConfig
from monitor.errors import StoreError
from monitor.store import AlertRow, Store
from monitor.store.outbox import STATES

ConfigOption = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def register(sub: Any, with_config: ConfigOption) -> None:
    """Add delivery's subcommands to `sub` (argparse's subparsers action)."""
    alerts = with_config(
        sub.add_parser(
            "alerts",
            help="list recent alerts with their delivery state and attempts",
            description="List the latest alerts, newest first, one line per (alert, webhook): "
            "when, alert id (the webhook-id receivers see), severity, rule, webhook, state "
            "(pending, delivered, failed; held for a digest or quiet hours, digested into a "
            "digest not yet delivered; orphaned: its webhook was removed from the config, "
            "replayable), attempts made, then the item's title and, for "
            "undelivered ones, the last error and next attempt (or when a held one is "
            "released). Reads the store only. "
            "Exit codes: 0, 1 storage unavailable, 2 invalid config.",
        )
    )
    alerts.add_argument("--rule", metavar="ID", help="only alerts of this rule")
    alerts.add_argument("--state", choices=STATES, help="only deliveries in this state")
    alerts.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N rows (default: 20)"
    )
    alerts.add_argument("--json", action="store_true", help="one JSON object per row")
    alerts.set_defaults(handler=alerts_command)

    replay = with_config(
        sub.add_parser(
            "replay",
            help="requeue alerts: by id, or every failed delivery",
            description="Make deliveries due now with a fresh retry budget: those of the alert "
            "ids given (whatever their state: receivers deduplicating on webhook-id ignore a "
            "repeat), or with --failed every delivery kept as failed. A running daemon or the "
            "next `monitor run --once` sends them. A webhook disabled by a 410 keeps its "
            "deliveries until `monitor webhooks --enable NAME`. "
            "Exit codes: 0 requeued, 1 nothing matched or storage unavailable, 2 invalid config.",
        )
    )
    replay.add_argument("alert_ids", nargs="*", metavar="ID", help="alert ids (alrt_…)")
    replay.add_argument("--failed", action="store_true", help="every failed delivery")
    replay.add_argument("--webhook", metavar="NAME", help="only deliveries to this webhook")
    replay.set_defaults(handler=replay_command)

    webhooks = with_config(
        sub.add_parser(
            "webhooks",
            help="show each webhook's state (enabled, disabled after a 410) and its deliveries",
            description="List every configured webhook: format, host (the rest of the URL is "
            "hidden: it may hold a token), rate limit, whether it is disabled (a 410 Gone "
            "disables a webhook until its URL changes in the config or it is enabled here), and "
            "its deliveries by state. Exit codes: 0, 1 storage unavailable or unknown webhook, "
            "2 invalid config.",
        )
    )
    webhooks.add_argument(
        "--enable", metavar="NAME", help="enable a webhook disabled by a 410 Gone again"
    )
    webhooks.add_argument("--json", action="store_true", help="one JSON object per webhook")
    webhooks.set_defaults(handler=webhooks_command)

    from monitor.cli import sink  # noqa: PLC0415 - http.server only for this command

    sink.register(sub, with_config)


def _open(args: argparse.Namespace) -> tuple[LoadedConfig, Store] | int:
    config = load_or_report(args.config, secrets=False)
    if config is None:
        return EXIT_INVALID
    try:
        return config, Store.open(config.storage_url)
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return EXIT_FAILED


def alerts_command(args: argparse.Namespace) -> int:
    opened = _open(args)
    if isinstance(opened, int):
        return opened
    _config, store = opened
    try:
        rows = store.outbox.recent_alerts(max(args.limit, 1), rule_id=args.rule, state=args.state)
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    for row in rows:
        print(json.dumps(alert_json(row), ensure_ascii=False) if args.json else alert_text(row))
    if not rows and not args.json:
        print("no alerts", file=sys.stderr)
    return EXIT_OK


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_json(row: AlertRow) -> dict[str, object]:
    return {
        "alert_id": row.alert_id,
        "created_at": _when(row.created_at),
        "rule_id": row.rule_id,
        "severity": row.severity,
        "title": row.title,
        "webhook": row.webhook,
        "state": row.state,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "next_attempt_at": _when(row.next_attempt_at),
        "delivered_at": _when(row.delivered_at),
    }


def alert_text(row: AlertRow) -> str:
    attempts = f"{row.attempts} attempt{'s' if row.attempts != 1 else ''}"
    head = (
        f"{row.created_at:%Y-%m-%d %H:%M:%S}  {row.alert_id}  {row.severity or '-':8} "
        f"{row.rule_id}  → {row.webhook or '(no webhook)'}  {row.state or '-'}  {attempts}"
    )
    lines = [head, f"    {row.title}"]
    if row.state != "delivered" and row.last_error:
        lines.append(f"    last error: {row.last_error}")
    if row.next_attempt_at is not None:
        label = "held until" if row.state == "held" else "next attempt"
        lines.append(f"    {label}: {_when(row.next_attempt_at)}")
    return "\n".join(lines)


def replay_command(args: argparse.Namespace) -> int:
    if not args.alert_ids and not args.failed:
        print("replay: give alert ids, or --failed", file=sys.stderr)
        return EXIT_INVALID
    opened = _open(args)
    if isinstance(opened, int):
        return opened
    config, store = opened
    try:
        unknown = sorted(set(args.alert_ids) - store.outbox.known_alerts(args.alert_ids))
        count = store.outbox.requeue(
            datetime.now(UTC),
            alert_ids=args.alert_ids,
            failed=args.failed,
            webhook=args.webhook,
        )
        disabled = store.outbox.disabled_webhooks()
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    for alert_id in unknown:
        print(f"replay: no alert {alert_id}", file=sys.stderr)
    print(f"requeued {count} deliver{'y' if count == 1 else 'ies'}")
    configured = {hook.name for hook in config.settings.webhooks}
    for name in sorted(disabled):
        if name in configured and (args.webhook is None or args.webhook == name):
            print(
                f"note: webhook {name} is disabled (410 Gone); its deliveries wait until "
                f"`monitor webhooks --enable {name}`",
                file=sys.stderr,
            )
    return EXIT_OK if count else EXIT_FAILED


def webhooks_command(args: argparse.Namespace) -> int:
    opened = _open(args)
    if isinstance(opened, int):
        return opened
    config, store = opened
    try:
        if args.enable:
            return _enable(store, config, args.enable)
        states = store.outbox.webhook_states()
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    from monitor.delivery.targets import target_for  # noqa: PLC0415 - jinja2 only when needed

    for hook in config.settings.webhooks:
        state = states.get(hook.name)
        counts = dict(state.counts) if state else {}
        target = target_for(hook)
        rate = hook.rate_limit or target.rate_limit
        document = {
            "name": hook.name,
            "format": hook.format,
            "url": hook.safe_url(),
            "enabled": state is None or state.disabled_at is None,
            "disabled_at": _when(state.disabled_at) if state else None,
            "disabled_reason": state.disabled_reason if state else None,
            "rate_limit": rate,
            "deliveries": {s: counts.get(s, 0) for s in STATES},
        }
        if args.json:
            print(json.dumps(document, ensure_ascii=False))
            continue
        status = (
            "enabled"
            if document["enabled"]
            else f"DISABLED since {document['disabled_at']} ({document['disabled_reason']})"
        )
        tally = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATES)
        limit = f"{rate:g}/s" if rate else "no rate limit"
        print(f"{hook.name}  {hook.format}  {hook.safe_url()}  {limit}  {status}  — {tally}")
    return EXIT_OK


def _enable(store: Store, config: LoadedConfig, name: str) -> int:
    if name not in {hook.name for hook in config.settings.webhooks}:
        print(f"webhooks: no webhook named {name!r} in the config", file=sys.stderr)
        return EXIT_FAILED
    if store.outbox.enable_webhook(name, datetime.now(UTC)):
        print(
            f"webhook {name} enabled; its queued alerts are delivered by the next run "
            "(a running daemon's next delivery pass)"
        )
    else:
        print(f"webhook {name} was not disabled")
    return EXIT_OK
