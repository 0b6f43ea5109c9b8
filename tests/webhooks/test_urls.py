"""Webhook URL checks: every address class outside the public internet is refused unless the
settings allow its class (metadata, unspecified, multicast and reserved: never), whatever the
spelling (a literal, a name, IPv4 mapped into IPv6); plain http only to loopback when allowed."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offline_service.errors import Code
from offline_service.webhooks.urls import URLPolicy, URLRefused, address_class, check_url

STRICT = URLPolicy(resolve=lambda host, port: [])
PRIVATE_OK = URLPolicy(allow_private=True)
LOOPBACK_OK = URLPolicy(allow_loopback=True)


def _resolving(*addresses: str, **kw: bool) -> URLPolicy:
    return URLPolicy(resolve=lambda host, port: list(addresses), **kw)


def _reason(url: str, policy: URLPolicy = STRICT) -> str:
    with pytest.raises(URLRefused) as refused:
        check_url(url, policy)
    assert refused.value.code is Code.WEBHOOK_URL_REFUSED
    return refused.value.reason


def _v4_in(network: str) -> st.SearchStrategy[str]:
    net = ipaddress.ip_network(network)
    return st.integers(0, net.num_addresses - 1).map(lambda i: str(net[i]))


@given(_v4_in("10.0.0.0/8") | _v4_in("172.16.0.0/12") | _v4_in("192.168.0.0/16") | _v4_in("100.64.0.0/10"))
def test_private_ipv4_is_refused_unless_allowed(address: str) -> None:
    assert _reason(f"https://{address}/hook") == "private"
    assert _reason("https://hooks.example.com/", _resolving(address)) == "private"
    assert check_url(f"https://{address}/hook", PRIVATE_OK).address == address


@given(_v4_in("127.0.0.0/8"))
def test_loopback_is_refused_unless_allowed_and_http_only_there(address: str) -> None:
    assert _reason(f"https://{address}/") == "loopback"
    assert _reason(f"https://[::ffff:{address}]/") == "loopback"  # mapped into IPv6: the same
    assert check_url(f"http://{address}:8080/x?y=1", LOOPBACK_OK).path == "/x?y=1"
    assert _reason(f"http://{address}/", PRIVATE_OK) == "scheme"  # http needs the loopback switch


@given(_v4_in("169.254.0.0/16").filter(lambda a: a != "169.254.169.254"))
def test_link_local_is_refused_unless_private_targets_are_allowed(address: str) -> None:
    assert _reason(f"https://{address}/") == "link_local"
    assert check_url(f"https://{address}/", PRIVATE_OK).address == address


@given(_v4_in("224.0.0.0/4"))
def test_multicast_is_never_allowed(address: str) -> None:
    assert _reason(f"https://{address}/", PRIVATE_OK) == "multicast"


@given(_v4_in("240.0.0.0/4"))
def test_reserved_is_never_allowed(address: str) -> None:
    assert _reason(f"https://{address}/", PRIVATE_OK) == "reserved"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("ff02::1", "multicast"),
    ],
)
def test_metadata_unspecified_and_multicast_are_refused_whatever_the_settings(
    address: str, reason: str
) -> None:
    for policy in (STRICT, PRIVATE_OK, LOOPBACK_OK, URLPolicy(allow_private=True, allow_loopback=True)):
        literal = f"[{address}]" if ":" in address else address
        assert _reason(f"https://{literal}/", policy) == reason
        assert _reason("https://hooks.example.com/", _resolving(address, allow_private=True)) == reason


@given(st.integers(0, 2**32 - 1).map(lambda i: ipaddress.IPv4Address(i)))
def test_an_address_is_allowed_by_default_only_if_global(address: ipaddress.IPv4Address) -> None:
    kind = address_class(address)
    assert (kind == "global") == (address.is_global and not address.is_multicast and not address.is_reserved)
    if kind != "global":
        assert _reason(f"https://{address}/") == kind


def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    assert _reason("https://hooks.example.com/", _resolving("93.184.215.14", "10.0.0.5")) == "private"
    target = check_url("https://hooks.example.com:8443/in", _resolving("93.184.215.14", "2606:4700::1"))
    assert (target.host, target.port, target.path, target.address) == (
        "hooks.example.com",
        8443,
        "/in",
        "93.184.215.14",
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/", "scheme"),
        ("ftp://hooks.example.com/", "scheme"),
        ("hooks.example.com/x", "scheme"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https:///path", "malformed"),
        ("https://hooks.example.com/#frag", "malformed"),
        ("https://hooks.example.com:99999/", "malformed"),
        ("https://hooks.example.com/\x00", "malformed"),
        ("https://hooks.example.com/ x", "malformed"),
        ("https://" + "a" * 2000 + ".com/", "malformed"),
        ("https://nowhere.invalid/", "unresolvable"),
    ],
)
def test_malformed_urls_are_refused_with_their_reason(url: str, reason: str) -> None:
    assert _reason(url, _resolving("93.184.215.14") if "nowhere" not in url else STRICT) == reason


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        check_url(b"https://hooks.example.com/", STRICT)  # type: ignore[arg-type]
