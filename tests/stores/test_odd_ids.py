"""IDs and page sizes at the edges never become server errors."""

from __future__ import annotations

import base64

import pytest

from tests.support import Api, create_store


def _encoded(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("raw", ["Store:²", "Store:١٢", "Channel:③"])
async def test_non_ascii_digits_in_an_id_are_just_unknown(api: Api, raw: str) -> None:
    owner = await api.sign_up()
    result = await api.gql(
        "query($id: ID!) { node(id: $id) { id } }", {"id": _encoded(raw)}, token=owner.token
    )
    assert result.error_codes == []
    assert result.data == {"node": None}


async def test_an_empty_page_still_says_whether_there_is_more(api: Api) -> None:
    owner = await api.sign_up()
    await create_store(api, owner.token, "One")
    result = await api.gql(
        "{ merchant { stores(first: 0) { edges { cursor } pageInfo { hasNextPage } } } }",
        token=owner.token,
    )
    stores = result.data["merchant"]["stores"]
    assert stores == {"edges": [], "pageInfo": {"hasNextPage": True}}
