"""The one client address (architecture decision 13): used for throttling, audit and logs.

It is the connection's peer. Behind a trusted proxy (`FORWARDED_ALLOW_IPS`), uvicorn's
`ProxyHeadersMiddleware` (added by `gql_api.app`) has already replaced the peer with the
forwarded address, so a header an untrusted client sets never reaches this function's answer.
"""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

UNKNOWN = "unknown"
MAX_LENGTH = 64  # an IPv6 address is at most 45 characters; anything longer is not an address
IPV6_PREFIX = 64  # one subscriber's network: it holds 2**64 addresses


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    if not client or not client[0]:
        return UNKNOWN
    return str(client[0])[:MAX_LENGTH]


def throttling_key(address: str) -> str:
    """What throttling counts per: an IPv6 address's /64 network (`2001:db8:1:2::/64`), since
    whoever has one address of it has them all; an IPv4-mapped IPv6 address's IPv4 address;
    anything else (IPv4, `unknown`) as it is. Logs and audit name the address itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    network = int(ip) >> (128 - IPV6_PREFIX) << (128 - IPV6_PREFIX)
    return str(ipaddress.IPv6Network((network, IPV6_PREFIX)))
