"""An item several rules match: chat targets name the other rules beside the alert's own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.delivery.base import Alert, AlertView
from monitor.delivery.targets import target_for
from tests.delivery.support import event, hook

ALSO = [
    {"id": "us-pressure", "title": "US pressure on Havana", "severity": "medium", "score": 71.0}
]


def _alert(also: list[dict[str, Any]]) -> Alert:
    document = event("alrt_7")
    document["data"]["also"] = also
    return Alert.parse("alrt_7", json.dumps(document, ensure_ascii=False))


def test_the_view_lists_the_other_rules_after_its_own() -> None:
    alert = _alert(ALSO)
    assert alert.event is not None
    view = AlertView.of("alrt_7", alert.event)  # type: ignore[arg-type]

    assert view.also == ("US pressure on Havana",)
    assert view.rules_label == f"{view.rule_title} (also: US pressure on Havana)"


def test_an_alert_of_one_rule_reads_as_before() -> None:
    alert = _alert([])
    assert alert.event is not None
    view = AlertView.of("alrt_7", alert.event)  # type: ignore[arg-type]

    assert view.rules_label == view.rule_title


@pytest.mark.parametrize(
    "target", ["slack", "discord", "teams", "ntfy", "mattermost", "telegram", "matrix"]
)
def test_chat_targets_show_the_other_rules(target: str) -> None:
    extra: dict[str, Any] = {
        "telegram": {"token": "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0", "chat_id": "-100"},
        "matrix": {"room_id": "!room:example.org", "access_token": "syt_x"},
    }.get(target, {})
    h = hook(format=target, url="https://hooks.example.org/T0/B0/SECRET", **extra)
    request = target_for(h).build(h, _alert(ALSO), 1_750_000_000)

    assert "also: US pressure on Havana" in request.body.decode()
