"""Where webhooks may go: public addresses only, unless a network is explicitly allowed.

The host is resolved and every address it resolves to is checked, on save and again at send
time, where the connection is then pinned to the checked address (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from gql_api.i18n import SOURCE_LOCALE, Message, _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

URL_MAX_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 5.0
ALLOWED_NETWORKS_SETTING = "WEBHOOK_ALLOWED_NETWORKS"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
UNPRINTABLE_MESSAGE = _(
    "The URL must not contain spaces, control characters or other invisible characters; "
    "percent-encode them (a space is %20)."
)
_NEVER_RESOLVE = frozenset({"invalid", "test", "example", "local", "onion"})


class UrlRefused(ValueError):
    """The URL may not be used; `message` is a sentence for the user (a refused save), and
    `str()` the same in English (what a refused send records)."""

    def __init__(self, message: Message, *, forbidden: bool) -> None:
        super().__init__(message.render(SOURCE_LOCALE))
        self.message = message
        self.forbidden = forbidden  # True: a blocked address or scheme; False: malformed


@dataclass(frozen=True)
class Target:
    url: str
    parts: SplitResult
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def parse_networks(values: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> bool:
    """Only globally routable unicast addresses (IPv4 hidden in IPv6 is unwrapped first)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_public(embedded, allowed)
    if any(address.version == net.version and address in net for net in allowed):
        return True
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


def check_shape(url: str, *, require_https: bool) -> tuple[SplitResult, str, int]:
    """Scheme, length, credentials and host of a URL, without resolving it."""
    if len(url) > URL_MAX_LENGTH:
        raise UrlRefused(
            _("The URL must be at most {max_length} characters.", max_length=URL_MAX_LENGTH),
            forbidden=False,
        )
    # Controls (DEL and C1 too), format characters (zero-width, bidi), separators other than
    # the space, and the space itself: no URL holds them unencoded, and httpx cannot send one.
    if not url.isprintable() or " " in url:
        raise UrlRefused(UNPRINTABLE_MESSAGE, forbidden=False)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused(_("The URL is not valid."), forbidden=False) from None
    if parts.scheme not in {"http", "https"}:
        raise UrlRefused(_("Only http and https URLs are allowed."), forbidden=True)
    if require_https and parts.scheme != "https":
        raise UrlRefused(_("LIVE mode requires an https URL."), forbidden=True)
    if parts.username is not None or parts.password is not None:
        raise UrlRefused(_("The URL must not contain credentials."), forbidden=True)
    host = parts.hostname
    if not host:
        raise UrlRefused(_("The URL has no valid host."), forbidden=False)
    try:  # internationalised names travel as IDNA (punycode) in DNS, Host and SNI
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UrlRefused(_("The URL's host name is not valid."), forbidden=False) from None
    return parts, host, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return (literal,)
    name = host.rstrip(".").lower()
    if name.rsplit(".", 1)[-1] in _NEVER_RESOLVE:  # RFC 6761/6762 special-use names
        raise UrlRefused(_unresolved(host), forbidden=False)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        raise UrlRefused(_unresolved(host), forbidden=False) from None
    addresses = tuple(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise UrlRefused(_unresolved(host), forbidden=False)
    return addresses


def _unresolved(host: str) -> Message:
    return _("The host {host} does not resolve.", host=repr(host))


async def check_url(url: str, *, require_https: bool, allowed: Sequence[IPNetwork]) -> Target:
    """A URL whose every address is public (or explicitly allowed)."""
    parts, host, port = check_shape(url, require_https=require_https)
    addresses = await resolve(host, port)
    blocked = [a for a in addresses if not is_public(a, allowed)]
    if blocked:
        raise UrlRefused(
            _(
                "The host {host} resolves to a non-public address ({address}); webhooks go "
                "only to public addresses. Private ranges can be opened for development with "
                "the {setting} setting.",
                host=repr(host),
                address=str(blocked[0]),
                setting=ALLOWED_NETWORKS_SETTING,
            ),
            forbidden=True,
        )
    return Target(url=url, parts=parts, host=host, port=port, addresses=addresses)
