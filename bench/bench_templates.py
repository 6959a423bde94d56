"""What rendering a `json` template costs per delivery, before and after the bounded worker.

    .venv/bin/python -m bench.bench_templates [--renders 2000]

Three ways of rendering the documented example template (docs/delivery.md) for one alert:
1. before: Jinja2's immutable sandbox in this process, the whole string built, then checked;
2. the bounded sandbox (monitor.delivery.template_sandbox) in this process: the hooks' cost;
3. after: json_format.render, through a worker process (template_worker): the hooks, the pipe
   and the pickling of the event, per render; and the worker's start-up, once.
And the check at config load (one render per event type the webhook is sent). A benchmark, not
a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.delivery import json_format, template_sandbox
from monitor.delivery.base import Alert

TEMPLATE = """{
  "text": {{ (alert.rule.title ~ ": " ~ alert.item.title) | tojson }},
  "link": {{ alert.item.link | tojson }},
  "terms": [{% for m in alert.matches %}{{ m.text | tojson }}
            {%- if not loop.last %},{% endif %}{% endfor %}],
  "summary": {{ alert.item.summary | clip(280) | tojson }}
}"""
ALERT_JSON = Path(__file__).resolve().parents[1] / "tests" / "data" / "delivery" / "alert.json"


def _per_call(function: Callable[[], object], count: int) -> tuple[float, float]:
    """(median, 95th percentile) microseconds of `function`."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=2000)
    count = parser.parse_args().renders
    alert = Alert.parse("alrt_bench", ALERT_JSON.read_text(encoding="utf-8"))
    context = json_format.context_of(alert)

    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    plain.filters["clip"] = lambda value, limit=200: str(value)[:limit]
    before = plain.from_string(TEMPLATE)

    def old() -> None:
        json.loads(before.render(**context))

    def hooked() -> None:
        json.loads(template_sandbox.render_text(TEMPLATE, context))

    started = time.perf_counter()
    json_format.render(TEMPLATE, alert)
    start_up = time.perf_counter() - started
    rows = [
        ("before: sandbox on the event loop", _per_call(old, count)),
        ("bounded sandbox, in process", _per_call(hooked, count)),
        (
            "after: bounded sandbox in a worker",
            _per_call(lambda: json_format.render(TEMPLATE, alert), count),
        ),
    ]
    print(f"{count} renders of the example template, microseconds per render")
    for label, (median, p95) in rows:
        print(f"  {label:<38} median {median:8.1f}   p95 {p95:8.1f}")
    print(f"  worker start-up (first render)         {start_up * 1000:8.1f} ms")
    events = ("alert.created", "feed.unhealthy", "feed.recovered")
    source = TEMPLATE.replace('"text"', '"kind": {{ event.type | tojson }}, "text"')
    guarded = "{% if event.type.startswith('alert') %}" + source + "{% else %}{}{% endif %}"
    started = time.perf_counter()
    json_format.check_template(guarded, events)
    took = (time.perf_counter() - started) * 1000
    print(f"  config-load check, {len(events)} event types        {took:8.1f} ms")


if __name__ == "__main__":
    main()
