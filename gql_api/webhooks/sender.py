"""Sending one webhook: pinned to a checked address, no redirects, bounded time and size.

A worker keeps its connections alive between attempts (`Connections`): one pool per checked
address and host name, so a kept connection only ever carries requests whose address check
chose that very address, and over TLS only requests for the host name its certificate was
verified for.

Requests go straight to httpx's transport (the connection pool), not through an
`httpx.AsyncClient`: a webhook needs none of what a client adds around it (no redirects are
followed, no cookie is kept or sent, no auth, no event hooks, no proxy from the environment),
and that layer cost a worker about a tenth of its CPU per attempt. What the transport does
not do cannot happen: a receiver's Set-Cookie is never stored, a redirect never followed.

The transport's connections run over `_Backend`'s streams (httpcore's own anyio streams,
wrapped): a request's head and body leave in one write, and a kept connection's liveness
check (made on every request) reads a socket kept at hand; see `_Stream`.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import select
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import certifi
import httpcore
import httpx

from gql_api.webhooks.addresses import IPNetwork, Target, UrlRefused, check_url

USER_AGENT = "integration-api-webhooks/1.0"
DEADLINE_MARGIN_SECONDS = 2.0
logger = logging.getLogger("gql_api.webhooks")


@dataclass(frozen=True)
class Limits:
    connect_seconds: float
    read_seconds: float
    response_max_bytes: int


@dataclass(frozen=True)
class DeliveryResult:
    request_headers: list[tuple[str, str]]
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int
    # Retry-After of a 429 or 503 answer, in seconds (the retry schedule bounds it).
    retry_after_seconds: float | None = None

    @property
    def succeeded(self) -> bool:
        """PortOne's rule: only HTTP 200 counts as received; any other answer is retried."""
        return self.status_code == 200 and self.error is None


def _pinned_url(target: Target) -> str:
    address = target.addresses[0]
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    path = target.parts.path or "/"
    query = f"?{target.parts.query}" if target.parts.query else ""
    return f"{target.parts.scheme}://{host}:{target.port}{path}{query}"


def _host_header(target: Target) -> str:
    default = 443 if target.parts.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


# What a kept connection was opened for: scheme, the checked address, port, and the host name
# (the TLS server name verified, and the Host header).
PoolKey = tuple[str, str, int, str]
MAX_POOLS = 64  # receivers whose connections one worker keeps at once
KEEPALIVE_SECONDS = 5.0  # an idle connection is closed after this (httpx's default)


def _pool_key(target: Target) -> PoolKey:
    return (target.parts.scheme, str(target.addresses[0]), target.port, target.host)


class _Stream(httpcore.AsyncNetworkStream):
    """A connection's stream (httpcore's, wrapped) that sends a request's head with the first
    write of its body, in one write to the socket, and answers the connection pool's liveness
    check ("is_readable", asked of every kept connection on every request) from the socket
    itself, kept at hand.

    httpcore writes the head and then the body (each a system call, with a timeout scope of
    anyio's), and asks anyio for the socket by building every attribute its stream offers:
    together about a tenth of a worker's CPU per attempt. The head held back is always sent
    before anything is read, and an error writing it is raised by the write that sends it
    (httpcore's own handling of a receiver that closed early, to read its answer, still
    applies: it covers the head and the body alike). Whatever this stream does not change
    goes to httpcore's stream as it is (TLS, timeouts, the errors it maps)."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")
        self._held = b""  # a request's head, sent with what is written next
        self._held_timeout: float | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        if not self._held:
            self._held, self._held_timeout = buffer, timeout
            return
        held, self._held = self._held, b""
        await self._inner.write(held + buffer, timeout=timeout)

    async def _send_held(self) -> None:
        if self._held:
            held, self._held = self._held, b""
            await self._inner.write(held, timeout=self._held_timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        await self._send_held()
        return await self._inner.read(max_bytes, timeout=timeout)

    async def aclose(self) -> None:
        self._held = b""
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> httpcore.AsyncNetworkStream:
        await self._send_held()
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        if info == "is_readable":
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: socket.socket | None) -> bool:
    """Whether reading `sock` would return at once (data, or the end a receiver's close left):
    an idle kept connection that is readable was closed by the receiver. No socket (closed):
    readable, as httpcore has it."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's own network backend (anyio's on asyncio), its streams wrapped in `_Stream`."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _transport(max_connections: int | None) -> httpx.AsyncHTTPTransport:
    """A pool of connections; it keeps no cookies (a kept pool serves every store sending to
    that host: one merchant's receiver must not hand a cookie to another merchant's webhooks)
    and follows no redirect. Its connections run over `_Backend`'s streams: httpx takes no
    network backend, so the pool it made is replaced by the same pool with that backend
    (the arguments httpx passes it, less those a webhook never uses: proxies, HTTP/2, UDS)."""
    transport = httpx.AsyncHTTPTransport(verify=_tls_context(), trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_tls_context(),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
        http1=True,
        http2=False,
        network_backend=_Backend(),
    )
    return transport


class Connections:
    """Kept-alive connections to receivers, one httpx transport (a connection pool) per
    `PoolKey`, at most MAX_POOLS (the least recently used idle one is closed first).

    The pool is chosen by the address the check just approved, so a request never goes over
    a connection opened to another address (no DNS rebinding through a kept connection), and
    by the host name, so a TLS connection verified for one name never carries a request for
    another name served at the same address. `per_pool` bounds the connections of one pool
    (the worker's per-host limit). Opening a connection for every attempt cost a worker a TCP
    (and TLS) handshake and a new pool each time."""

    def __init__(self, *, per_pool: int, max_pools: int = MAX_POOLS) -> None:
        self._per_pool = per_pool
        self._max_pools = max_pools
        self._clients: OrderedDict[PoolKey, httpx.AsyncHTTPTransport] = OrderedDict()
        self._in_use: dict[PoolKey, int] = {}

    @asynccontextmanager
    async def client(self, target: Target) -> AsyncIterator[httpx.AsyncHTTPTransport]:
        key = _pool_key(target)
        found = self._clients.get(key)
        if found is None:
            await self._make_room()
            # Looked up again: another request for this key may have made its pool while
            # this one waited for an idle pool to close. Made twice, one pool would never
            # be closed, and the key would have twice its bound of connections.
            found = self._clients.get(key)
            if found is None:
                found = self._clients[key] = _transport(self._per_pool)
        self._clients.move_to_end(key)
        self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            yield found
        finally:
            self._in_use[key] -= 1
            if not self._in_use[key]:
                del self._in_use[key]

    async def _make_room(self) -> None:
        while len(self._clients) >= self._max_pools:
            idle = next((k for k in self._clients if k not in self._in_use), None)
            if idle is None:
                return  # every pool is busy: go over the bound rather than break a request
            await self._clients.pop(idle).aclose()

    async def aclose(self) -> None:
        """Close every kept connection (the worker stops, or ends a round)."""
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()


async def check_and_send(
    url: str,
    *,
    require_https: bool,
    headers: Sequence[tuple[str, str]],
    body: str,
    allowed: Sequence[IPNetwork],
    limits: Limits,
    connections: Connections | None = None,
) -> DeliveryResult:
    """Check the URL's address again (it may resolve elsewhere now), then send, pinned to it;
    a refused address is a result ("Not sent: …"), like any other failure. With
    `connections`, over a kept connection to that address; else over a new one."""
    try:
        target = await check_url(url, require_https=require_https, allowed=allowed)
    except UrlRefused as refused:
        return DeliveryResult(
            request_headers=list(headers),
            status_code=None,
            response_body=None,
            error=f"Not sent: {refused}",
            duration_ms=0,
        )
    if connections is None:
        return await send(target, headers=headers, body=body, limits=limits)
    async with connections.client(target) as transport:
        return await send(target, headers=headers, body=body, limits=limits, transport=transport)


@cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs tens of milliseconds
    of CPU on the event loop, too much to repeat for every attempt."""
    return ssl.create_default_context(cafile=certifi.where())


async def send(
    target: Target,
    *,
    headers: Sequence[tuple[str, str]],
    body: str,
    limits: Limits,
    transport: httpx.AsyncHTTPTransport | None = None,
) -> DeliveryResult:
    """POST `body` (over `transport`'s kept connections, else a pool of its own); whatever
    happens comes back as a result, never as an exception."""
    if transport is None:
        async with _transport(None) as own:
            return await _post(target, own, headers=headers, body=body, limits=limits)
    return await _post(target, transport, headers=headers, body=body, limits=limits)


async def _post(
    target: Target,
    transport: httpx.AsyncHTTPTransport,
    *,
    headers: Sequence[tuple[str, str]],
    body: str,
    limits: Limits,
) -> DeliveryResult:
    sent_headers = [("host", _host_header(target)), ("user-agent", USER_AGENT), *headers]
    timeout = {
        "connect": limits.connect_seconds,
        "read": limits.read_seconds,
        "write": limits.read_seconds,
        "pool": limits.connect_seconds,
    }
    started = time.perf_counter()
    status: int | None = None
    response_body: str | None = None
    error: str | None = None
    retry_after: float | None = None
    deadline = limits.connect_seconds + limits.read_seconds + DEADLINE_MARGIN_SECONDS
    try:
        request = httpx.Request(  # inside: a URL httpx refuses is a result too
            "POST",
            _pinned_url(target),
            headers=sent_headers,
            content=body.encode("utf-8"),
            extensions={"sni_hostname": target.host, "timeout": timeout},
        )
        async with asyncio.timeout(deadline):  # a receiver dripping bytes cannot hold us
            response = await transport.handle_async_request(request)
            try:
                status = response.status_code
                response_body = await _read_capped(response, limits.response_max_bytes)
            finally:
                await response.aclose()
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            error = f"Redirects are not followed (HTTP {status} to {location[:200]!r})."
        elif status != 200:
            error = f"The receiver answered HTTP {status}; only 200 counts as received."
            if status in (429, 503):
                retry_after = _retry_after(response.headers.get("retry-after"))
    except httpx.ConnectTimeout:
        error = f"Could not connect within {limits.connect_seconds:g} s."
    except httpx.ReadTimeout:
        error = f"No response within {limits.read_seconds:g} s."
    except httpx.TimeoutException:
        error = "The request timed out."
    except httpx.ConnectError as exc:
        error = f"Could not connect: {_reason(exc)}."
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        error = f"The connection failed: {_reason(exc)}."
    except httpx.HTTPError as exc:
        error = f"The request failed: {_reason(exc)}."
    except TimeoutError:
        error = f"The receiver did not finish answering within {deadline:g} s."
        if status is not None:
            error = f"HTTP {status}, but {error[0].lower()}{error[1:]}"
    except Exception as exc:  # whatever else happened is recorded, never raised
        logger.warning("webhook send failed unexpectedly", exc_info=True)
        error = f"The request failed: {type(exc).__name__}."
    return DeliveryResult(
        request_headers=sent_headers,
        status_code=status,
        response_body=response_body,
        error=error,
        duration_ms=int((time.perf_counter() - started) * 1000),
        retry_after_seconds=retry_after,
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), 10**7))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


async def _read_capped(response: httpx.Response, limit: int) -> str:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    text = b"".join(chunks)[:limit].decode("utf-8", errors="replace")
    return text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL: it is recorded


def _reason(exc: Exception) -> str:
    """The exception in words, without its final full stop (the message adds its own)."""
    text = str(exc) or type(exc).__name__
    return text[:300].rstrip(".")
