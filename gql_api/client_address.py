"""The one client address (architecture decision 13): used for throttling, audit and logs.

It is the connection's peer. Behind a trusted proxy (`FORWARDED_ALLOW_IPS`), uvicorn's
`ProxyHeadersMiddleware` (added by `gql_api.app`) has already replaced the peer with the
forwarded address, so a header an untrusted client sets never reaches this function's answer.
"""

from __future__ import annotations

from starlette.types import Scope

UNKNOWN = "unknown"
MAX_LENGTH = 64  # an IPv6 address is at most 45 characters; anything longer is not an address


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    if not client or not client[0]:
        return UNKNOWN
    return str(client[0])[:MAX_LENGTH]
