"""channelDelete: a soft delete; gone from lists and node(id:), key never reused, audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette

from gql_api.node import to_global_id
from tests.channels.helpers import (
    CHANNEL_DELETE,
    NODE,
    audit_events,
    channel_names,
    count_rows,
    create_channel,
    delete_channel,
    errors,
    inicis_live_input,
    kcp_shared_test_input,
    try_create,
    update_channel,
)
from tests.support import Api, SignedUp, create_store, invite_and_join


async def node(api: Api, token: str, channel_id: str) -> dict[str, Any] | None:
    result = await api.gql(NODE, {"id": channel_id}, token=token)
    found: dict[str, Any] | None = result.data["node"]
    return found


async def deleted_at(app: Starlette, channel_key: str) -> object:
    async with app.state.app_state.engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT deleted_at FROM channels WHERE channel_key = :key"),
                {"key": channel_key},
            )
        ).scalar_one()


async def test_a_deleted_channel_disappears_from_lists_and_node(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    store_id = owner.representative_store_id
    kept = await create_channel(api, owner.token, kcp_shared_test_input(store_id, "Kept"))
    gone = await create_channel(api, owner.token, inicis_live_input(store_id, "Gone"))

    # when
    payload = await delete_channel(api, owner.token, gone["id"])

    # then
    assert payload == {"deletedChannelId": gone["id"], "userErrors": []}
    assert await channel_names(api, owner.token, store_id) == ["Kept"]
    assert await channel_names(api, owner.token, store_id, filter={"mode": "LIVE"}) == []
    assert await node(api, owner.token, gone["id"]) is None
    assert await node(api, owner.token, kept["id"]) is not None
    # soft: the row is still there, marked deleted
    assert await count_rows(app, "channels") == 2
    assert await deleted_at(app, gone["channelKey"]) is not None


async def test_the_name_is_reusable_after_delete_and_the_key_is_not(
    api: Api, owner: SignedUp
) -> None:
    # given
    store_id = owner.representative_store_id
    first = await create_channel(api, owner.token, kcp_shared_test_input(store_id, "Reused"))
    await delete_channel(api, owner.token, first["id"])

    # when
    second = await try_create(api, owner.token, kcp_shared_test_input(store_id, "Reused"))

    # then
    assert second["userErrors"] == []
    assert second["channel"]["channelKey"] != first["channelKey"]
    assert second["channel"]["id"] != first["id"]
    assert await channel_names(api, owner.token, store_id) == ["Reused"]


async def test_the_audit_log_keeps_the_deleted_channel(api: Api, owner: SignedUp) -> None:
    # given
    channel = await create_channel(
        api, owner.token, inicis_live_input(owner.representative_store_id, "Audited")
    )

    # when
    await delete_channel(api, owner.token, channel["id"])

    # then
    events = await audit_events(api, owner.token, "channel.delete")
    assert len(events) == 1
    assert events[0]["targetId"] == channel["channelKey"]
    assert events[0]["storeId"] == owner.representative_store_id
    assert events[0]["actor"] == owner.email
    assert "Audited" in events[0]["summary"]
    created = await audit_events(api, owner.token, "channel.create")
    assert [event["targetId"] for event in created] == [channel["channelKey"]]


async def test_a_deleted_channel_can_be_neither_deleted_again_nor_updated(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel = await create_channel(
        api, owner.token, kcp_shared_test_input(owner.representative_store_id)
    )
    await delete_channel(api, owner.token, channel["id"])

    # when
    again = await delete_channel(api, owner.token, channel["id"])
    update = await update_channel(
        api, owner.token, {"id": channel["id"], "version": 2, "name": "Back"}
    )

    # then
    assert again["deletedChannelId"] is None
    assert errors(again) == [("NOT_FOUND", ["input", "id"])]
    assert update["channel"] is None
    assert errors(update) == [("NOT_FOUND", ["input", "id"])]
    assert len(await audit_events(api, owner.token, "channel.delete")) == 1


async def test_a_channel_of_another_merchant_is_not_found_like_a_made_up_id(
    api: Api, owner: SignedUp
) -> None:
    # given
    other = await api.sign_up()
    foreign = await create_channel(
        api, other.token, kcp_shared_test_input(other.representative_store_id)
    )

    # when
    payloads = [
        await delete_channel(api, owner.token, channel_id)
        for channel_id in (foreign["id"], to_global_id("Channel", 424_242), "garbage")
    ]

    # then
    for payload in payloads:
        assert payload["deletedChannelId"] is None
        assert errors(payload) == [("NOT_FOUND", ["input", "id"])]
    assert await node(api, other.token, foreign["id"]) is not None
    assert await audit_events(api, other.token, "channel.delete") == []


async def test_a_store_manager_deletes_channels_of_their_own_store_only(
    api: Api, owner: SignedUp
) -> None:
    # given
    sub_store_id, _ = await create_store(api, owner.token, "Jongno")
    manager = await invite_and_join(api, owner.token, "STORE_MANAGER", sub_store_id)
    own = await create_channel(api, owner.token, kcp_shared_test_input(sub_store_id))
    other = await create_channel(
        api, owner.token, kcp_shared_test_input(owner.representative_store_id)
    )

    # when
    allowed = await delete_channel(api, manager.token, own["id"])
    refused = await delete_channel(api, manager.token, other["id"])

    # then
    assert allowed["userErrors"] == []
    assert errors(refused) == [("NOT_FOUND", ["input", "id"])]
    assert await node(api, owner.token, other["id"]) is not None


async def test_a_read_only_member_may_not_delete(api: Api, owner: SignedUp) -> None:
    # given
    channel = await create_channel(
        api, owner.token, kcp_shared_test_input(owner.representative_store_id)
    )
    reader = await invite_and_join(api, owner.token, "READ_ONLY")

    # when
    result = await api.gql(CHANNEL_DELETE, {"input": {"id": channel["id"]}}, token=reader.token)

    # then
    assert result.error_codes == ["FORBIDDEN"]
    assert await node(api, owner.token, channel["id"]) is not None
