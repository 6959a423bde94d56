"""Where a feed may steer monitor: redirects to other origins checked where they connect.

Two real servers on 127.0.0.1: the one the operator configured, and another one a redirect
points to. Both are loopback, so the second is exactly what an attacker's feed would reach for.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.config.settings import load_config
from monitor.errors import ConfigError, PermanentFeedError
from monitor.feeds.fetcher import (
    Fetched,
    FetchFailed,
    FetchLimits,
    Validators,
    fetch_feed,
    make_client,
)
from monitor.http.guard import AddressPolicy, RefusedAddress, networks, non_public, origin
from monitor.http.transport import allowed_address
from tests.support.servers import LocalServer

RSS = {"Content-Type": "application/rss+xml"}
BODY = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


@pytest.fixture
def inside() -> Iterator[LocalServer]:
    """A server on the operator's own network that no feed was configured to reach."""
    with LocalServer(poll_interval=0.02) as local:
        local.static("/secret", BODY, headers=RSS)
        yield local


def policy(limits: FetchLimits, **options: object) -> FetchLimits:
    return dataclasses.replace(limits, address_policy=AddressPolicy(**options))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 is the IPv4 address
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata services
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "not public"),  # carrier-grade NAT
        ("240.0.0.1", "reserved"),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8: IPv6-only hosts reach IPv4 so
        ("64:ff9b::7f00:1", "loopback"),  # and of 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("2002:808:808::", None),
    ],
)
def test_non_public_addresses(address: str, kind: str | None) -> None:
    assert non_public(ipaddress.ip_address(address)) == kind


def test_the_policy_allows_what_the_operator_allowed() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    assert AddressPolicy().refusal(loopback) == "loopback"
    assert AddressPolicy(allow_private=True).refusal(loopback) is None
    allowed = AddressPolicy(allow_networks=networks(["127.0.0.0/8"]))
    assert allowed.refusal(loopback) is None
    assert allowed.refusal(ipaddress.ip_address("10.0.0.1")) == "private"
    mapped = AddressPolicy(allow_networks=networks(["10.0.0.0/8"]))
    assert mapped.refusal(ipaddress.ip_address("::ffff:10.0.0.5")) is None  # the same address
    with pytest.raises(ValueError, match="not a network"):
        networks(["not a network"])


def test_origins_make_default_ports_explicit() -> None:
    assert origin("http://Example.org/feed") == origin("http://example.org:80/other")
    assert origin("https://example.org/") != origin("http://example.org/")
    assert origin("http://127.0.0.1:8080/") != origin("http://127.0.0.1:8081/")


async def test_a_name_is_checked_by_what_it_resolves_to() -> None:
    # `localhost` is a name, not a literal: refused for the address it resolves to, which is
    # then the address connected to (so a second answer of the resolver cannot change it)
    with pytest.raises(RefusedAddress) as raised:
        await allowed_address("localhost", 80, AddressPolicy())
    assert "localhost (" in str(raised.value)
    assert "loopback" in str(raised.value)
    assert await allowed_address("localhost", 80, AddressPolicy(allow_private=True)) in (
        "127.0.0.1",
        "::1",
    )


async def test_a_redirect_to_another_internal_server_is_refused(
    server: LocalServer, inside: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/feed", b"", status=302, headers={"Location": inside.url("/secret")})
    result = await fetch_feed(client, server.url("/feed"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert isinstance(result.error, PermanentFeedError)
    assert str(result.error).startswith("refused to connect to 127.0.0.1: a loopback address")
    assert "fetch.allow_private" in str(result.error)
    assert inside.requests == []  # not one byte reached it


async def test_a_redirect_by_name_is_refused_for_its_address(
    server: LocalServer, inside: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    target = f"http://localhost:{inside.port}/secret"
    server.static("/feed", b"", status=307, headers={"Location": target})
    result = await fetch_feed(client, server.url("/feed"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert "refused to connect to localhost (" in str(result.error)
    assert inside.requests == []


async def test_a_refused_permanent_redirect_does_not_move_the_feed(
    server: LocalServer, inside: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    # else the next poll would start at the internal address, as if the operator had written it
    server.static("/feed", b"", status=301, headers={"Location": inside.url("/secret")})
    result = await fetch_feed(client, server.url("/feed"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert result.permanent_redirect is None


async def test_a_moved_feed_is_still_checked_against_the_configured_origin(
    server: LocalServer, inside: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    # a stored move that points elsewhere is not the operator's choice either
    result = await fetch_feed(
        client, inside.url("/secret"), Validators(), limits, configured=server.url("/feed")
    )
    assert isinstance(result, FetchFailed)
    assert "loopback" in str(result.error)
    assert inside.requests == []


@pytest.mark.parametrize(
    "options",
    [{"allow_private": True}, {"allow_networks": networks(["127.0.0.0/8", "::1/128"])}],
)
async def test_an_operator_can_allow_internal_redirects(
    server: LocalServer,
    inside: LocalServer,
    client: httpx.AsyncClient,
    limits: FetchLimits,
    options: dict[str, object],
) -> None:
    server.static("/feed", b"", status=301, headers={"Location": inside.url("/secret")})
    result = await fetch_feed(client, server.url("/feed"), Validators(), policy(limits, **options))
    assert isinstance(result, Fetched)
    assert result.body == BODY
    assert result.permanent_redirect == inside.url("/secret")
    assert len(inside.requests_to("/secret")) == 1


async def test_the_configured_server_and_redirects_within_it_are_never_restricted(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/feed", b"", status=301, headers={"Location": "/new"})
    server.static("/new", BODY, headers=RSS)
    result = await fetch_feed(client, server.url("/feed"), Validators(), limits)
    assert isinstance(result, Fetched)
    assert result.permanent_redirect == server.url("/new")


RULE = """\
version: 1
rules:
  - id: havana
    title: Havana
    match: Havana
"""


def _config(tmp_path: Path, fetch: str) -> Path:
    (tmp_path / "monitor.yaml").write_text(
        f"version: 1\nrules: rules.yaml\nfeeds: []\nfetch:\n{fetch}", encoding="utf-8"
    )
    (tmp_path / "rules.yaml").write_text(RULE, encoding="utf-8")
    return tmp_path


def test_the_config_carries_the_policy(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "  allow_networks: [10.20.0.0/16, 'fd00::/8']\n"), {})
    policy = config.settings.fetch.limits().address_policy
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("10.21.0.1")) == "private"
    assert (
        load_config(_config(tmp_path, "  allow_private: true\n"), {})
        .settings.fetch.limits()
        .address_policy.refusal(ipaddress.ip_address("127.0.0.1"))
        is None
    )


def test_a_bad_network_names_file_line_and_column(tmp_path: Path) -> None:
    directory = _config(tmp_path, "  allow_networks:\n    - 10.0.0.0/8\n    - intranet\n")
    with pytest.raises(ConfigError) as caught:
        load_config(directory, {})
    problems = [str(problem).replace(str(tmp_path) + "/", "") for problem in caught.value.problems]
    assert any(
        p.startswith("monitor.yaml:7:7: fetch.allow_networks.1")
        and "'intranet' is not a network" in p
        for p in problems
    ), problems


async def test_feed_headers_go_to_the_configured_origin_only(
    server: LocalServer, inside: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    # the token must not follow a redirect to a host the operator did not name
    server.static("/feed", b"", status=302, headers={"Location": "/here"})
    server.static("/here", b"", status=302, headers={"Location": inside.url("/secret")})
    token = {"Authorization": "Bearer s3cr3t", "X-Api-Key": "k3y"}
    open_limits = policy(limits, allow_private=True)
    result = await fetch_feed(client, server.url("/feed"), Validators(), open_limits, headers=token)
    assert isinstance(result, Fetched)
    for request in (*server.requests_to("/feed"), *server.requests_to("/here")):
        assert request.headers["authorization"] == "Bearer s3cr3t"
        assert request.headers["x-api-key"] == "k3y"
    (elsewhere,) = inside.requests_to("/secret")
    assert "authorization" not in elsewhere.headers
    assert "x-api-key" not in elsewhere.headers


def test_feed_headers_are_checked_and_kept_secret(tmp_path: Path) -> None:
    feeds = (
        "feeds:\n  - url: https://feeds.example/private.xml\n"
        "    headers: {Authorization: 'Bearer ${FEED_TOKEN}'}\n"
    )
    (tmp_path / "monitor.yaml").write_text(f"version: 1\nrules: rules.yaml\n{feeds}")
    (tmp_path / "rules.yaml").write_text(RULE, encoding="utf-8")
    config = load_config(tmp_path, {"FEED_TOKEN": "t0k3n"})
    (feed,) = config.settings.feeds
    assert feed.request_headers() == {"Authorization": "Bearer t0k3n"}
    assert "t0k3n" not in repr(feed)
    assert "t0k3n" not in config.settings.model_dump_json()


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ("{'Bad Name': x}", "'Bad Name' is not an HTTP header name"),
        ("{If-None-Match: x}", "monitor sets If-None-Match itself"),
        ('{X-Token: "a\\r\\nHost: evil"}', "a header value may not contain line breaks"),
    ],
)
def test_bad_feed_headers_name_file_and_line(tmp_path: Path, headers: str, problem: str) -> None:
    feeds = f"feeds:\n  - url: https://feeds.example/f.xml\n    headers: {headers}\n"
    (tmp_path / "monitor.yaml").write_text(f"version: 1\nrules: rules.yaml\n{feeds}")
    (tmp_path / "rules.yaml").write_text(RULE, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    problems = [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]
    assert any(p.startswith("monitor.yaml:5:") and problem in p for p in problems), problems


async def test_a_steered_request_to_a_name_that_does_not_resolve_fails_as_a_connect_error(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/feed", b"", status=302, headers={"Location": "http://no-such-host.invalid/"})
    result = await fetch_feed(client, server.url("/feed"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert str(result.error).startswith("host not found")


async def test_a_kept_alive_connection_to_an_internal_origin_carries_no_steered_request(
    server: LocalServer, inside: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    # the operator polls `inside` (an internal feed); its connection stays in the pool
    first = await fetch_feed(client, inside.url("/secret"), Validators(), limits)
    assert isinstance(first, Fetched)
    # a stranger's feed redirects there: it must not ride that connection unchecked
    server.static("/feed", b"", status=302, headers={"Location": inside.url("/secret")})
    result = await fetch_feed(client, server.url("/feed"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert "a loopback address" in str(result.error)
    assert len(inside.requests_to("/secret")) == 1  # the operator's own poll only


async def test_no_proxy_alone_keeps_the_checks(
    server: LocalServer, inside: LocalServer, limits: FetchLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")  # many images set only this
    server.static("/feed", b"", status=302, headers={"Location": inside.url("/secret")})
    async with make_client(limits=limits) as client:
        result = await fetch_feed(client, server.url("/feed"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert "a loopback address" in str(result.error)
    assert inside.requests == []


async def test_a_move_to_an_address_that_fails_is_not_remembered(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    # else every later poll would start at the failing address (and without the feed's headers)
    server.static("/feed", b"", status=301, headers={"Location": "/new"})
    server.static("/new", b"no", status=401)
    result = await fetch_feed(client, server.url("/feed"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert result.permanent_redirect is None


def test_an_https_upgrade_of_the_configured_host_is_the_operator_s_origin() -> None:
    from monitor.feeds.fetcher import _Trusted  # noqa: PLC0415 - the rule itself, table-tested

    trusted = _Trusted(origin("http://feeds.example/rss"), {})
    assert trusted.covers("https://feeds.example/rss")  # headers follow, no address check
    assert trusted.covers("http://feeds.example:80/other")
    assert not trusted.covers("https://feeds.example:8443/rss")
    assert not trusted.covers("https://elsewhere.example/rss")
    assert not _Trusted(origin("https://feeds.example/"), {}).covers("http://feeds.example/")
