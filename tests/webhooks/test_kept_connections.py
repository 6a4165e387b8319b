"""Kept-alive connections to receivers (webhooks.sender.Connections): one pool per checked
address and host name, never two, however the requests for it interleave."""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

import httpx

from gql_api.webhooks.addresses import Target
from gql_api.webhooks.sender import Connections
from tests.webhooks.receiver import LOOPBACK, Receivers


async def post(transport: httpx.AsyncHTTPTransport, url: str) -> None:
    response = await transport.handle_async_request(httpx.Request("POST", url, content=b"{}"))
    await response.aread()
    await response.aclose()


def open_connections(transport: httpx.AsyncHTTPTransport) -> int:
    return len(transport._pool.connections)


def target(host: str, port: int) -> Target:
    """`host`, as the check approved it: at the loopback address the receiver listens on."""
    url = f"http://{host}:{port}/webhooks"
    return Target(
        url=url,
        parts=urlsplit(url),
        host=host,
        port=port,
        addresses=(ipaddress.ip_address(LOOPBACK),),
    )


async def test_two_requests_for_a_new_receiver_share_one_pool_while_an_idle_one_closes(
    receiver_pool: Receivers,
) -> None:
    # given room for one receiver's connections, taken by an idle one with a kept connection
    receiver = await receiver_pool.start(keep_alive=True)
    connections = Connections(per_pool=1, max_pools=1)
    async with connections.client(target("a.example", receiver.port)) as first:
        await post(first, receiver.url)
    handed: list[httpx.AsyncHTTPTransport] = []

    async def send() -> None:
        async with connections.client(target("b.example", receiver.port)) as pool:
            handed.append(pool)
            await post(pool, receiver.url)

    # when two requests for another receiver start together (the first closes the idle one)
    try:
        await asyncio.gather(send(), send())
    finally:
        await connections.aclose()

    # then both went through one pool, closed with the others: no connection left open
    assert len(handed) == 2
    assert handed[0] is handed[1]
    assert open_connections(handed[0]) == 0
    assert open_connections(first) == 0
