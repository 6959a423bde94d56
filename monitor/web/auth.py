"""Who may use the console and the API: a token, sent as a header by tools or typed once into the
login form by people.

    /healthz, /metrics, /websub/…, /login, /static/…   open (probes, hubs, the login page)
    Authorization: Bearer TOKEN                        tools and the API; no CSRF check
    Authorization: Basic (any user, TOKEN as password) feed readers following /alerts.atom
    the `monitor_session` cookie                       set by the login form (HttpOnly,
                                                       SameSite=Strict, Secure over https)
    nothing, or a wrong token                          401 JSON for /api/… and /alerts.atom;
                                                       other GETs are sent to /login

Two kinds of token: `token` may do everything, `read_token` (optional) only reads: its POSTs
get 403, except on endpoints marked `@reads_only` (the playground's match and backtest, which
write nothing). A POST made with a session cookie must carry that session's CSRF token, as the
form field `csrf_token` or the header `X-CSRF-Token` (templates get it from `csrf_token(request)`);
SameSite=Strict alone would leave older browsers and same-site pages able to post.

The session cookie is signed with an HMAC of our own (stdlib `hmac`, a few lines) rather than
Starlette's SessionMiddleware: that needs itsdangerous and a secret key to keep somewhere, while
ours derives the key from the token itself, so changing a token ends every session opened with
it, and the daemon keeps no state. The cookie holds the token's kind, the session's CSRF token
and an expiry; never the token.

Routes see who called as `request.scope["auth"]` (also `request.user`): a `Principal` with
`can_write`. Failed logins and wrong tokens are answered after a short delay, and more than
FAILED_LIMIT of them from one address within FAILED_WINDOW get 429 until the window passes.
Comparisons are constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import html
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, quote

from starlette.authentication import BaseUser
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
TOKEN_ENV = "MONITOR_TOKEN"  # noqa: S105 - the variable holding the token, if the config has none
COOKIE = "monitor_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_AGE = 24 * 3600  # seconds a login lasts
FAILED_LIMIT = 10  # failed logins (or wrong tokens) from one address within FAILED_WINDOW
FAILED_WINDOW = 60.0  # seconds
FAILED_DELAY = 0.25  # seconds each failure waits before its answer
FORM_CAP = 1 << 20  # bytes of a form read to find its CSRF token (the playground's pasted text)
LOGIN_CAP = 8192  # bytes of a login form
LOGIN_TIMEOUT = 10.0  # seconds for a login form's body to arrive (anyone may post one)
PUBLIC = ("/healthz", "/metrics", "/websub/", "/login", "/static/")
JSON_PATHS = ("/api/", "/alerts.atom")  # answered 401 JSON rather than sent to the login form
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
Kind = Literal["write", "read"]
E = TypeVar("E", bound=Callable[..., Any])
# the login page: (where to go after, a problem to show or "", status) -> the page
LoginPage = Callable[[str, str, int], Response]


@dataclass(frozen=True)
class Tokens:
    """The console's tokens and where the write token came from (config, MONITOR_TOKEN or
    generated at start)."""

    write: str = field(repr=False)
    read: str | None = field(default=None, repr=False)
    source: Literal["config", "environment", "generated"] = "config"

    @classmethod
    def resolve(cls, configured: str | None, read: str | None, env_token: str | None) -> Tokens:
        """The configured token, else MONITOR_TOKEN's, else a new one for this run."""
        if configured:
            return cls(configured, read, "config")
        if env_token:
            return cls(env_token, read, "environment")
        return cls(secrets.token_urlsafe(32), read, "generated")

    @property
    def described(self) -> str:
        """Where the token came from, for the start line (never the token)."""
        return {
            "config": "token from http.token",
            "environment": f"token from {TOKEN_ENV}",
            "generated": "token made at start",
        }[self.source]

    def kind_of(self, candidate: str) -> Kind | None:
        """Which token `candidate` is, compared in constant time with both."""
        given = candidate.encode()
        write = hmac.compare_digest(given, self.write.encode())
        read = self.read is not None and hmac.compare_digest(given, self.read.encode())
        return "write" if write else "read" if read else None

    def secret(self, kind: Kind) -> str | None:
        return self.write if kind == "write" else self.read


@dataclass(frozen=True)
class Principal(BaseUser):
    """Who made a request: a token's kind, and how it came (a header, or a session cookie with
    its CSRF token)."""

    kind: Kind
    via: Literal["bearer", "basic", "session"]
    csrf: str = ""

    @property
    def can_write(self) -> bool:
        return self.kind == "write"

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return "read-only" if self.kind == "read" else "operator"


def principal(request: Request) -> Principal | None:
    """Who made `request` (None on the open paths)."""
    found = request.scope.get("auth")
    return found if isinstance(found, Principal) else None


def csrf_token(request: Request) -> str:
    """The value a form posted from this page must carry as `csrf_token` (empty for a request
    made with a token header, which needs none)."""
    found = principal(request)
    return found.csrf if found is not None else ""


def reads_only(endpoint: E) -> E:
    """Mark an endpoint whose POST writes nothing (a match, a backtest): read-only tokens may
    call it. A cookie session still needs its CSRF token."""
    endpoint.monitor_reads_only = True  # type: ignore[attr-defined]
    return endpoint


# -- sessions ---------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Sessions:
    """Signed session cookies: `kind.csrf.expiry`, then an HMAC keyed by the token of that kind."""

    tokens: Tokens
    clock: Callable[[], float] = time.time
    age: int = SESSION_AGE

    def issue(self, kind: Kind) -> str:
        payload = json.dumps({"k": kind, "c": secrets.token_urlsafe(24), "e": self._expiry()})
        body = _b64(payload.encode())
        return f"{body}.{self._sign(kind, body)}"

    def open(self, cookie: str) -> Principal | None:
        body, _, signature = cookie.partition(".")
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(payload, dict) or payload.get("k") not in ("write", "read"):
            return None
        kind: Kind = payload["k"]
        expected = self._sign(kind, body)
        if not expected or not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        expiry, csrf = payload.get("e"), payload.get("c")
        if not isinstance(expiry, int) or expiry < self.clock() or not isinstance(csrf, str):
            return None
        return Principal(kind, "session", csrf)

    def _expiry(self) -> int:
        return int(self.clock()) + self.age

    def _sign(self, kind: Kind, body: str) -> str:
        secret = self.tokens.secret(kind)
        if secret is None:
            return ""
        key = hmac.new(secret.encode(), b"monitor session cookie", hashlib.sha256).digest()
        return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


@dataclass
class Failures:
    """Recent failed logins and wrong tokens, by client address."""

    clock: Callable[[], float] = time.monotonic
    limit: int = FAILED_LIMIT
    window: float = FAILED_WINDOW
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may now."""
        recent = self._recent(client)
        if len(recent) < self.limit:
            return 0.0
        return max(recent[0] + self.window - self.clock(), 1.0)

    def failed(self, client: str) -> None:
        self._recent(client).append(self.clock())

    def _recent(self, client: str) -> deque[float]:
        if len(self._seen) > 10_000:  # many addresses: forget the quiet ones
            self._seen = {k: v for k, v in self._seen.items() if v and self._fresh(v[-1])}
        recent = self._seen.setdefault(client, deque())
        while recent and not self._fresh(recent[0]):
            recent.popleft()
        return recent

    def _fresh(self, moment: float) -> bool:
        return moment > self.clock() - self.window


@dataclass
class Auth:
    """The tokens, their sessions and the failure count: one per server."""

    tokens: Tokens
    sessions: Sessions = field(init=False)
    failures: Failures = field(default_factory=Failures)
    failed_delay: float = FAILED_DELAY
    clock: Callable[[], float] = time.time
    login_page: LoginPage | None = None  # the console's own look; else a plain form
    login_timeout: float = LOGIN_TIMEOUT

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.tokens, self.clock)

    def identify(self, request: Request) -> tuple[Principal | None, bool]:
        """Who sent `request`, and whether it offered a token that is wrong."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            kind = self.tokens.kind_of(value.strip())
            return (Principal(kind, "bearer") if kind else None), kind is None
        if scheme.lower() == "basic":
            # for feed readers; a browser keeps Basic credentials and sends them with any
            # request, a cross-site form's too, so they read and never write
            kind = self.tokens.kind_of(_basic_password(value))
            return (Principal("read", "basic") if kind else None), kind is None
        cookie = request.cookies.get(COOKIE)
        return (self.sessions.open(cookie) if cookie else None), False

    async def fail(self, client: str) -> None:
        self.failures.failed(client)
        if self.failed_delay:
            await asyncio.sleep(self.failed_delay)  # a guess costs time

    def routes(self) -> list[BaseRoute]:
        """GET and POST /login, POST /logout."""
        return [
            Route("/login", self._login_page, methods=["GET"]),
            Route("/login", self._login, methods=["POST"]),
            Route("/logout", self._logout, methods=["POST"]),
        ]

    async def _login_page(self, request: Request) -> Response:
        """The form; `?token=` (the link printed at start) logs in at once."""
        target = _local(request.query_params.get("next", "/"))
        given = request.query_params.get("token")
        if given is None:
            return self._form(target, "", 200)
        return await self._sign_in(request, given, target)

    async def _login(self, request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > LOGIN_CAP:
            return PlainTextResponse("a login form is a Content-Length of a few bytes\n", 413)
        try:
            async with asyncio.timeout(self.login_timeout):
                body = await request.body()
        except TimeoutError:
            return PlainTextResponse("too slow\n", 408)
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        return await self._sign_in(request, form.get("token", ""), _local(form.get("next", "/")))

    async def _sign_in(self, request: Request, given: str, target: str) -> Response:
        client = _client(request)
        if wait := self.failures.blocked(client):
            return _too_many(wait)
        kind = self.tokens.kind_of(given.strip())
        if kind is None:
            log.warning("http: failed login from %s", client)
            await self.fail(client)
            return self._form(target, "That is not the console's token.", 401)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            COOKIE,
            self.sessions.issue(kind),
            max_age=self.sessions.age,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    def _form(self, target: str, problem: str, status: int) -> Response:
        """The page posts `token` and `next` (the `target`) to /login."""
        return (self.login_page or _login_form)(target, problem, status)

    async def _logout(self, _request: Request) -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response


def _basic_password(value: str) -> str:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error):
        return ""
    return decoded.partition(":")[2]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _local(target: str) -> str:
    """A path on this server to go to after the login (never another site: `//x`, `/\\x`)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _too_many(wait: float) -> Response:
    return JSONResponse(
        {"error": "too_many_failures", "detail": "too many wrong tokens; try again later"},
        429,
        {"Retry-After": str(int(wait) + 1)},
    )


def _login_form(target: str, problem: str = "", status: int = 200) -> Response:
    shown = f'<p role="alert">{html.escape(problem)}</p>' if problem else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>monitor: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>monitor</h1>{shown}
<form method="post" action="/login">
<label>Console token <input type="password" name="token" autocomplete="current-password"
 required autofocus></label>
<input type="hidden" name="next" value="{html.escape(target)}">
<button type="submit">Log in</button></form>
<p>The token is <code>http.token</code> in monitor.yaml or <code>MONITOR_TOKEN</code>; without
either, the daemon makes one at start and shows it on its terminal.</p></main></body></html>
"""
    return HTMLResponse(page, status, {"Cache-Control": "no-store"})


# -- the middleware ---------------------------------------------------------------------------


class AuthMiddleware:
    """Every path but the open ones needs a principal; unsafe methods need write access (or an
    endpoint marked `reads_only`) and, with a session cookie, its CSRF token."""

    def __init__(self, app: ASGIApp, auth: Auth, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.auth = auth
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _open(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        client = _client(request)
        if wait := self.auth.failures.blocked(client):
            await _too_many(wait)(scope, receive, send)
            return
        found, wrong = self.auth.identify(request)
        if found is None:
            if wrong:
                log.warning("http: a wrong token from %s", client)
                await self.auth.fail(client)
            await _unauthenticated(request)(scope, receive, send)
            return
        scope["auth"] = scope["user"] = found
        if request.method in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        await self._write(found, scope, receive, send)

    async def _write(self, found: Principal, scope: Scope, receive: Receive, send: Send) -> None:
        if not found.can_write and not self._reads_only(scope):
            await _forbidden("a read-only token cannot change anything")(scope, receive, send)
            return
        if found.via == "session":
            given, receive = await _posted_csrf(scope, receive)
            if given is None:
                await PlainTextResponse("form too large\n", 413)(scope, receive, send)
                return
            if not given or not hmac.compare_digest(given.encode(), found.csrf.encode()):
                await _forbidden("missing or stale CSRF token: reload the page")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)

    def _reads_only(self, scope: Scope) -> bool:
        if scope["path"] == "/logout":
            return True
        endpoint = _endpoint(self.routes, scope)
        return bool(getattr(endpoint, "monitor_reads_only", False))


def _open(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)


def _unauthenticated(request: Request) -> Response:
    path = request.url.path
    if path.startswith(JSON_PATHS) or request.method not in ("GET", "HEAD"):
        # a feed reader answers a Basic challenge with the token as password
        challenge = 'Basic realm="monitor"' if path == "/alerts.atom" else 'Bearer realm="monitor"'
        return JSONResponse(
            {"error": "unauthorized", "detail": "send Authorization: Bearer TOKEN, or log in"},
            401,
            {"WWW-Authenticate": challenge},
        )
    wanted = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(wanted, safe='')}", 303)


def _forbidden(detail: str) -> Response:
    return JSONResponse({"error": "forbidden", "detail": detail}, 403)


def _endpoint(routes: Sequence[BaseRoute], scope: Scope) -> object:
    """The endpoint `scope` would be routed to, looking into mounts; None if none."""
    for route in routes:
        match, child = route.matches(scope)
        if match != Match.FULL:
            continue
        if isinstance(route, Mount):
            return _endpoint(route.routes, {**scope, **child})
        return getattr(route, "endpoint", None)
    return None


async def _posted_csrf(scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
    """The CSRF token a POST carries (header, else form field; "" when neither), and a
    `receive` that replays the body read to find it. None when the form is over FORM_CAP."""
    request = Request(scope)
    if header := request.headers.get(CSRF_HEADER):
        return header, receive
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return "", receive
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > FORM_CAP:
        return None, receive
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > FORM_CAP:
            return None, receive
        if not message.get("more_body", False):
            break
    replay = _replay(bytes(body), receive)
    form = await Request(scope, _replay(bytes(body), receive)).form()
    value = form.get(CSRF_FIELD)
    await form.close()
    return (value if isinstance(value, str) else ""), replay


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
