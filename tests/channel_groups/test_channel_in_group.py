"""channelDelete refuses a channel that a group's current or scheduled session has
(CHANNEL_IN_GROUP, naming the groups); a superseded session holds nothing back."""

from __future__ import annotations

from starlette.applications import Starlette

from tests.channel_groups.helpers import (
    GROUP_DELETE,
    GROUP_UPDATE,
    codes,
    create_group,
    entries,
    let_scheduled_begin,
    make_channels,
    mutate,
    next_hours,
)
from tests.channels.helpers import delete_channel
from tests.factories import Seeded
from tests.support import Api


async def test_a_channel_in_a_group_cannot_be_deleted(api: Api, seeded: Seeded) -> None:
    # given a channel in two groups, disabled in one of them
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b = await make_channels(api, owner.token, store_id, "A", "B")
    first = await create_group(api, owner.token, store_id, "Weekend", entries((a, 50), (b, 50)))
    await create_group(api, owner.token, store_id, "Night", entries((b, 100), (a, 0, False)))

    # when it is deleted
    payload = await delete_channel(api, owner.token, a)

    # then it is refused, naming both groups
    assert codes(payload) == [("CHANNEL_IN_GROUP", ["input", "id"])]
    assert payload["deletedChannelId"] is None
    message = payload["userErrors"][0]["message"]
    assert "Weekend" in message and "Night" in message

    # once the groups no longer have it, it can be
    await mutate(
        api,
        owner.token,
        GROUP_UPDATE,
        "channelGroupUpdate",
        id=first["id"],
        entries=entries((b, 100)),
    )
    night = await delete_channel(api, owner.token, a)
    assert codes(night) == [("CHANNEL_IN_GROUP", ["input", "id"])]
    assert "Weekend" not in night["userErrors"][0]["message"]


async def test_a_scheduled_session_holds_its_channels(
    api: Api, seeded: Seeded, app: Starlette
) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b = await make_channels(api, owner.token, store_id, "A", "B")
    group = await create_group(api, owner.token, store_id, "G", entries((a, 100)))
    await mutate(
        api,
        owner.token,
        GROUP_UPDATE,
        "channelGroupUpdate",
        id=group["id"],
        entries=entries((b, 100)),
        beginAt=next_hours(2).isoformat(),
    )
    # the scheduled session's channel is held, and so is the current one's
    assert codes(await delete_channel(api, owner.token, b)) == [
        ("CHANNEL_IN_GROUP", ["input", "id"])
    ]
    assert codes(await delete_channel(api, owner.token, a)) == [
        ("CHANNEL_IN_GROUP", ["input", "id"])
    ]

    # when the scheduled session has begun, the superseded one holds nothing back
    await let_scheduled_begin(app)
    assert (await delete_channel(api, owner.token, a))["userErrors"] == []
    assert codes(await delete_channel(api, owner.token, b)) == [
        ("CHANNEL_IN_GROUP", ["input", "id"])
    ]

    # and once the group is deleted, nothing does
    await mutate(api, owner.token, GROUP_DELETE, "channelGroupDelete", id=group["id"])
    assert (await delete_channel(api, owner.token, b))["userErrors"] == []
