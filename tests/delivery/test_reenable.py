"""A webhook disabled by a 410 and enabled again with `monitor webhooks --enable NAME` is sent to
by a dispatcher that was running all along: it reads the webhook's state from the store at each
pass, not only at start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.delivery.settings import WebhookConfig
from tests.conftest import run_cli
from tests.delivery.support import store_with_alerts
from tests.support.pipeline import write_config
from tests.support.receiver import SECRET, SignedReceiver


async def test_a_running_dispatcher_sends_to_a_webhook_enabled_again_by_the_cli(
    tmp_path: Path, receiver: SignedReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_with_alerts(tmp_path, 2, ("analysts",))
    settings = {"name": "analysts", "url": receiver.url, "secret": SECRET, "concurrency": 1}
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": "http://feed"}],
        webhooks=[settings],
        storage=f"sqlite:///{tmp_path / 'monitor.db'}",
    )
    receiver.answer([410])
    hooks = {"analysts": WebhookConfig.model_validate(settings)}
    try:
        async with make_delivery_client() as client:
            dispatcher = Dispatcher(store.outbox, client, hooks)
            with caplog.at_level(logging.INFO, logger="monitor.delivery.dispatcher"):
                gone = await dispatcher.deliver_due()
                assert (gone.delivered, len(receiver.attempts())) == (0, 1)
                assert (await dispatcher.deliver_due()).delivered == 0  # disabled: left alone
                assert len(receiver.attempts()) == 1

                enabled = run_cli(
                    "webhooks", "--enable", "analysts", "--config", str(config), cwd=config
                )
                assert enabled.returncode == 0, enabled.stderr
                assert "webhook analysts enabled" in enabled.stdout

                again = await dispatcher.deliver_due()
    finally:
        store.close()
    assert again.delivered == 2
    assert len(receiver.deliveries) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("run `monitor webhooks --enable analysts`" in m for m in messages)
    assert any(
        m == "webhook analysts was enabled again (`monitor webhooks --enable`); sending its alerts"
        for m in messages
    )
