"""Format `json` under hostile templates: bounded in time, memory and size, off the event loop,
and checked at config load (`monitor check`) with a sample of each event type."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from monitor.delivery import json_format
from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.delivery.settings import WebhookConfig
from monitor.errors import PermanentDeliveryError
from tests.conftest import run_cli
from tests.delivery.support import alert, hook, store_with_alerts
from tests.ops.daemon import Daemon, with_http
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer, RecordedRequest, Reply

GOOD = '{"id": {{ alert.id | tojson }}, "title": {{ alert.item.title | tojson }}}'
# each template is harmless on the samples (`monitor check` passes it) and hostile on the alert
# with id alrt_0: what a template doing expensive work on a feed's own text comes to
HOSTILE = {
    "nested loops": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "time limit of 2s of CPU",
    ),
    "huge multiplication": ("{{ 'x' * 100000000 }}", "`*` would build a value over 1000000"),
    "macro recursion": (
        "{% macro down(n) %}{{ down(n + 1) }}{% endmacro %}{{ down(0) }}",
        "recursion limit",
    ),
    "huge range": ("{% for i in range(50000000) %}{% endfor %}", "`range` is given 50000000"),
    "loop over a long join": (
        "{% for c in range(100000) | join(',' * 20) %}{{ c }}{% endfor %}",
        "filter `join` builds a value over 1000000",
    ),
    "output past the cap": (
        "[{% for i in range(100000) %}{{ '\"' ~ ('y' * 100) ~ '\",' }}{% endfor %}0]",
        "output over 1000000 characters",
    ),
    "output captured by set": (
        "{% set s %}{% for i in range(100000) %}{{ 'y' * 100000 }}{% endfor %}{% endset %}"
        "{{ s | length }}",
        "memory limit of 512 MiB",
    ),
    "format width": ("{{ '%01000000000d' % 1 }}", "`%` would build a value over 1000000"),
    "format width from a value": ("{{ '%0*d' % (10 ** 9, 1) }}", "`%` would build a value"),
    "format filter width": (
        "{{ '%(n).1000000000f' | format(n=1.5) }}",
        "filter `format` would build a value over 1000000",
    ),
    "doubling in a namespace": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        "`.s` builds a value over 1000000",
    ),
}


ALERTS = {"format": "json", "events": ["alert.created"]}


def _hostile(body: str) -> str:
    return f"{{% if alert.id == 'alrt_0' %}}{body}{{% else %}}{GOOD}{{% endif %}}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


def _collect(server: LocalServer, path: str) -> list[RecordedRequest]:
    server.route(path, lambda _request: Reply(200, b"{}"))
    return server.requests_to(path)


@pytest.mark.parametrize(("body", "error"), HOSTILE.values(), ids=HOSTILE.keys())
async def test_a_hostile_template_fails_for_good_and_the_other_webhook_delivers(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient, body: str, error: str
) -> None:
    _collect(server, "/bad")
    _collect(server, "/good")
    # from before the config is validated: Jinja2 evaluates constant expressions as it
    # compiles, and validation compiles in this process (`'%0100000000d' % 1` did, 1 GB)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    hooks: dict[str, WebhookConfig] = {
        "bad": hook("bad", retry=[], url=server.url("/bad"), template=_hostile(body), **ALERTS),
        "good": hook("good", url=server.url("/good"), template=GOOD, **ALERTS),
    }
    store = store_with_alerts(tmp_path, 1, hooks=("bad", "good"))
    summary = await Dispatcher(store.outbox, client, hooks).deliver_due()
    # what the template built stayed in the worker: this process grew by no more than the
    # few bodies it handled (before, `ns.s ~ ns.s` doubled here until memory ran out)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100 * 1024
    assert summary.delivered == 1
    (sent,) = server.requests_to("/good")
    assert json.loads(sent.body)["id"] == "alrt_0"
    assert server.requests_to("/bad") == []  # nothing of what the template built went out
    rows = {row.webhook: row for row in store.outbox.recent_alerts()}
    assert rows["good"].state == "delivered"
    bad = rows["bad"]
    assert (bad.state, bad.attempts) == ("failed", 1)
    assert bad.last_error is not None
    assert error in bad.last_error
    store.close()


async def test_rendering_leaves_the_event_loop_free() -> None:
    h = hook(template=_hostile(HOSTILE["nested loops"][0]), **ALERTS)
    rendering = asyncio.create_task(json_format.TARGET.request(h, alert("alrt_0"), 1))
    for _ in range(20):  # turns of the loop: a render on the loop would have finished in one
        await asyncio.sleep(0)
    assert not rendering.done()
    with pytest.raises(PermanentDeliveryError, match="time limit"):
        await rendering


async def test_renders_queued_behind_slow_ones_hold_none_of_the_loops_threads() -> None:
    h = hook(template=_hostile(HOSTILE["nested loops"][0]), **ALERTS)
    target = json_format.TARGET
    # as many as the target's concurrency: more than the loop's default threads on 2 cores
    renders = [
        asyncio.create_task(target.request(h, alert("alrt_0"), 1))
        for _ in range(target.concurrency)
    ]
    await asyncio.sleep(0)
    assert await asyncio.to_thread(lambda: "the store's work goes on") != ""
    assert not any(r.done() for r in renders)
    for r in renders:
        r.cancel()  # those not started yet never start; the two rendering stop at their limit
    await asyncio.gather(*renders, return_exceptions=True)


def test_the_worker_goes_on_after_a_template_went_over_a_limit() -> None:
    hoarding = _hostile(HOSTILE["output captured by set"][0])
    h = hook(template=hoarding, **ALERTS)
    with pytest.raises(PermanentDeliveryError, match="memory limit"):
        h_build(h, "alrt_0")
    assert json.loads(h_build(h, "alrt_1"))["id"] == "alrt_1"


def h_build(h: WebhookConfig, alert_id: str) -> bytes:
    return json_format.build(h, alert(alert_id), 1).body


ORDINARY = {
    "big numbers": (
        '{"t": {{ alert.nope | default(1750000000) }}, "n": {{ 10 ** 12 }}}',
        1750000000,
    ),
    "widths": ('{"t": {{ alert.id | center(40) | trim | tojson }}}', "alrt_1"),
    "repetition": ('{"t": {{ ("=" * 40) | length }}}', 40),
    "formatting": ('{"t": {{ ("%05.1f" % alert.score) | tojson }}}', "093.5"),
    "replace": ('{"t": {{ alert.item.title | replace(" ", "_") | truncate(20) | tojson }}}', None),
    "joined terms": (
        '{"t": {{ alert.matches | map(attribute="text") | join(", ") | tojson }}}',
        None,
    ),
}


@pytest.mark.parametrize(("template", "value"), ORDINARY.values(), ids=ORDINARY.keys())
def test_ordinary_templates_stay_within_the_limits(template: str, value: object) -> None:
    h = hook(template=template, **ALERTS)
    rendered = json.loads(json_format.build(h, alert("alrt_1"), 1).body)["t"]
    assert rendered == value or (value is None and rendered)


BAD_AT_LOAD = [
    ("not json {{ alert.id }}", "with a sample `alert.created` event, template output is not"),
    ("{{ 'x' * 100000000 }}", "`*` would build a value over 1000000 characters"),
    ("{{ alert.nope }}", "template failed: UndefinedError: 'dict object' has no attribute"),
    (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "time limit of 2s of CPU",
    ),
]


def test_monitor_check_renders_each_template_with_samples_and_names_its_line(
    tmp_path: Path,
) -> None:
    hooks = [
        f"  - name: h{n}\n    url: https://h.example/{n}\n    format: json\n"
        f"    template: {json.dumps(template)}\n"
        for n, (template, _) in enumerate(BAD_AT_LOAD)
    ]
    # a template for alerts only, on a webhook that also receives feed health
    hooks.append(
        "  - name: health\n    url: https://h.example/health\n    format: json\n"
        "    events: [alert.created, feed.unhealthy]\n"
        f"    template: {json.dumps(GOOD)}\n"
    )
    hooks.append(
        "  - name: fine\n    url: https://h.example/ok\n    format: json\n"
        f"    events: [alert.created]\n    template: {json.dumps(GOOD)}\n"
    )
    (tmp_path / "monitor.yaml").write_text("webhooks:\n" + "".join(hooks), encoding="utf-8")
    result = run_cli("check", "--config", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    problems = [line.removeprefix(f"{tmp_path}/") for line in result.stderr.splitlines()]
    for n, (_template, message) in enumerate(BAD_AT_LOAD):
        line = 2 + 4 * n + 3
        expected = f"monitor.yaml:{line}:15: webhooks.{n}.template: "
        assert any(p.startswith(expected) and message in p for p in problems), (n, problems)
    health = f"monitor.yaml:{2 + 4 * len(BAD_AT_LOAD) + 4}:15: webhooks.{len(BAD_AT_LOAD)}."
    assert any(
        p.startswith(health) and "with a sample `feed.unhealthy` event" in p for p in problems
    ), problems
    assert not any(f"webhooks.{len(BAD_AT_LOAD) + 1}." in p for p in problems), problems


def test_the_samples_follow_the_webhooks_settings() -> None:
    story = '{"story": {{ alert.group.id | tojson }}}'
    with pytest.raises(ValueError, match=r"sample `alert\.created` event, template failed"):
        hook(template=story, **ALERTS)  # without `group:`, alerts carry no group
    grouped = hook(format="json", template=story, group="12h")  # sent alert.updated too
    assert grouped.format == "json"
    digest_only = "{% if event.type == 'alert.digest' %}{{ alert.nope }}{% endif %}{}"
    assert hook(format="json", template=digest_only).format == "json"  # no digest: without one
    with pytest.raises(ValueError, match=r"sample `alert\.digest` event"):
        hook(format="json", template=digest_only, digest="1h")


def test_the_daemon_answers_healthz_while_a_template_spins(
    tmp_path: Path, server: LocalServer
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))  # two alerts
    _collect(server, "/bad")
    _collect(server, "/good")
    spinning = HOSTILE["nested loops"][0]
    bad = f"{{% if alert.id == 'alrt_sample' %}}{GOOD}{{% else %}}{spinning}{{% endif %}}"
    config = with_http(
        write_config(
            tmp_path / "config",
            feeds=[{"url": server.url("/wire.xml"), "interval": "1h"}],
            webhooks=[
                {"name": "bad", "url": server.url("/bad"), "template": bad, **ALERTS},
                {"name": "good", "url": server.url("/good"), "template": GOOD, **ALERTS},
            ],
        )
    )
    daemon = Daemon.start(config)
    try:
        assert server.wait_for(lambda requests: len(requests) >= 1, timeout=30), daemon.log
        answers = []  # from the feed's fetch on, while its two alerts render for "bad"
        while not any("template went over" in line for line in daemon.lines):
            answers.append(daemon.get("/healthz")[0])  # a frozen loop: a timeout here
            assert daemon.process.poll() is None, daemon.log
            time.sleep(0.05)  # asking, not waiting for an event: the renders' CPU is the point
        assert answers
        assert set(answers) == {200}
        daemon.wait_for_log("to bad failed (template went over the time limit of 2s of CPU)")
        good = lambda requests: sum(r.path == "/good" for r in requests) >= 2  # noqa: E731
        assert server.wait_for(good, timeout=30), daemon.log
    finally:
        daemon.stop()
    assert server.requests_to("/bad") == []
