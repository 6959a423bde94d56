"""WebSub's wire protocol (W3C Recommendation, 2018): requests to hubs, signatures of pushes.

    subscribe / unsubscribe   POST hub.mode, hub.topic, hub.callback (+ hub.secret,
                              hub.lease_seconds) as a form; any 2xx means the hub will verify
    a push                    X-Hub-Signature: METHOD=HEX, an HMAC (sha1, sha256, sha384,
                              sha512) of the raw body with the subscription's secret

Why this is in the feeds stage: a hub is one more way a feed's documents reach us, and what is
here is plain protocol over HTTP, held to the fetcher's discipline (a deadline for the whole
exchange, no redirects followed, at most a few KiB of an answer read): it needs no store, no
config and no other stage, so it can be tested on its own against a hostile server. What
decides when to ask a hub and what a push does to stored state combines the store, the config
and the pipeline; it lives above, in monitor.pipeline.websub.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping

import httpx

from monitor.feeds.fetcher import USER_AGENT
from monitor.http.cookies import no_cookies
from monitor.http.guard import AddressPolicy, RefusedAddress, steered
from monitor.http.transport import pooled_transport

HUB_DEADLINE = 15.0  # seconds for a whole request to a hub
HUB_ANSWER_BYTES = 4096  # read at most this much of a hub's answer (for the error message)
HUB_REQUESTS_AT_ONCE = 4  # requests to hubs in flight at once, per daemon (the pool is sized so)
DIGESTS = frozenset(("sha1", "sha256", "sha384", "sha512"))  # X-Hub-Signature methods


def make_hub_client() -> httpx.AsyncClient:
    """The client for hubs: no redirects followed, short timeouts (each request also has a
    deadline)."""
    limits = httpx.Limits(max_connections=HUB_REQUESTS_AT_ONCE * 2, max_keepalive_connections=4)
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(10.0, connect=5.0),
        # an answer is read undecoded: a compressed one could expand far past HUB_ANSWER_BYTES
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        limits=limits,
        transport=pooled_transport(limits),  # httpx's own, honouring them, under env proxies
        cookies=no_cookies(),  # nor a hub's
    )


def hub_form(
    mode: str, topic: str, callback: str, secret: str, lease: int | None = None
) -> dict[str, str]:
    """The form of a subscription request (`mode` subscribe or unsubscribe); a subscription
    names its secret, and the lease asked for when there is one."""
    form = {"hub.mode": mode, "hub.topic": topic, "hub.callback": callback}
    if mode == "subscribe":
        form["hub.secret"] = secret
        if lease:
            form["hub.lease_seconds"] = str(lease)
    return form


async def ask_hub(
    client: httpx.AsyncClient,
    hub: str,
    form: Mapping[str, str],
    policy: AddressPolicy,
    deadline: float = HUB_DEADLINE,
) -> str | None:
    """POST `form` to the hub; None when it accepted (2xx), else what went wrong. The whole
    exchange has `deadline` seconds; redirects are not followed; a few KiB of an error are read.
    A feed named the hub, so where the request may connect is `policy`'s (monitor.http.guard)."""
    try:
        async with asyncio.timeout(deadline):
            async with client.stream(
                "POST", hub, data=dict(form), extensions=steered(policy)
            ) as response:
                if 200 <= response.status_code < 300:
                    return None
                if response.is_redirect:
                    return f"the hub answered {response.status_code} (redirects are not followed)"
                text = await _some_text(response)
                return f"the hub answered {response.status_code}: {text}".rstrip(": ")
    except TimeoutError:
        return f"the hub did not answer within {deadline:g}s"
    except httpx.HTTPError as exc:
        refused = exc.__cause__
        if isinstance(refused, RefusedAddress):
            return str(refused)
        return f"cannot reach the hub: {type(exc).__name__}: {exc}"


def signature_problem(header: str | None, secret: str, body: bytes) -> str | None:
    """None when `X-Hub-Signature` is a valid HMAC of `body` with `secret`; else the outcome
    to count: `unsigned` (no header) or `bad_signature` (unknown method, malformed, mismatch)."""
    if not header:
        return "unsigned"
    method, sep, given = header.strip().partition("=")
    digest = method.strip().lower()
    if not sep or digest not in DIGESTS:
        return "bad_signature"
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    given_bytes = given.strip().lower().encode("utf-8", "replace")  # compare_digest: ASCII str only
    return None if hmac.compare_digest(expected.encode(), given_bytes) else "bad_signature"


async def _some_text(response: httpx.Response) -> str:
    """The start of a hub's answer, for the error message; never more than a few KiB read."""
    data = b""
    async for chunk in response.aiter_raw():  # as sent: never inflated past the cap
        data += chunk
        if len(data) >= HUB_ANSWER_BYTES:
            break
    text = data[:HUB_ANSWER_BYTES].decode("utf-8", "replace")
    return " ".join(text.split())[:200]
