"""A channel's texts in the language the request asks for (Accept-Language): its messages and
the catalog labels they name, all Korean or all English, never a mix; codes and paths the same."""

from __future__ import annotations

from typing import Any

from tests.channels.helpers import (
    CHANNEL_CREATE,
    NODE,
    create_channel,
    credentials_by_key,
    gql_in,
    kcp_live_input,
)
from tests.support import Api, SignedUp


def without_certificate(store_id: str) -> dict[str, Any]:
    channel_input = kcp_live_input(store_id)
    channel_input["credentials"] = [
        c for c in channel_input["credentials"] if c["key"] != "certificate"
    ]
    return channel_input


async def test_a_missing_credential_reads_all_english_for_an_english_request(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel_input = without_certificate(owner.representative_store_id)

    # when
    data = await gql_in(api, "en", CHANNEL_CREATE, {"input": channel_input}, token=owner.token)

    # then: the English message names the field and the module in English
    assert data["channelCreate"]["userErrors"] == [
        {
            "field": ["input", "credentials", "certificate"],
            "code": "CREDENTIAL_MISSING",
            "message": "PG-API certificate key is required for "
            "“[Payment window] Standard/manual [API] Manual/recurring”.",
        }
    ]


async def test_a_missing_credential_reads_all_korean_for_a_korean_request(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel_input = without_certificate(owner.representative_store_id)

    # when
    data = await gql_in(api, "ko-KR", CHANNEL_CREATE, {"input": channel_input}, token=owner.token)

    # then: the Korean message names the field and the module as the console does
    assert data["channelCreate"]["userErrors"] == [
        {
            "field": ["input", "credentials", "certificate"],
            "code": "CREDENTIAL_MISSING",
            "message": "“[결제창] 일반/수기결제 [API] 수기/정기결제” 모듈을 사용하려면 "
            "PG-API 인증서키을(를) 입력해야 합니다.",
        }
    ]


async def test_a_channels_credential_labels_follow_the_request_language(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel = await create_channel(api, owner.token, kcp_live_input(owner.representative_store_id))

    # when
    korean = await gql_in(api, "ko", NODE, {"id": channel["id"]}, token=owner.token)
    english = await gql_in(api, "en", NODE, {"id": channel["id"]}, token=owner.token)

    # then
    labels_ko = {k: c["label"] for k, c in credentials_by_key(korean["node"]).items()}
    labels_en = {k: c["label"] for k, c in credentials_by_key(english["node"]).items()}
    assert labels_ko == {
        "certificate": "PG-API 인증서키",
        "privateKey": "PG-API 개인키",
        "privateKeyPassword": "개인키 비밀번호",
        "groupId": "자동결제 그룹아이디",
    }
    assert labels_en == {
        "certificate": "PG-API certificate key",
        "privateKey": "PG-API private key",
        "privateKeyPassword": "Private key password",
        "groupId": "Recurring payment group ID",
    }
