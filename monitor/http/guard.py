"""Which addresses a request that a stranger steered may reach.

The operator chooses feed and webhook URLs; a feed's server chooses where its redirects lead and
which WebSub hub it names. Such *steered* requests may not reach the operator's own networks:
loopback, private ranges, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
multicast, reserved and unspecified addresses, in IPv4 and IPv6 (IPv4-mapped IPv6 included),
unless the operator allows them (`fetch.allow_private`, `fetch.allow_networks`).

The check is made on the address a connection is about to be opened to, after name resolution
and by the transport that opens it (monitor.http.transport), which then connects to that very
address: a name that resolves to a public address when checked and to 127.0.0.1 a moment later
(DNS rebinding) cannot slip through, because nothing resolves it again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Origin = tuple[str, str, int | None]  # scheme, host, port
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # an IPv6-only host's way to IPv4 (RFC 6052)
EXTENSION = "monitor.address_policy"  # the httpx request extension that carries a policy

# The first kind that applies names the refusal. Whatever else is not global (carrier-grade NAT,
# documentation and benchmark ranges) is refused as "not public": nobody serves feeds there.
_KINDS: tuple[tuple[str, str], ...] = (
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_unspecified", "unspecified"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Where steered requests may go: public addresses, and what the operator allowed."""

    allow_private: bool = False
    allow_networks: tuple[Network, ...] = ()

    def refusal(self, address: Address) -> str | None:
        """Why `address` may not be reached (`"loopback"`, `"private"`…), or None if it may."""
        address = embedded(address)
        if self.allow_private or any(address in network for network in self.allow_networks):
            return None
        return non_public(address)


def non_public(address: Address) -> str | None:
    """The kind of a non-public address, or None for a global unicast one."""
    address = embedded(address)
    for attribute, kind in _KINDS:
        if getattr(address, attribute):
            return kind
    if not address.is_global:  # carrier-grade NAT (100.64.0.0/10) and the like
        return "not public"
    return None


def embedded(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, NAT64's 64:ff9b::/96, 6to4), or it."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address


def networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses; ValueError says which."""
    return tuple(ipaddress.ip_network(text.strip(), strict=False) for text in texts)


def origin(url: str | httpx.URL) -> Origin:
    """(scheme, host, port) with the scheme's default port made explicit."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host.lower(), port


def steered(policy: AddressPolicy) -> dict[str, object]:
    """Request extensions that make the transport check where this request connects."""
    return {EXTENSION: policy}


class RefusedAddress(httpcore.ConnectError):
    """A steered request would have connected to an address the policy refuses (the transport
    raises it where it connects; callers see an httpx.ConnectError caused by it)."""

    def __init__(self, host: str, address: str, kind: str) -> None:
        shown = host if host == address else f"{host} ({address})"
        super().__init__(
            f"refused to connect to {shown}: a {kind} address, which a feed or hub may not "
            "steer monitor to (fetch.allow_private or fetch.allow_networks allow it)"
        )
        self.host = host
        self.address = address
        self.kind = kind
