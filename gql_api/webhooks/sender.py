"""Sending one webhook: pinned to a checked address, no redirects, bounded time and size."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import certifi
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


async def check_and_send(
    url: str,
    *,
    require_https: bool,
    headers: Sequence[tuple[str, str]],
    body: str,
    allowed: Sequence[IPNetwork],
    limits: Limits,
) -> DeliveryResult:
    """Check the URL's address again (it may resolve elsewhere now), then send, pinned to it;
    a refused address is a result ("Not sent: …"), like any other failure."""
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
    return await send(target, headers=headers, body=body, limits=limits)


@cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs tens of milliseconds
    of CPU on the event loop, too much to repeat for every attempt."""
    return ssl.create_default_context(cafile=certifi.where())


async def send(
    target: Target, *, headers: Sequence[tuple[str, str]], body: str, limits: Limits
) -> DeliveryResult:
    """POST `body`; whatever happens comes back as a result, never as an exception."""
    sent_headers = [("host", _host_header(target)), ("user-agent", USER_AGENT), *headers]
    timeout = httpx.Timeout(
        connect=limits.connect_seconds,
        read=limits.read_seconds,
        write=limits.read_seconds,
        pool=limits.connect_seconds,
    )
    started = time.perf_counter()
    status: int | None = None
    response_body: str | None = None
    error: str | None = None
    retry_after: float | None = None
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=timeout, trust_env=False, verify=_tls_context()
    ) as http:
        deadline = limits.connect_seconds + limits.read_seconds + DEADLINE_MARGIN_SECONDS
        try:
            request = http.build_request(  # inside: a URL httpx refuses is a result too
                "POST",
                _pinned_url(target),
                headers=sent_headers,
                content=body.encode("utf-8"),
                extensions={"sni_hostname": target.host},
            )
            async with asyncio.timeout(deadline):  # a receiver dripping bytes cannot hold us
                response = await http.send(request, stream=True)
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
