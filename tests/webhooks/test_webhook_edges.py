"""Edges of webhook sending: dripping receivers, IPv6 site-local, international host names."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.support import Api
from tests.webhooks.helpers import (
    delivered,
    issue_secret,
    loopback_settings,  # noqa: F401  (the `settings` fixture)
    save_setting,
    update_setting,
)


@contextlib.asynccontextmanager
async def dripping_receiver() -> AsyncIterator[str]:
    """Answers 200 at once, then sends its body one byte every 0.3 s, for ever."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while True:
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.3)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/drip"
    finally:
        server.close()


async def test_a_receiver_that_drips_bytes_is_cut_off_by_the_deadline(api: Api) -> None:
    # given a receiver that never finishes, each byte arriving within the read timeout
    owner = await api.sign_up()
    async with dripping_receiver() as url:
        await save_setting(api, owner.token, owner.representative_store_id, url)
        await issue_secret(api, owner.token, owner.representative_store_id)

        # when
        delivery = await delivered(api, owner.token, owner.representative_store_id)

    # then the call ends at the overall deadline and says so
    assert delivery["succeeded"] is False
    assert delivery["statusCode"] == 200
    assert "did not finish answering" in delivery["error"]


@pytest.mark.parametrize("url", ["http://[fec0::1]/hook", "http://[fec0:0:0:ffff::1]:8080/"])
async def test_site_local_ipv6_is_not_public(api: Api, url: str) -> None:
    owner = await api.sign_up()
    payload = await update_setting(api, owner.token, owner.representative_store_id, url)
    assert [e["code"] for e in payload["userErrors"]] == ["WEBHOOK_URL_FORBIDDEN"]


async def test_an_international_host_name_is_handled_not_crashed(api: Api) -> None:
    owner = await api.sign_up()
    payload = await update_setting(
        api, owner.token, owner.representative_store_id, "http://bücher.invalid/hook"
    )
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID_INPUT", ["input", "url"])
    ]
    assert "xn--bcher-kva.invalid" in payload["userErrors"][0]["message"]
