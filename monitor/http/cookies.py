"""Cookies that outsiders set: kept within bounds for feeds, not kept for receivers and hubs.

httpx keeps every cookie a response sets in its client's jar for the client's life, and the
standard library's jar has no limit, so a feed answering each poll with cookies of new names
grew the daemon's memory for as long as it ran. Feeds keep cookies (a site that sets one and
redirects to itself expects it back), within the limits RFC 6265 asks of browsers as a
minimum; a full jar refuses new names and still updates the cookies it holds. Webhook
receivers and WebSub hubs need no state of ours, so their clients keep no cookies at all.

httpx hands every response to its jar, through request and response objects it builds for the
standard library's cookie code (the request URL parsed again among them), whether the response
sets a cookie or not; a client of `JarClient` does that only for responses that set one.
"""

from __future__ import annotations

from collections.abc import Sequence
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

PER_DOMAIN = 50
TOTAL = 3000
COOKIE_BYTES = 4096  # a cookie's name and value


class BoundedCookieJar(CookieJar):
    """A jar of at most PER_DOMAIN cookies per domain and TOTAL in all, each of at most
    COOKIE_BYTES."""

    def make_cookies(self, response: Any, request: Any) -> Sequence[Cookie]:
        # one answer brings at most a domain's worth: each cookie offered is checked against
        # the whole jar, and an answer's head may hold hundreds of tiny ones
        return list(super().make_cookies(response, request))[:PER_DOMAIN]

    def set_cookie(self, cookie: Cookie) -> None:
        if len(cookie.name) + len(cookie.value or "") > COOKIE_BYTES:
            return
        key = (cookie.domain, cookie.path, cookie.name)
        held = list(self)
        if all((c.domain, c.path, c.name) != key for c in held):
            same_domain = sum(c.domain == cookie.domain for c in held)
            if len(held) >= TOTAL or same_domain >= PER_DOMAIN:
                return
        super().set_cookie(cookie)


def no_cookies() -> CookieJar:
    """A jar that accepts no cookie, so none is ever sent."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class _SetCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:  # Set-Cookie2: refused by the default policy
            super().extract_cookies(response)


class JarClient(httpx.AsyncClient):
    """An httpx client over `jar` that reads only the responses that set a cookie.

    httpx reads and writes a client's cookies through its `cookies` property; this one's wraps
    the same jar. An httpx that stopped using the property would read every response again:
    slower, as correct."""

    def __init__(self, *, jar: CookieJar, **options: Any) -> None:
        super().__init__(cookies=jar, **options)
        self._set_cookies = _SetCookies(jar)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._set_cookies

    @cookies.setter
    def cookies(
        self, cookies: httpx.Cookies | CookieJar | dict[str, str] | list[tuple[str, str]]
    ) -> None:
        self._set_cookies = _SetCookies(cookies)
