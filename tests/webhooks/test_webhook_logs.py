"""A webhook URL's query may carry the receiver's token: sending never writes it to the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from gql_api.logs import configure_logging
from gql_api.webhooks.addresses import parse_networks
from gql_api.webhooks.sender import Limits, check_and_send
from tests.webhooks.receiver import Receivers


@pytest.fixture
def service_logging(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """The logging `serve` and `worker` set up (JSON lines on stderr, captured by `capfd`),
    undone afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    configure_logging("DEBUG")
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_a_token_in_the_webhook_url_is_not_logged(
    service_logging: None, receiver_pool: Receivers, capfd: pytest.CaptureFixture[str]
) -> None:
    receiver = await receiver_pool.start()
    url = f"{receiver.url}?token=receiver-secret-4f1c"
    result = await check_and_send(
        url,
        require_https=False,
        headers=[("content-type", "application/json")],
        body="{}",
        allowed=parse_networks(["127.0.0.0/8"]),
        limits=Limits(connect_seconds=1, read_seconds=1, response_max_bytes=1024),
    )
    assert result.succeeded, result
    assert receiver.requests[0].path.endswith("token=receiver-secret-4f1c")
    logs = capfd.readouterr()
    assert "receiver-secret-4f1c" not in logs.err + logs.out
