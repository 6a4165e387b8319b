"""Channel-group messages in the language the request asks for (Accept-Language), with their
numbers and names filled in; codes and paths the same in both."""

from __future__ import annotations

from tests.channel_groups.helpers import GROUP_CREATE, create_group, entries, make_channels
from tests.channels.helpers import CHANNEL_DELETE, gql_in
from tests.factories import Seeded
from tests.support import Api


async def test_weights_that_do_not_sum_to_100_read_in_english_or_korean(
    api: Api, seeded: Seeded
) -> None:
    # given: enabled weights 60 + 30
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b = await make_channels(api, owner.token, store_id, "A", "B")
    group_input = {
        "storeId": store_id,
        "mode": "TEST",
        "name": "G",
        "entries": entries((a, 60), (b, 30)),
    }

    # when
    english = await gql_in(api, "en", GROUP_CREATE, {"input": group_input}, token=owner.token)
    korean = await gql_in(api, "ko", GROUP_CREATE, {"input": group_input}, token=owner.token)

    # then
    assert english["channelGroupCreate"]["userErrors"] == [
        {
            "field": ["input", "entries"],
            "code": "CHANNEL_GROUP_WEIGHTS_INVALID",
            "message": "The weights of the enabled channels sum to 90; they must sum to "
            "exactly 100.",
        }
    ]
    assert korean["channelGroupCreate"]["userErrors"] == [
        {
            "field": ["input", "entries"],
            "code": "CHANNEL_GROUP_WEIGHTS_INVALID",
            "message": "사용 중인 채널의 비율 합계가 90입니다. 합계가 정확히 100이 되도록 "
            "입력하세요.",
        }
    ]


async def test_a_channel_in_one_group_is_refused_in_the_singular(api: Api, seeded: Seeded) -> None:
    # given
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (a,) = await make_channels(api, owner.token, store_id, "A")
    await create_group(api, owner.token, store_id, "Weekend", entries((a, 100)))

    # when
    data = await gql_in(api, "en", CHANNEL_DELETE, {"input": {"id": a}}, token=owner.token)

    # then
    assert data["channelDelete"]["userErrors"] == [
        {
            "field": ["input", "id"],
            "code": "CHANNEL_IN_GROUP",
            "message": "The channel is in the channel group “Weekend”; take it out of it first.",
        }
    ]
