"""Which webhook URLs may be called: http(s) to public addresses, unless allow-listed.

Checked when an endpoint is saved (`check_url`) and again on every connection
(`GuardedResolver`), so a name that later resolves to an internal address is refused too.
A refusal never says which address a name resolved to: that would let a tenant map the
internal network through the error messages.
"""

import asyncio
import errno
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from webhooks.resolving import ResolutionTimeout

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = frozenset({"http", "https"})
MAX_URL_LENGTH = 2048
DNS_TIMEOUT_SECONDS = 5.0
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Refused whole, whatever `ipaddress` thinks of them (its view differs between versions):
# IPv4 special-purpose, IPv4-compatible (`[::127.0.0.1]`), IPv4-translated
# (`[::ffff:0:127.0.0.1]`) and local-use NAT64 addresses, which embed IPv4 addresses a
# translator inside the network would reach.
REFUSED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "::/96",
        "::ffff:0:0:0/96",
        "64:ff9b:1::/48",
    )
)
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")


class UrlRefused(ValueError):
    pass


@dataclass(frozen=True)
class AllowList:
    """Host names, IP addresses or CIDR networks that may be private (tests, local runs)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> "AllowList":
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (normalize_host(e) for e in entries if e.strip()):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return normalize_host(host) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def normalize_host(host: str) -> str:
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(normalize_host(host))
    except ValueError:
        return None


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local (metadata), reserved, nor
    an IPv6 form of such an IPv4 address."""
    inner = _embedded_ipv4(address)
    return all(
        a.is_global
        and not a.is_multicast
        and not any(a.version == n.version and a in n for n in REFUSED_NETWORKS)
        for a in (address, inner)
    )


def address_allowed(address: IPAddress, allow: AllowList) -> bool:
    return is_public(address) or allow.allows_address(address)


def shape_error(url: str) -> str | None:
    """What is wrong with the URL itself, before any DNS lookup."""
    if len(url) > MAX_URL_LENGTH:
        return f"the URL is longer than {MAX_URL_LENGTH} characters"
    try:
        parsed = URL(url)
        parsed.port  # noqa: B018 - a bad port raises here
    except (ValueError, TypeError):
        return "the URL cannot be parsed"
    if parsed.scheme not in SCHEMES or not parsed.absolute:
        return "the URL must be absolute, with scheme http or https"
    if not parsed.host:
        return "the URL has no host"
    if _DOTTED_NUMBERS.match(parsed.host) and literal_address(parsed.host) is None:
        return "the host is not a canonical IP address"
    if parsed.user is not None or parsed.password is not None:
        return "credentials in the URL are not accepted; use a custom header"
    return None


@lru_cache(maxsize=4096)
def literal_refusal(url: str, allow: AllowList) -> str | None:
    """Why an IP-literal URL may not be called (host names are left to the resolver)."""
    host = URL(url).host or ""
    address = literal_address(host)
    if address is None or allow.allows_host(host) or address_allowed(address, allow):
        return None
    return f"{address} is not a public address"


async def check_url(url: str, allow: AllowList, resolver: AbstractResolver | None = None) -> None:
    """Raise UrlRefused unless `url` is http(s) and its host is public or allow-listed."""
    if error := shape_error(url):
        raise UrlRefused(error)
    parsed = URL(url)
    host = parsed.host or ""
    if allow.allows_host(host):
        return
    if error := literal_refusal(url, allow):
        raise UrlRefused(error)
    if literal_address(host) is None:
        await _check_resolved(host, parsed.port or 0, allow, resolver or DefaultResolver())


async def _check_resolved(
    host: str, port: int, allow: AllowList, resolver: AbstractResolver
) -> None:
    try:
        async with asyncio.timeout(DNS_TIMEOUT_SECONDS):
            results = await resolver.resolve(host, port, socket.AF_UNSPEC)
    except ResolutionTimeout as exc:
        raise UrlRefused(f"the host {host!r} could not be resolved in time ({exc})") from None
    except (OSError, TimeoutError):
        raise UrlRefused(f"the host {host!r} does not resolve") from None
    for result in results:
        if not address_allowed(ipaddress.ip_address(result["host"].split("%")[0]), allow):
            raise UrlRefused(f"the host {host!r} resolves to an address that is not public")


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default, but refuses names that point at internal addresses."""

    def __init__(self, allow: AllowList, inner: AbstractResolver | None = None) -> None:
        self._allow = allow
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow.allows_host(host):
            return results
        for result in results:
            address = ipaddress.ip_address(result["host"].split("%")[0])
            if not address_allowed(address, self._allow):
                message = f"{host} resolves to an address that is not public"
                raise OSError(errno.EACCES, message)
        return results

    async def close(self) -> None:
        await self._inner.close()
