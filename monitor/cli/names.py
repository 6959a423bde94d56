"""Names the user types (rule ids, webhook names) checked against the config before use.

A name the config does not know is an error that says so and lists the names it does know,
closest first when one is close: a typo must not read as "nothing matched".
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

SHOWN = 12  # known names listed at most; a config with hundreds of rules gets the closest ones


def unknown_name(kind: str, name: str, known: Collection[str]) -> str:
    """`unknown webhook 'nosuch'; known webhooks: analysts, ops-slack`, or with a close one
    `unknown rule id 'basebal'; did you mean 'baseball'? Known rule ids: baseball, watch`."""
    if not known:
        return f"unknown {kind} {name!r}; the config has no {kind}s"
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    listed = [*close, *(n for n in sorted(known) if n not in close)]
    more = f" (and {len(listed) - SHOWN} more)" if len(listed) > SHOWN else ""
    names = f"{', '.join(listed[:SHOWN])}{more}"
    if close:
        return f"unknown {kind} {name!r}; did you mean {close[0]!r}? Known {kind}s: {names}"
    return f"unknown {kind} {name!r}; known {kind}s: {names}"
