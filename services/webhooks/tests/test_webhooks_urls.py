"""Webhook URLs: http(s) only, public addresses only unless allow-listed."""

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from webhooks.urls import (
    AllowList,
    GuardedResolver,
    UrlRefused,
    check_url,
    is_public,
    literal_refusal,
    shape_error,
)

NOBODY = AllowList()
LOCAL = AllowList.parse(["127.0.0.1", "localhost", "::1"])


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "example.com/hook",
        "/hook",
        "http://",
        "http://u:p@example.com/",
        "http://example.com:99999/",
        "http://127.1/",
        "javascript:alert(1)",
        "http://x/" + "a" * 3000,
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    assert shape_error(url) is not None


@pytest.mark.parametrize("url", ["https://example.com/hooks?x=1", "http://93.184.216.34:8080/"])
def test_well_formed_urls_pass_the_shape_check(url: str) -> None:
    assert shape_error(url) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "64:ff9b::a00:1",
        "224.0.0.1",
        "2002:7f00:1::1",
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_internet_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hook", "http://[::1]/", "http://169.254.169.254/latest"]
)
async def test_internal_literals_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused):
        await check_url(url, NOBODY)
    assert literal_refusal(url, NOBODY) is not None


async def test_allow_list_admits_local_hosts() -> None:
    await check_url("http://127.0.0.1:9000/hook", LOCAL)
    await check_url("http://[::1]:9000/hook", LOCAL)
    await check_url("http://localhost:9000/hook", LOCAL)
    assert literal_refusal("http://127.0.0.1:9000/", LOCAL) is None


async def test_names_resolving_to_loopback_are_refused() -> None:
    with pytest.raises(UrlRefused, match="not public"):
        await check_url("http://localhost:9000/hook", NOBODY)


async def test_unresolvable_hosts_are_refused() -> None:
    with pytest.raises(UrlRefused, match="does not resolve"):
        await check_url("http://no-such-host.invalid/hook", NOBODY)


def test_allow_list_takes_networks() -> None:
    allow = AllowList.parse(["10.0.0.0/8", " Hooks.Internal. ", ""])
    assert allow.allows_address(ipaddress.ip_address("10.9.8.7"))
    assert not allow.allows_address(ipaddress.ip_address("192.168.0.1"))
    assert allow.allows_host("hooks.internal")


class FixedResolver(AbstractResolver):
    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host=self.address, port=port, family=family, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


async def test_resolver_refuses_names_that_turn_internal() -> None:
    guarded = GuardedResolver(NOBODY, FixedResolver("10.0.0.5"))
    with pytest.raises(OSError, match="not public"):
        await guarded.resolve("rebinding.example", 443)


async def test_resolver_passes_public_and_allow_listed_names() -> None:
    assert await GuardedResolver(NOBODY, FixedResolver("93.184.216.34")).resolve("a.example", 80)
    assert await GuardedResolver(LOCAL, FixedResolver("127.0.0.1")).resolve("localhost", 80)


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",
        "::10.0.0.1",
        "::8.8.8.8",  # IPv4-compatible, any
        "::ffff:0:127.0.0.1",
        "::ffff:0:8.8.8.8",  # IPv4-translated, any
        "64:ff9b::127.0.0.1",
        "64:ff9b::10.0.0.1",
        "64:ff9b::169.254.169.254",  # NAT64
        "64:ff9b:1::a00:1",
        "64:ff9b:1:7f00:1::",
        "64:ff9b:1::8.8.8.8",  # local-use NAT64
        "192.0.0.1",
        "192.0.0.8",
        "192.0.0.9",
        "192.0.0.10",
        "192.0.0.170",
        "192.0.0.255",
        "198.18.0.1",
        "100.127.255.254",
    ],
)
def test_ipv6_forms_of_internal_and_special_purpose_addresses_are_not_public(
    address: str,
) -> None:
    assert not is_public(ipaddress.ip_address(address))


def test_nat64_of_a_public_address_stays_public() -> None:
    assert is_public(ipaddress.ip_address("64:ff9b::8.8.8.8"))


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/hook",
        "http://[::ffff:0:127.0.0.1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[64:ff9b::7f00:1]:8080/",
        "http://[64:ff9b:1::a00:1]/",
        "http://192.0.0.170/",
        "http://[::ffff:7f00:1]/",
        "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    ],
)
async def test_ipv6_literals_embedding_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused):
        await check_url(url, NOBODY)
    assert literal_refusal(url, NOBODY) is not None


async def test_a_name_resolving_internal_is_refused_without_saying_where() -> None:
    with pytest.raises(UrlRefused) as refused:
        await check_url("http://intranet.example/hook", NOBODY, FixedResolver("10.1.2.3"))
    assert "10.1.2.3" not in str(refused.value)
    assert (
        str(refused.value)
        == "the host 'intranet.example' resolves to an address that is not public"
    )
    with pytest.raises(OSError) as at_send:
        await GuardedResolver(NOBODY, FixedResolver("10.1.2.3")).resolve("intranet.example", 80)
    assert "10.1.2.3" not in str(at_send.value)
    assert "intranet.example resolves to an address that is not public" in str(at_send.value)
