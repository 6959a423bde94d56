"""The registry of delivery targets: `format` in the config -> the module that renders it."""

from __future__ import annotations

from monitor.delivery import cloudevents, discord, json_format, ntfy, slack, standard, teams
from monitor.delivery.base import Target
from monitor.delivery.settings import WebhookConfig

TARGETS: dict[str, Target] = {
    module.TARGET.name: module.TARGET
    for module in (standard, cloudevents, slack, discord, teams, ntfy, json_format)
}


def target_for(hook: WebhookConfig) -> Target:
    return TARGETS[hook.format]
