"""channelGroupCreate: a group of one store and mode, its first session in force at once; every
rule of its entries, reported all at once with field paths; names unique; a per-store limit."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import ChannelGroup
from gql_api.channel_groups.rules import MAX_GROUPS_PER_STORE
from tests.channel_groups.helpers import (
    codes,
    create_group,
    entries,
    make_channels,
    try_group_create,
)
from tests.channels.helpers import audit_events, create_channel, inicis_live_input
from tests.factories import Seeded
from tests.support import Api

GROUP_ID = re.compile(
    r"^channel-group-(live|test)-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)


async def test_a_group_is_created_with_its_session_in_force(api: Api, seeded: Seeded) -> None:
    # given
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b, c = await make_channels(api, owner.token, store_id, "A", "B", "C")

    # when
    group = await create_group(
        api, owner.token, store_id, " Split ", entries((a, 70), (b, 30), (c, 90, False))
    )

    # then
    assert GROUP_ID.match(group["channelGroupId"])
    assert group["channelGroupId"].startswith("channel-group-test-")
    assert (group["name"], group["mode"], group["store"]) == (
        "Split",
        "TEST",
        {"storeId": store_id},
    )
    assert group["scheduledSession"] is None
    session = group["currentSession"]
    assert session["beginAt"] is not None
    assert [(e["channel"]["name"], e["weight"], e["enabled"]) for e in session["entries"]] == [
        ("A", 70, True),
        ("B", 30, True),
        ("C", 90, False),
    ]
    events = await audit_events(api, owner.token, "channel_group.create")
    assert [(e["storeId"], e["targetId"]) for e in events] == [(store_id, group["channelGroupId"])]


async def test_a_live_group_has_a_live_id(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    live = await create_channel(api, owner.token, inicis_live_input(store_id, "Live"))
    payload = await try_group_create(
        api,
        owner.token,
        {
            "storeId": store_id,
            "mode": "LIVE",
            "name": "Live",
            "entries": entries((live["id"], 100)),
        },
    )
    assert payload["userErrors"] == []
    assert payload["channelGroup"]["channelGroupId"].startswith("channel-group-live-")


async def test_weights_must_sum_to_100_over_the_enabled_entries(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b = await make_channels(api, owner.token, store_id, "A", "B")
    base = {"storeId": store_id, "mode": "TEST", "name": "G"}

    # a disabled entry's weight does not count: 60 + 40 = 100
    ok = await try_group_create(
        api, owner.token, {**base, "entries": entries((a, 100), (b, 40, False))}
    )
    assert ok["userErrors"] == []

    # 60 + 30 enabled = 90
    short = await try_group_create(
        api, owner.token, {**base, "name": "H", "entries": entries((a, 60), (b, 30))}
    )
    assert codes(short) == [("CHANNEL_GROUP_WEIGHTS_INVALID", ["input", "entries"])]
    assert "90" in short["userErrors"][0]["message"]
    assert short["channelGroup"] is None

    # a weight outside 0-100 is refused where it is
    negative = await try_group_create(
        api, owner.token, {**base, "name": "H", "entries": entries((a, 101), (b, -1))}
    )
    assert codes(negative) == [
        ("CHANNEL_GROUP_WEIGHTS_INVALID", ["input", "entries", "0", "weight"]),
        ("CHANNEL_GROUP_WEIGHTS_INVALID", ["input", "entries", "1", "weight"]),
    ]


async def test_one_to_ten_entries(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    names = [f"C{i}" for i in range(11)]
    channels = await make_channels(api, owner.token, store_id, *names)
    base = {"storeId": store_id, "mode": "TEST", "name": "G"}

    empty = await try_group_create(api, owner.token, {**base, "entries": []})
    assert codes(empty) == [("INVALID_INPUT", ["input", "entries"])]

    ten = entries(*[(channel, 10) for channel in channels[:10]])
    assert (await try_group_create(api, owner.token, {**base, "entries": ten}))["userErrors"] == []

    eleven = [*ten, {"channelId": channels[10], "weight": 0}]
    result = await api.gql(
        """mutation($input: ChannelGroupCreateInput!) { channelGroupCreate(input: $input) {
        userErrors { code } } }""",
        {"input": {**base, "name": "H", "entries": eleven}},
        token=owner.token,
    )
    refused = result.body.get("errors") or result.body["data"]["channelGroupCreate"]["userErrors"]
    assert refused  # refused before anything is written, by the input-list limit


async def test_only_channels_of_the_store_and_mode_and_once_each(
    api: Api, seeded: Seeded, stranger: Seeded
) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (test_channel,) = await make_channels(api, owner.token, store_id, "Test")
    live = await create_channel(api, owner.token, inicis_live_input(store_id, "Live"))
    sub_store = seeded.stores["Sub store"]
    (elsewhere,) = await make_channels(api, owner.token, sub_store, "Elsewhere")
    stranger_store = stranger.owner.representative_store_id
    (foreign,) = await make_channels(api, stranger.owner.token, stranger_store, "Foreign")

    # when every problem is in one input
    payload = await try_group_create(
        api,
        owner.token,
        {
            "storeId": store_id,
            "mode": "TEST",
            "name": "",
            "entries": entries(
                (test_channel, 20),
                (live["id"], 20),
                (elsewhere, 20),
                (foreign, 20),
                (test_channel, 20),
                ("not-an-id", 0),
            ),
        },
    )

    # then all are reported at once; another merchant's channel is simply not found
    assert codes(payload) == [
        ("REQUIRED", ["input", "name"]),
        ("CHANNEL_GROUP_MODE_MISMATCH", ["input", "entries", "1", "channelId"]),
        ("NOT_FOUND", ["input", "entries", "2", "channelId"]),
        ("NOT_FOUND", ["input", "entries", "3", "channelId"]),
        ("INVALID_INPUT", ["input", "entries", "4", "channelId"]),
        ("NOT_FOUND", ["input", "entries", "5", "channelId"]),
    ]


async def test_another_merchants_store_is_not_found(
    api: Api, seeded: Seeded, stranger: Seeded
) -> None:
    (channel,) = await make_channels(
        api, seeded.owner.token, seeded.owner.representative_store_id, "A"
    )
    payload = await try_group_create(
        api,
        stranger.owner.token,
        {
            "storeId": seeded.owner.representative_store_id,
            "mode": "TEST",
            "name": "Mine",
            "entries": entries((channel, 100)),
        },
    )
    assert codes(payload) == [
        ("NOT_FOUND", ["input", "storeId"]),
        ("NOT_FOUND", ["input", "entries", "0", "channelId"]),
    ]


async def test_a_store_manager_uses_its_own_store_only(api: Api, seeded: Seeded) -> None:
    manager = seeded.members["STORE_MANAGER"].token
    sub_store = seeded.stores["Sub store"]
    (own,) = await make_channels(api, manager, sub_store, "Own")
    assert await create_group(api, manager, sub_store, "Own", entries((own, 100)))
    (other,) = await make_channels(
        api, seeded.owner.token, seeded.owner.representative_store_id, "Other"
    )
    payload = await try_group_create(
        api,
        manager,
        {
            "storeId": seeded.owner.representative_store_id,
            "mode": "TEST",
            "name": "Theirs",
            "entries": entries((other, 100)),
        },
    )
    assert codes(payload) == [
        ("NOT_FOUND", ["input", "storeId"]),
        ("NOT_FOUND", ["input", "entries", "0", "channelId"]),
    ]


async def test_names_are_unique_per_store(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (a,) = await make_channels(api, owner.token, store_id, "A")
    await create_group(api, owner.token, store_id, "Same", entries((a, 100)))
    payload = await try_group_create(
        api,
        owner.token,
        {"storeId": store_id, "mode": "TEST", "name": "Same", "entries": entries((a, 100))},
    )
    assert codes(payload) == [("CHANNEL_GROUP_NAME_DUPLICATE", ["input", "name"])]
    # another store may use the name
    sub_store = seeded.stores["Sub store"]
    (b,) = await make_channels(api, owner.token, sub_store, "B")
    assert await create_group(api, owner.token, sub_store, "Same", entries((b, 100)))


async def test_a_store_has_at_most_the_limit_of_groups(
    api: Api, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    # given a store with as many groups as it may have (rows: the limit is what is tested)
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (a,) = await make_channels(api, owner.token, store_id, "A")
    store_pk = seeded.store_pks[store_id]
    async with db_engine.begin() as conn:
        for n in range(MAX_GROUPS_PER_STORE):
            await conn.execute(
                ChannelGroup.__table__.insert().values(  # type: ignore[attr-defined]
                    channel_group_id=f"channel-group-test-seeded-{n}",
                    merchant_id=seeded.merchant_pk,
                    store_pk=store_pk,
                    name=f"Seeded {n}",
                    mode="TEST",
                    created_at=seeded_time(),
                    updated_at=seeded_time(),
                )
            )

    # when one more is created
    payload = await try_group_create(
        api,
        owner.token,
        {"storeId": store_id, "mode": "TEST", "name": "One more", "entries": entries((a, 100))},
    )

    # then
    assert codes(payload) == [("LIMIT_EXCEEDED", ["input", "storeId"])]
    assert str(MAX_GROUPS_PER_STORE) in payload["userErrors"][0]["message"]
    # another store is not affected
    sub_store = seeded.stores["Sub store"]
    (b,) = await make_channels(api, owner.token, sub_store, "B")
    assert await create_group(api, owner.token, sub_store, "One more", entries((b, 100)))


def seeded_time() -> object:
    from db.types import utcnow

    return utcnow()
