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

from monitor.cli.names import unknown_name
from monitor.cli.reporting import open_read_only
from monitor.cli.table import Row, table
from monitor.config.settings import LoadedConfig
from monitor.durations import parse_duration
from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.outbox import (
    DELIVERED,
    DIGESTED,
    HELD,
    ORPHANED,
    STATES,
    AlertSummary,
    DeliveryRow,
)
from monitor.wording import clipped, plural

ConfigOption = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def register(sub: Any, with_config: ConfigOption) -> None:
    """Add delivery's subcommands to `sub` (argparse's subparsers action)."""
    alerts = with_config(
        sub.add_parser(
            "alerts",
            help="list recent alerts, one row each, with how their deliveries went",
            description="List the latest alerts, newest first, one row per alert: when (UTC), "
            "alert id (the webhook-id receivers see), severity, rule, its deliveries summarised "
            "(`delivered 3/4, failed 1 (ops-slack: HTTP 410 Gone)`) and the item's title. A "
            "delivery is pending, delivered, failed; held for a digest or quiet hours, digested "
            "into a digest not yet delivered; or orphaned: its webhook was removed from the "
            "config (replayable). --deliveries adds a line per delivery: attempts made, last "
            "error, next attempt (or when a held one is released). Filters choose alerts; an "
            "alert is shown with all its deliveries. Reads the store only. "
            "Exit codes: 0, 1 storage unavailable, 2 invalid config or unknown rule or webhook.",
        )
    )
    alerts.add_argument("--rule", metavar="ID", help="only alerts of this rule")
    alerts.add_argument(
        "--webhook", metavar="NAME", help="only alerts sent (or due) to this webhook"
    )
    alerts.add_argument(
        "--state", choices=STATES, help="only alerts with a delivery in this state (to --webhook)"
    )
    alerts.add_argument(
        "--since",
        type=since_moment,
        metavar="DURATION_OR_DATE",
        help="only alerts created since: a duration back from now (2h, 7d) or a date or time "
        "in ISO 8601 (2026-03-01, 2026-03-01T09:00, UTC unless it has an offset)",
    )
    alerts.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N alerts (default: 20)"
    )
    alerts.add_argument(
        "--deliveries",
        action="store_true",
        help="under each alert, one line per delivery: webhook, state, attempts, last error, "
        "next attempt",
    )
    alerts.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per alert, its deliveries in `deliveries`",
    )
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
            "Exit codes: 0 requeued, 1 nothing matched or storage unavailable, 2 invalid config "
            "or unknown webhook.",
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
            "its deliveries by state. Exit codes: 0, 1 storage unavailable, 2 invalid config or "
            "unknown webhook.",
        )
    )
    webhooks.add_argument(
        "--enable", metavar="NAME", help="enable a webhook disabled by a 410 Gone again"
    )
    webhooks.add_argument("--json", action="store_true", help="one JSON object per webhook")
    webhooks.set_defaults(handler=webhooks_command)

    from monitor.cli import sink  # noqa: PLC0415 - http.server only for this command

    sink.register(sub, with_config)


def since_moment(text: str) -> datetime:
    """`--since`: a duration back from now, or an ISO 8601 date or time (UTC unless offset)."""
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30m, 2h, 7d) nor a date (2026-03-01, "
            "2026-03-01T09:00)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def alerts_command(args: argparse.Namespace) -> int:
    opened = open_read_only(args.config)
    if isinstance(opened, int):
        return opened
    config, store = opened
    try:
        problem = _unknown_filter(config, store, rule=args.rule, webhook=args.webhook)
        found = (
            []
            if problem
            else store.outbox.alert_summaries(
                max(args.limit, 1),
                rule_id=args.rule,
                state=args.state,
                webhook=args.webhook,
                since=args.since,
            )
        )
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    if problem:
        print(f"monitor alerts: {problem}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        for alert in found:
            print(json.dumps(alert_json(alert), ensure_ascii=False))
    elif found:
        for line in alerts_table(found, deliveries=args.deliveries):
            print(line)
    else:
        print("no alerts", file=sys.stderr)
    return EXIT_OK


def _unknown_filter(
    config: LoadedConfig, store: Store, *, rule: str | None, webhook: str | None
) -> str | None:
    """Why a --rule or --webhook names nothing the config or the store knows; None if both do."""
    if rule is None and webhook is None:
        return None
    stored_rules, stored_webhooks = store.outbox.stored_names()
    if rule is not None:
        known = stored_rules | {r.id for r in config.matcher.rules}
        if rule not in known:
            return unknown_name("rule id", rule, known)
    if webhook is not None:
        known = stored_webhooks | {hook.name for hook in config.settings.webhooks}
        if webhook not in known:
            return unknown_name("webhook", webhook, known)
    return None


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_json(alert: AlertSummary) -> dict[str, object]:
    return {
        "alert_id": alert.alert_id,
        "created_at": _when(alert.created_at),
        "rule_id": alert.rule_id,
        "severity": alert.severity,
        "title": alert.title,
        "delivered": sum(d.state == DELIVERED for d in alert.deliveries),
        "deliveries": [
            {
                "webhook": d.webhook,
                "state": d.state,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "next_attempt_at": _when(d.next_attempt_at),
                "delivered_at": _when(d.delivered_at),
            }
            for d in alert.deliveries
        ],
    }


ALERTS_HEADER = ("CREATED (UTC)", "ALERT", "SEVERITY", "RULE", "DELIVERIES", "TITLE")
ERROR_WIDTH = 48  # of a last error in the summary; --deliveries and --json show it whole


def alerts_table(found: list[AlertSummary], *, deliveries: bool) -> list[str]:
    rows = [
        Row(
            (
                alert.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                alert.alert_id,
                alert.severity or "-",
                alert.rule_id,
                deliveries_summary(alert.deliveries),
                alert.title,
            ),
            delivery_lines(alert.deliveries) if deliveries else (),
        )
        for alert in found
    ]
    return table(ALERTS_HEADER, rows)


def deliveries_summary(sent: tuple[DeliveryRow, ...]) -> str:
    """`delivered 3/4, failed 1 (ops-slack: HTTP 410 Gone)`: the count delivered, then each
    other state with its count and why (the first such webhook's last error, or when)."""
    if not sent:
        return "no webhook"
    by_state: dict[str, list[DeliveryRow]] = {}
    for delivery in sent:
        by_state.setdefault(delivery.state, []).append(delivery)
    parts = [f"delivered {len(by_state.get(DELIVERED, []))}/{len(sent)}"]
    for state in STATES:
        if state != DELIVERED and state in by_state:
            rows = by_state[state]
            more = f"; +{len(rows) - 1} more" if len(rows) > 1 else ""
            parts.append(f"{state} {len(rows)} ({_why(rows[0])}{more})")
    return ", ".join(parts)


def _why(delivery: DeliveryRow) -> str:
    if delivery.state == ORPHANED:  # its last error says so at length: --deliveries shows it
        return f"{delivery.webhook}: no longer in the config"
    reasons = []
    if delivery.last_error and delivery.state != HELD:
        reasons.append(clipped(delivery.last_error, ERROR_WIDTH))
    if delivery.next_attempt_at is not None:
        label = "until" if delivery.state == HELD else "next attempt"
        reasons.append(f"{label} {_when(delivery.next_attempt_at)}")
    if delivery.state == DIGESTED:
        reasons.append("in a digest not yet delivered")
    return f"{delivery.webhook}: {', '.join(reasons)}" if reasons else delivery.webhook


def delivery_lines(sent: tuple[DeliveryRow, ...]) -> list[str]:
    """`→ analysts  failed     7 attempts  last error: HTTP 500 …` (for --deliveries), the
    webhook names and states of one alert lined up."""
    cells = [(f"→ {d.webhook}", d.state, plural(d.attempts, "attempt"), _tail(d)) for d in sent]
    return [line.rstrip() for line in table(("", "", "", ""), cells)[1:]]


def _tail(delivery: DeliveryRow) -> str:
    parts = []
    if delivery.state != DELIVERED and delivery.last_error:
        parts.append(f"last error: {delivery.last_error}")
    if delivery.next_attempt_at is not None:
        label = "held until" if delivery.state == HELD else "next attempt"
        parts.append(f"{label}: {_when(delivery.next_attempt_at)}")
    return "  ".join(parts)


def replay_command(args: argparse.Namespace) -> int:
    if not args.alert_ids and not args.failed:
        print("replay: give alert ids, or --failed", file=sys.stderr)
        return EXIT_INVALID
    opened = open_read_only(args.config)
    if isinstance(opened, int):
        return opened
    config, store = opened
    try:
        problem = _unknown_filter(config, store, rule=None, webhook=args.webhook)
        if problem:
            print(f"monitor replay: {problem}", file=sys.stderr)
            return EXIT_INVALID
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
    print(f"requeued {plural(count, 'delivery', 'deliveries')}")
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
    opened = open_read_only(args.config)
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

    rows = []
    for hook in config.settings.webhooks:
        state = states.get(hook.name)
        counts = dict(state.counts) if state else {}
        rate = hook.rate_limit or target_for(hook).rate_limit
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
        tally = ", ".join(f"{counts[s]} {s}" for s in STATES if counts.get(s)) or "none"
        limit = f"{rate:g}/s" if rate else "none"
        rows.append((hook.name, hook.format, hook.safe_url(), limit, tally, status))
    if not args.json:
        if rows:
            for line in table(WEBHOOKS_HEADER, rows):
                print(line)
        else:
            print("no webhooks in the config", file=sys.stderr)
    return EXIT_OK


WEBHOOKS_HEADER = ("WEBHOOK", "FORMAT", "URL", "RATE LIMIT", "DELIVERIES", "STATE")


def _enable(store: Store, config: LoadedConfig, name: str) -> int:
    known = {hook.name for hook in config.settings.webhooks}
    if name not in known:
        print(f"monitor webhooks: {unknown_name('webhook', name, known)}", file=sys.stderr)
        return EXIT_INVALID
    if store.outbox.enable_webhook(name, datetime.now(UTC)):
        print(
            f"webhook {name} enabled; its queued alerts are delivered by the next run "
            "(a running daemon's next delivery pass)"
        )
    else:
        print(f"webhook {name} was not disabled")
    return EXIT_OK
