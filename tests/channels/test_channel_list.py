"""Store.channels: filters, keyset pagination both ways, node(id:) and who sees what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.channels.helpers import (
    NODE,
    STORE_CHANNELS,
    channel_names,
    create_channel,
    inicis_live_input,
    kcp_shared_test_input,
    list_channels,
)
from tests.support import Api, SignedUp, create_store, invite_and_join

MERCHANT_CHANNELS = """
{ merchant { stores(first: 100) { nodes { storeId channels { nodes { name } } } } } }
"""


@dataclass
class World:
    owner: SignedUp
    store_id: str
    sub_store_id: str
    channels: dict[str, dict[str, Any]]


def _toss_live(store_id: str) -> dict[str, Any]:
    return {
        "storeId": store_id,
        "mode": "LIVE",
        "pgProvider": "TOSSPAYMENTS",
        "moduleCode": "TOSSPAYMENTS_PAYMENT",
        "name": "Toss Live",
        "pgMerchantId": "tosslive01",
        "credentials": [
            {"key": "clientKey", "value": "live_ck_abcdefgh"},
            {"key": "secretKey", "value": "live_sk_secretvalue0001"},
        ],
    }


def _kcp_identity(store_id: str) -> dict[str, Any]:
    return {
        "storeId": store_id,
        "mode": "TEST",
        "pgProvider": "KCP_V2",
        "moduleCode": "KCP_V2_IDENTITY_VERIFICATION",
        "purpose": "IDENTITY_VERIFICATION",
        "name": "KCP 본인인증",
        "pgMerchantId": "AO6R1",
    }


def _kakaopay(store_id: str) -> dict[str, Any]:
    return {
        "storeId": store_id,
        "mode": "TEST",
        "pgProvider": "KAKAOPAY",
        "moduleCode": "KAKAOPAY_PAYMENT",
        "name": "50% off_kakao",
        "pgMerchantId": "TC0ONETIME",
    }


@pytest.fixture
async def world(api: Api, owner: SignedUp) -> World:
    store_id = owner.representative_store_id
    sub_store_id, _ = await create_store(api, owner.token, "Sub store")
    inputs = [
        kcp_shared_test_input(store_id, "KCP Test"),
        inicis_live_input(store_id, "INICIS Live"),
        _kcp_identity(store_id),
        _toss_live(store_id),
        _kakaopay(store_id),
        kcp_shared_test_input(sub_store_id, "Sub KCP"),
    ]
    channels = {}
    for channel_input in inputs:
        channel = await create_channel(api, owner.token, channel_input)
        channels[channel["name"]] = channel
    return World(owner, store_id, sub_store_id, channels)


async def names(api: Api, world: World, **arguments: Any) -> list[str]:
    return await channel_names(api, world.owner.token, world.store_id, **arguments)


ALL = ["KCP Test", "INICIS Live", "KCP 본인인증", "Toss Live", "50% off_kakao"]


async def test_a_store_lists_its_own_channels_oldest_first(api: Api, world: World) -> None:
    # when
    listed = await names(api, world)
    sub = await channel_names(api, world.owner.token, world.sub_store_id)

    # then
    assert listed == ALL
    assert sub == ["Sub KCP"]


@pytest.mark.parametrize(
    ("channel_filter", "expected"),
    [
        ({"mode": "LIVE"}, ["INICIS Live", "Toss Live"]),
        ({"mode": "TEST"}, ["KCP Test", "KCP 본인인증", "50% off_kakao"]),
        ({"purpose": "IDENTITY_VERIFICATION"}, ["KCP 본인인증"]),
        ({"purpose": "PAYMENT"}, ["KCP Test", "INICIS Live", "Toss Live", "50% off_kakao"]),
        ({"pgProvider": "KCP_V2"}, ["KCP Test", "KCP 본인인증"]),
        ({"pgProvider": "KCP"}, []),
        ({"mode": "TEST", "pgProvider": "KCP_V2", "purpose": "PAYMENT"}, ["KCP Test"]),
        ({"search": "kcp"}, ["KCP Test", "KCP 본인인증"]),
        ({"search": "  LIVE "}, ["INICIS Live", "Toss Live"]),
        ({"search": "moiport"}, ["INICIS Live"]),  # the MID, case-insensitively
        ({"search": "t0000"}, ["KCP Test"]),
        ({"search": "50%"}, ["50% off_kakao"]),  # % is a character, not a wildcard
        ({"search": "f_k"}, ["50% off_kakao"]),  # so is _
        ({"search": "%"}, ["50% off_kakao"]),
        ({"search": "_"}, ["50% off_kakao"]),
        ({"search": "nothing like it"}, []),
        ({"search": ""}, ALL),
        ({}, ALL),
    ],
)
async def test_filters(
    api: Api, world: World, channel_filter: dict[str, Any], expected: list[str]
) -> None:
    # when
    listed = await names(api, world, filter=channel_filter)

    # then
    assert listed == expected


async def test_search_finds_a_channel_by_its_key(api: Api, world: World) -> None:
    # given
    key = world.channels["Toss Live"]["channelKey"]

    # when
    by_key = await names(api, world, filter={"search": key.upper()})
    by_part = await names(api, world, filter={"search": key[-12:]})

    # then
    assert by_key == ["Toss Live"]
    assert by_part == ["Toss Live"]


async def test_forward_pages_walk_every_channel_once(api: Api, world: World) -> None:
    # when
    pages, infos, after = [], [], None
    while True:
        result = await list_channels(api, world.owner.token, world.store_id, first=2, after=after)
        connection = result.data["store"]["channels"]
        pages.append([edge["node"]["name"] for edge in connection["edges"]])
        infos.append(connection["pageInfo"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    # then
    assert pages == [ALL[0:2], ALL[2:4], ALL[4:5]]
    assert [info["hasPreviousPage"] for info in infos] == [False, True, True]
    assert [info["hasNextPage"] for info in infos] == [True, True, False]


async def test_backward_pages_walk_every_channel_once(api: Api, world: World) -> None:
    # when
    pages, infos, before = [], [], None
    while True:
        result = await list_channels(api, world.owner.token, world.store_id, last=2, before=before)
        connection = result.data["store"]["channels"]
        pages.append([edge["node"]["name"] for edge in connection["edges"]])
        infos.append(connection["pageInfo"])
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        before = connection["pageInfo"]["startCursor"]

    # then
    assert pages == [ALL[3:5], ALL[1:3], ALL[0:1]]
    assert [info["hasNextPage"] for info in infos] == [False, True, True]
    assert [info["hasPreviousPage"] for info in infos] == [True, True, False]


async def test_pages_of_a_filtered_list_stay_filtered(api: Api, world: World) -> None:
    # when
    first = await list_channels(
        api, world.owner.token, world.store_id, first=1, filter={"mode": "TEST"}
    )
    cursor = first.data["store"]["channels"]["pageInfo"]["endCursor"]
    rest = await list_channels(
        api, world.owner.token, world.store_id, first=5, after=cursor, filter={"mode": "TEST"}
    )

    # then
    assert [e["node"]["name"] for e in first.data["store"]["channels"]["edges"]] == ["KCP Test"]
    connection = rest.data["store"]["channels"]
    assert [e["node"]["name"] for e in connection["edges"]] == ["KCP 본인인증", "50% off_kakao"]
    assert connection["pageInfo"]["hasNextPage"] is False


async def test_cursors_stay_valid_when_channels_are_added(api: Api, world: World) -> None:
    # given
    first = await list_channels(api, world.owner.token, world.store_id, first=2)
    cursor = first.data["store"]["channels"]["pageInfo"]["endCursor"]
    await create_channel(
        api, world.owner.token, kcp_shared_test_input(world.store_id, "Added later")
    )

    # when
    rest = await names(api, world, first=10, after=cursor)

    # then
    assert rest == [*ALL[2:], "Added later"]


@pytest.mark.parametrize(
    "arguments",
    [
        {"first": 101},
        {"last": 101},
        {"first": -1},
        {"after": "not-a-cursor"},
        {"first": 1, "last": 1},
    ],
)
async def test_bad_page_arguments_are_errors(
    api: Api, world: World, arguments: dict[str, Any]
) -> None:
    # when
    result = await list_channels(api, world.owner.token, world.store_id, **arguments)

    # then
    assert len(result.body["errors"]) == 1


async def test_node_returns_a_channel_of_the_callers_merchant_only(api: Api, world: World) -> None:
    # given
    channel = world.channels["INICIS Live"]
    stranger = await api.sign_up()

    # when
    own = await api.gql(NODE, {"id": channel["id"]}, token=world.owner.token)
    foreign = await api.gql(NODE, {"id": channel["id"]}, token=stranger.token)

    # then
    found = own.data["node"]
    assert found["__typename"] == "Channel"
    assert found["channelKey"] == channel["channelKey"]
    assert found["credentials"] == channel["credentials"]
    assert foreign.data["node"] is None


async def test_store_scoped_members_see_the_channels_of_their_store_only(
    api: Api, world: World
) -> None:
    # given
    reader = await invite_and_join(api, world.owner.token, "STORE_READ_ONLY", world.sub_store_id)

    # when
    own = await channel_names(api, reader.token, world.sub_store_id)
    other_store = await list_channels(api, reader.token, world.store_id)
    node = await api.gql(NODE, {"id": world.channels["KCP Test"]["id"]}, token=reader.token)
    everything = await api.gql(MERCHANT_CHANNELS, token=reader.token)

    # then
    assert own == ["Sub KCP"]
    assert other_store.data["store"] is None
    assert node.data["node"] is None
    stores = everything.data["merchant"]["stores"]["nodes"]
    assert [
        (store["storeId"], [c["name"] for c in store["channels"]["nodes"]]) for store in stores
    ] == [(world.sub_store_id, ["Sub KCP"])]


async def test_a_read_only_member_reads_channels_with_secrets_masked(
    api: Api, world: World
) -> None:
    # given
    reader = await invite_and_join(api, world.owner.token, "READ_ONLY")

    # when
    result = await list_channels(api, reader.token, world.store_id, filter={"mode": "LIVE"})

    # then
    nodes = [edge["node"] for edge in result.data["store"]["channels"]["edges"]]
    assert [n["name"] for n in nodes] == ["INICIS Live", "Toss Live"]
    toss = {c["key"]: c for c in nodes[1]["credentials"]}
    assert toss["clientKey"]["value"] == "live_ck_abcdefgh"
    assert toss["secretKey"]["value"] is None
    assert toss["secretKey"]["maskedValue"] == "••••0001"
    assert "live_sk_secretvalue0001" not in str(result.body)


async def test_anonymous_callers_cannot_list_channels(api: Api, world: World) -> None:
    # when
    result = await api.gql(STORE_CHANNELS, {"storeId": world.store_id})

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]
