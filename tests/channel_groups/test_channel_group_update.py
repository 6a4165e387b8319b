"""channelGroupUpdate (rename; entries now or from an hour on), the scheduled session taking
over at its beginAt with no job running, channelGroupScheduledSessionDelete, channelGroupDelete,
Store.channelGroups and node(id:), each against another merchant's IDs too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.applications import Starlette

from gql_api.ids import global_id
from tests.channel_groups.helpers import (
    GROUP_DELETE,
    GROUP_UPDATE,
    NODE,
    PICK,
    SCHEDULED_DELETE,
    STORE_GROUPS,
    codes,
    create_group,
    entries,
    let_scheduled_begin,
    make_channels,
    mutate,
    next_hours,
)
from tests.channels.helpers import audit_events
from tests.factories import Seeded
from tests.support import Api


def weights(session: dict[str, Any] | None) -> list[tuple[str, int, bool]]:
    """(channel name, weight, enabled) of each entry of a session."""
    assert session is not None
    return [(e["channel"]["name"], e["weight"], e["enabled"]) for e in session["entries"]]


async def test_rename_and_change_entries_now(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b = await make_channels(api, owner.token, store_id, "A", "B")
    group = await create_group(api, owner.token, store_id, "G", entries((a, 100)))

    payload = await mutate(
        api,
        owner.token,
        GROUP_UPDATE,
        "channelGroupUpdate",
        id=group["id"],
        name="Renamed",
        entries=entries((a, 50), (b, 50)),
    )

    assert payload["userErrors"] == []
    changed = payload["channelGroup"]
    assert changed["name"] == "Renamed"
    assert weights(changed["currentSession"]) == [("A", 50, True), ("B", 50, True)]
    assert changed["scheduledSession"] is None
    assert changed["channelGroupId"] == group["channelGroupId"]
    events = await audit_events(api, owner.token, "channel_group.update")
    assert [e["targetId"] for e in events] == [group["channelGroupId"]]


async def test_a_scheduled_session_takes_over_at_its_hour(
    api: Api, seeded: Seeded, app: Starlette
) -> None:
    # given a group of A, with B scheduled from the next hour on
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b = await make_channels(api, owner.token, store_id, "A", "B")
    group = await create_group(api, owner.token, store_id, "G", entries((a, 100)))
    begin_at = next_hours(1)
    payload = await mutate(
        api,
        owner.token,
        GROUP_UPDATE,
        "channelGroupUpdate",
        id=group["id"],
        entries=entries((b, 100)),
        beginAt=begin_at.isoformat(),
    )
    assert payload["userErrors"] == []
    assert weights(payload["channelGroup"]["currentSession"]) == [("A", 100, True)]
    assert weights(payload["channelGroup"]["scheduledSession"]) == [("B", 100, True)]
    assert payload["channelGroup"]["scheduledSession"]["beginAt"].startswith(
        begin_at.strftime("%Y-%m-%dT%H:00:00")
    )
    picked = await api.gql(PICK, {"g": group["channelGroupId"]}, token=owner.token)
    assert picked.data["channelGroupPick"]["name"] == "A"

    # when its hour has come (nothing runs in between)
    await let_scheduled_begin(app)

    # then it is the current session, and payments go to B
    read = await api.gql(NODE, {"id": group["id"]}, token=owner.token)
    node = read.data["node"]
    assert weights(node["currentSession"]) == [("B", 100, True)]
    assert node["scheduledSession"] is None
    picked = await api.gql(PICK, {"g": group["channelGroupId"]}, token=owner.token)
    assert picked.data["channelGroupPick"]["name"] == "B"


async def test_a_schedule_is_on_the_hour_and_in_the_future(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (a,) = await make_channels(api, owner.token, store_id, "A")
    group = await create_group(api, owner.token, store_id, "G", entries((a, 100)))
    for begin_at in (
        next_hours(2) + timedelta(minutes=30),
        next_hours(2) + timedelta(seconds=1),
        next_hours(0),  # this hour has begun
        next_hours(-5),
        next_hours(24 * 400),
    ):
        payload = await mutate(
            api,
            owner.token,
            GROUP_UPDATE,
            "channelGroupUpdate",
            id=group["id"],
            entries=entries((a, 100)),
            beginAt=begin_at.isoformat(),
        )
        assert codes(payload) == [("SCHEDULE_INVALID", ["input", "beginAt"])], begin_at
    # beginAt needs the entries it schedules
    payload = await mutate(
        api,
        owner.token,
        GROUP_UPDATE,
        "channelGroupUpdate",
        id=group["id"],
        beginAt=next_hours(3).isoformat(),
    )
    assert codes(payload) == [("REQUIRED", ["input", "entries"])]


async def test_a_new_schedule_replaces_the_old_and_can_be_cancelled(
    api: Api, seeded: Seeded
) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b, c = await make_channels(api, owner.token, store_id, "A", "B", "C")
    group = await create_group(api, owner.token, store_id, "G", entries((a, 100)))
    for channel, hours in ((b, 5), (c, 3)):
        payload = await mutate(
            api,
            owner.token,
            GROUP_UPDATE,
            "channelGroupUpdate",
            id=group["id"],
            entries=entries((channel, 100)),
            beginAt=next_hours(hours).isoformat(),
        )
        assert payload["userErrors"] == []
    assert weights(payload["channelGroup"]["scheduledSession"]) == [("C", 100, True)]

    cancelled = await mutate(
        api, owner.token, SCHEDULED_DELETE, "channelGroupScheduledSessionDelete", id=group["id"]
    )
    assert cancelled["userErrors"] == []
    assert cancelled["channelGroup"]["scheduledSession"] is None
    assert weights(cancelled["channelGroup"]["currentSession"]) == [("A", 100, True)]
    again = await mutate(
        api, owner.token, SCHEDULED_DELETE, "channelGroupScheduledSessionDelete", id=group["id"]
    )
    assert codes(again) == [("SCHEDULE_INVALID", ["input", "id"])]
    assert await audit_events(api, owner.token, "channel_group.scheduled_session_delete")


async def test_update_rules_and_names(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b = await make_channels(api, owner.token, store_id, "A", "B")
    await create_group(api, owner.token, store_id, "Taken", entries((a, 100)))
    group = await create_group(api, owner.token, store_id, "G", entries((b, 100)))
    payload = await mutate(
        api,
        owner.token,
        GROUP_UPDATE,
        "channelGroupUpdate",
        id=group["id"],
        name="Taken",
        entries=entries((a, 40), (b, 40)),
    )
    assert codes(payload) == [("CHANNEL_GROUP_WEIGHTS_INVALID", ["input", "entries"])]
    payload = await mutate(
        api, owner.token, GROUP_UPDATE, "channelGroupUpdate", id=group["id"], name="Taken"
    )
    assert codes(payload) == [("CHANNEL_GROUP_NAME_DUPLICATE", ["input", "name"])]


async def test_delete_cannot_be_undone(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (a,) = await make_channels(api, owner.token, store_id, "A")
    group = await create_group(api, owner.token, store_id, "G", entries((a, 100)))

    payload = await mutate(api, owner.token, GROUP_DELETE, "channelGroupDelete", id=group["id"])

    assert payload == {"deletedChannelGroupId": group["id"], "userErrors": []}
    assert (await api.gql(NODE, {"id": group["id"]}, token=owner.token)).data["node"] is None
    picked = await api.gql(PICK, {"g": group["channelGroupId"]}, token=owner.token)
    assert picked.data["channelGroupPick"] is None
    again = await mutate(api, owner.token, GROUP_DELETE, "channelGroupDelete", id=group["id"])
    assert codes(again) == [("NOT_FOUND", ["input", "id"])]
    # the name is free again
    assert await create_group(api, owner.token, store_id, "G", entries((a, 100)))
    assert await audit_events(api, owner.token, "channel_group.delete")


async def test_another_merchants_group_does_not_exist(
    api: Api, seeded: Seeded, stranger: Seeded
) -> None:
    # given a group of `seeded`
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (a,) = await make_channels(api, owner.token, store_id, "A")
    group = await create_group(api, owner.token, store_id, "G", entries((a, 100)))
    token = stranger.owner.token

    # when another merchant's owner uses its IDs, then nothing is found, nothing FORBIDDEN
    for query, name, extra in (
        (GROUP_UPDATE, "channelGroupUpdate", {"name": "Stolen"}),
        (SCHEDULED_DELETE, "channelGroupScheduledSessionDelete", {}),
        (GROUP_DELETE, "channelGroupDelete", {}),
    ):
        payload = await mutate(api, token, query, name, id=group["id"], **extra)
        assert codes(payload) == [("NOT_FOUND", ["input", "id"])], name
    assert (await api.gql(NODE, {"id": group["id"]}, token=token)).data["node"] is None
    picked = await api.gql(PICK, {"g": group["channelGroupId"]}, token=token)
    assert picked.body == {"data": {"channelGroupPick": None}}
    listed = await api.gql(STORE_GROUPS, {"storeId": store_id}, token=token)
    assert listed.data["store"] is None
    # a made-up ID of the right type is not found either
    unknown = await mutate(
        api, token, GROUP_DELETE, "channelGroupDelete", id=global_id("ChannelGroup", 999_999)
    )
    assert codes(unknown) == [("NOT_FOUND", ["input", "id"])]
    # and the group is untouched
    read = await api.gql(NODE, {"id": group["id"]}, token=owner.token)
    assert read.data["node"]["name"] == "G"


async def test_a_store_manager_cannot_reach_another_stores_group(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (a,) = await make_channels(api, owner.token, store_id, "A")
    group = await create_group(api, owner.token, store_id, "G", entries((a, 100)))
    manager = seeded.members["STORE_MANAGER"].token
    payload = await mutate(api, manager, GROUP_DELETE, "channelGroupDelete", id=group["id"])
    assert codes(payload) == [("NOT_FOUND", ["input", "id"])]
    picked = await api.gql(PICK, {"g": group["channelGroupId"]}, token=manager)
    assert picked.data["channelGroupPick"] is None


async def test_store_lists_its_groups_by_mode_in_pages(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (a,) = await make_channels(api, owner.token, store_id, "A")
    for name in ("G1", "G2", "G3"):
        await create_group(api, owner.token, store_id, name, entries((a, 100)))

    first = await api.gql(STORE_GROUPS, {"storeId": store_id, "first": 2}, token=owner.token)
    page = first.data["store"]["channelGroups"]
    assert [e["node"]["name"] for e in page["edges"]] == ["G1", "G2"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await api.gql(
        STORE_GROUPS,
        {"storeId": store_id, "first": 2, "after": page["pageInfo"]["endCursor"]},
        token=owner.token,
    )
    assert [e["node"]["name"] for e in rest.data["store"]["channelGroups"]["edges"]] == ["G3"]
    live = await api.gql(STORE_GROUPS, {"storeId": store_id, "mode": "LIVE"}, token=owner.token)
    assert live.data["store"]["channelGroups"]["edges"] == []
    test = await api.gql(STORE_GROUPS, {"storeId": store_id, "mode": "TEST"}, token=owner.token)
    assert len(test.data["store"]["channelGroups"]["edges"]) == 3
