"""The token in front of the console and the API, on a real uvicorn server with real httpx
clients: bearer and basic headers, the login form and its cookie, CSRF on cookie POSTs,
read-only tokens, failed logins slowed and limited. The routes under test stand in for the
console's (a page, an API read, a write, a read-only POST)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from monitor.runtime.metrics import Metrics
from monitor.store import Store
from monitor.web.auth import (
    COOKIE,
    Auth,
    Failures,
    Principal,
    Sessions,
    Tokens,
    csrf_token,
    principal,
    reads_only,
)
from monitor.web.health import Health
from tests.support.clock import ManualClock
from tests.support.web import READ_TOKEN, TOKEN, Served, serving


async def _page(request: Request) -> Response:
    return PlainTextResponse(f"console page; csrf={csrf_token(request)}")


async def _whoami(request: Request) -> Response:
    found = principal(request)
    assert found is not None
    assert request.user is found
    return JSONResponse({"kind": found.kind, "via": found.via, "can_write": found.can_write})


async def _replay(request: Request) -> Response:
    form = await request.form()  # the body, replayed after the CSRF check read it
    return JSONResponse({"replayed": str(form.get("delivery", "")), "body_read": True})


@reads_only
async def _match(request: Request) -> Response:
    return JSONResponse({"matched": (await request.body()).decode()})


ROUTES: list[BaseRoute] = [
    Route("/", _page),
    Mount(
        "/api/v1",
        routes=[
            Route("/whoami", _whoami),
            Route("/replay", _replay, methods=["POST"]),
            Route("/match", _match, methods=["POST"]),
        ],
    ),
    Route("/alerts.atom", _page),
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    yield opened
    opened.close()


@pytest.fixture
async def web(store: Store) -> AsyncIterator[Served]:
    async with serving(
        Health(store, lambda: None), Metrics(store).exposition, extra_routes=ROUTES
    ) as served:
        yield served


def _client(web: Served, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=web.url, headers=headers, follow_redirects=False)


async def _log_in(client: httpx.AsyncClient, token: str = TOKEN) -> None:
    answer = await client.post("/login", data={"token": token, "next": "/"})
    assert answer.status_code == 303, answer.text


def _csrf(page: httpx.Response) -> str:
    return page.text.rpartition("csrf=")[2]


async def test_probes_and_hubs_need_no_token(web: Served) -> None:
    async with _client(web) as client:
        assert (await client.get("/healthz")).status_code == 503  # no tick yet: answered
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/login")).status_code == 200


async def test_without_a_token_the_api_says_401_and_pages_send_to_the_login(web: Served) -> None:
    async with _client(web) as client:
        api = await client.get("/api/v1/whoami")
        assert api.status_code == 401
        assert api.json()["error"] == "unauthorized"
        assert api.headers["www-authenticate"].startswith("Bearer")
        assert (await client.get("/alerts.atom")).status_code == 401
        page = await client.get("/", params={"rule": "r1"})
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2F%3Frule%3Dr1"
        assert (await client.post("/api/v1/replay")).status_code == 401
        assert (await client.get("/nowhere")).status_code == 303  # nothing said of what exists
        wrong = await client.get("/api/v1/whoami", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


async def test_bearer_and_basic_tokens(web: Served) -> None:
    async with _client(web, Authorization=f"Bearer {TOKEN}") as client:
        answer = await client.get("/api/v1/whoami")
        assert answer.json() == {"kind": "write", "via": "bearer", "can_write": True}
        posted = await client.post("/api/v1/replay", data={"delivery": "d1"})  # no CSRF
        assert posted.json() == {"replayed": "d1", "body_read": True}
        assert (await client.get("/nowhere")).status_code == 404
    async with _client(web, Authorization=f"Bearer {READ_TOKEN}") as client:
        answer = await client.get("/api/v1/whoami")
        assert answer.json() == {"kind": "read", "via": "bearer", "can_write": False}
        refused = await client.post("/api/v1/replay", data={"delivery": "d1"})
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"
        assert (await client.post("/api/v1/match", content=b"text")).json() == {"matched": "text"}
    basic = base64.b64encode(f"reader:{TOKEN}".encode()).decode()
    async with _client(web, Authorization=f"Basic {basic}") as client:
        assert (await client.get("/alerts.atom")).status_code == 200
        # a browser sends kept Basic credentials with a cross-site form too: read only
        answer = await client.get("/api/v1/whoami")
        assert answer.json() == {"kind": "read", "via": "basic", "can_write": False}
        assert (await client.post("/api/v1/replay", data={"delivery": "d1"})).status_code == 403
    async with _client(web) as client:
        challenge = (await client.get("/alerts.atom")).headers["www-authenticate"]
        assert challenge.startswith("Basic ")  # what feed readers answer


async def test_the_login_form_sets_a_strict_http_only_cookie(web: Served) -> None:
    async with _client(web) as client:
        form = await client.get("/login", params={"next": "/?rule=r1"})
        assert 'name="next" value="/?rule=r1"' in form.text
        wrong = await client.post("/login", data={"token": "guess" * 5, "next": "/"})
        assert wrong.status_code == 401
        assert "not the console" in wrong.text
        assert COOKIE not in wrong.cookies
        answer = await client.post("/login", data={"token": TOKEN, "next": "/?rule=r1"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/?rule=r1"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/" in cookie
        assert "Secure" not in cookie  # plain http on 127.0.0.1
        assert TOKEN not in cookie
        page = await client.get("/")
        assert page.status_code == 200
        assert len(_csrf(page)) >= 24
        assert (await client.get("/api/v1/whoami")).json()["via"] == "session"
        out = await client.post("/logout", headers={"X-CSRF-Token": _csrf(page)})
        assert out.status_code == 303
        assert (await client.get("/")).status_code == 303


async def test_behind_an_https_proxy_the_cookie_is_secure(web: Served) -> None:
    async with _client(web, **{"X-Forwarded-Proto": "https"}) as client:
        answer = await client.post("/login", data={"token": TOKEN})
        assert "Secure" in answer.headers["set-cookie"]


async def test_the_link_printed_at_start_logs_in_and_goes_only_to_local_paths(
    web: Served,
) -> None:
    async with _client(web) as client:
        answer = await client.get("/login", params={"token": TOKEN})
        assert (answer.status_code, answer.headers["location"]) == (303, "/")
        assert (await client.get("/")).status_code == 200
    async with _client(web) as client:
        for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            answer = await client.get("/login", params={"token": TOKEN, "next": elsewhere})
            assert answer.headers["location"] == "/"


async def test_cookie_posts_need_the_session_s_csrf_token(web: Served) -> None:
    async with _client(web) as client:
        await _log_in(client)
        token = _csrf(await client.get("/"))
        refused = await client.post("/api/v1/replay", data={"delivery": "d1"})
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]
        stale = await client.post("/api/v1/replay", data={"delivery": "d1", "csrf_token": "x"})
        assert stale.status_code == 403
        form = await client.post("/api/v1/replay", data={"delivery": "d1", "csrf_token": token})
        assert form.json() == {"replayed": "d1", "body_read": True}
        header = await client.post(
            "/api/v1/replay", data={"delivery": "d2"}, headers={"X-CSRF-Token": token}
        )
        assert header.json()["replayed"] == "d2"
        multipart = await client.post(
            "/api/v1/replay", files={"delivery": (None, "d3"), "csrf_token": (None, token)}
        )
        assert multipart.json()["replayed"] == "d3"
        # a read-only POST needs it too with a cookie
        assert (await client.post("/api/v1/match", content=b"x")).status_code == 403


async def test_a_read_only_session_cannot_write(web: Served) -> None:
    async with _client(web) as client:
        await _log_in(client, READ_TOKEN)
        token = _csrf(await client.get("/"))
        headers = {"X-CSRF-Token": token}
        assert (await client.post("/api/v1/replay", headers=headers)).status_code == 403
        matched = await client.post("/api/v1/match", content=b"t", headers=headers)
        assert matched.json() == {"matched": "t"}


async def test_a_forged_or_old_cookie_is_refused() -> None:
    clock = ManualClock(1_000_000.0)
    tokens = Tokens(TOKEN, READ_TOKEN)
    sessions = Sessions(tokens, clock)
    cookie = sessions.issue("read")
    opened = sessions.open(cookie)
    assert isinstance(opened, Principal)
    assert opened.kind == "read"
    body, _, signature = cookie.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raised = base64.urlsafe_b64encode(json.dumps({**payload, "k": "write"}).encode()).decode()
    assert sessions.open(f"{raised.rstrip('=')}.{signature}") is None
    assert sessions.open("garbage") is None
    assert sessions.open(f"{body}.") is None
    assert Sessions(Tokens("another-token-" + "x" * 10, READ_TOKEN), clock).open(cookie) is not None
    assert Sessions(Tokens(TOKEN, "another-read-" + "y" * 10), clock).open(cookie) is None
    clock.now += sessions.age + 1
    assert sessions.open(cookie) is None


async def test_failed_logins_are_limited_per_address(store: Store) -> None:
    clock = ManualClock(1_000_000.0)
    auth = Auth(Tokens(TOKEN), Failures(clock, limit=3, window=60.0), failed_delay=0.0)
    health = Health(store, lambda: None)
    async with (
        serving(health, Metrics(store).exposition, auth=auth, extra_routes=ROUTES) as web,
        _client(web) as client,
    ):
        for _ in range(2):
            assert (await client.post("/login", data={"token": "x" * 20})).status_code == 401
        wrong = await client.get("/api/v1/whoami", headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401  # wrong tokens count too
        blocked = await client.post("/login", data={"token": TOKEN})
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await client.get("/api/v1/whoami", headers=bearer)).status_code == 429
        assert (await client.get("/healthz")).status_code == 503  # probes are not held
        clock.now += 61
        assert (await client.post("/login", data={"token": TOKEN})).status_code == 303


async def test_a_login_form_is_small(web: Served) -> None:
    async with _client(web) as client:
        answer = await client.post("/login", data={"token": "x" * 10_000})
        assert answer.status_code == 413


def test_tokens_come_from_the_config_then_the_environment_then_are_made() -> None:
    assert Tokens.resolve("c" * 16, None, "e" * 16) == Tokens("c" * 16, None, "config")
    assert Tokens.resolve(None, "r" * 16, "e" * 16) == Tokens("e" * 16, "r" * 16, "environment")
    made = Tokens.resolve(None, None, None)
    assert made.source == "generated"
    assert len(made.write) >= 32
    assert made.write != Tokens.resolve(None, None, None).write
    assert made.kind_of(made.write) == "write"
    assert made.kind_of(made.write + "x") is None
    assert made.kind_of("") is None


async def test_the_console_may_draw_the_login_page(store: Store) -> None:
    def page(target: str, problem: str, status: int) -> Response:
        return PlainTextResponse(f"our login; next={target}; {problem}", status)

    auth = Auth(Tokens(TOKEN), failed_delay=0.0, login_page=page)
    health = Health(store, lambda: None)
    async with (
        serving(health, Metrics(store).exposition, auth=auth) as web,
        _client(web) as client,
    ):
        assert (await client.get("/login", params={"next": "/x"})).text == "our login; next=/x; "
        wrong = await client.post("/login", data={"token": "n" * 20})
        assert wrong.status_code == 401
        assert wrong.text == "our login; next=/; That is not the console's token."


async def test_a_login_form_must_arrive_in_time(store: Store) -> None:
    """Anyone may post to /login: a body that drips is cut off (408), not waited for."""
    auth = Auth(Tokens(TOKEN), failed_delay=0.0, login_timeout=0.2)
    async with serving(Health(store, lambda: None), Metrics(store).exposition, auth=auth) as web:
        head = b"POST /login HTTP/1.1\r\nContent-Length: 40\r\n"
        head += b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        assert (await web.ask(head + b"token=")).startswith(b"HTTP/1.1 408 ")
