"""Search folds case beyond ASCII, on SQLite as on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support import Api

CREATE = (
    """mutation($i: ChannelCreateInput!) { channelCreate(input: $i) { userErrors { code } } }"""
)
SEARCH = """query($s: String!, $q: String!) { store(storeId: $s) {
  channels(filter: {search: $q}) { nodes { name } } } }"""


@pytest.mark.parametrize("term", ["ärger", "ÄRGER", "결제", "Ärger Kanal"])
async def test_search_matches_non_ascii_names_in_any_case(api: Api, term: str) -> None:
    # given
    owner = await api.sign_up()
    for name in ("Ärger Kanal 결제", "Other"):
        created = await api.gql(
            CREATE,
            {
                "i": {
                    "storeId": owner.representative_store_id,
                    "mode": "TEST",
                    "pgProvider": "KCP_V2",
                    "moduleCode": "KCP_V2_PAYMENT",
                    "name": name,
                    "pgMerchantId": "T0000",
                }
            },
            token=owner.token,
        )
        assert created.data["channelCreate"]["userErrors"] == []

    # when
    found = await api.gql(
        SEARCH, {"s": owner.representative_store_id, "q": term}, token=owner.token
    )

    # then
    assert found.data["store"]["channels"]["nodes"] == [{"name": "Ärger Kanal 결제"}]
