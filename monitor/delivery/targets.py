"""The registry of delivery targets: `format` in the config -> the module that renders it, and
the settings of a webhook of any format (`Webhook`, a union discriminated on `format`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.delivery import (
    apprise_target,
    cloudevents,
    discord,
    email,
    json_format,
    matrix,
    mattermost,
    ntfy,
    slack,
    standard,
    teams,
    telegram,
)
from monitor.delivery.base import Target
from monitor.delivery.settings import WebhookConfig, webhook_union

TARGETS: dict[str, Target] = {
    module.TARGET.name: module.TARGET
    for module in (
        *(standard, cloudevents, slack, discord, teams, ntfy, json_format),
        *(email, telegram, matrix, mattermost, apprise_target),
    )
}
SETTINGS: dict[str, type[WebhookConfig]] = {name: t.settings for name, t in TARGETS.items()}

if TYPE_CHECKING:  # what the union is to type checkers: one of the subclasses
    Webhook = WebhookConfig
else:
    Webhook = webhook_union(tuple(SETTINGS.values()))


def target_for(hook: WebhookConfig) -> Target:
    return TARGETS[hook.format]
