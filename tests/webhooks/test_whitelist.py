"""Store.additionalSettings.ipWhitelist: not offered in V2, with whom to contact."""

from __future__ import annotations

from tests.support import Api, create_store

WHITELIST = """
query Whitelist($storeId: String!) {
  store(storeId: $storeId) {
    additionalSettings { ipWhitelist { supported message contact } }
  }
}
"""


async def test_the_ip_whitelist_is_not_supported_in_v2(api: Api) -> None:
    # given
    owner = await api.sign_up()
    sub, _ = await create_store(api, owner.token, "Branch")

    # when
    results = [
        await api.client.post(
            "/graphql",
            json={"query": WHITELIST, "variables": {"storeId": store_id}},
            headers={"Authorization": f"Bearer {owner.token}", "Accept-Language": "ko"},
        )
        for store_id in (owner.representative_store_id, sub)
    ]

    # then (in Korean, as asked)
    for result in results:
        whitelist = result.json()["data"]["store"]["additionalSettings"]["ipWhitelist"]
        assert whitelist["supported"] is False
        assert whitelist["contact"] == "tech.support@portone.io"
        assert "V2" in whitelist["message"]
        assert "지원하지 않습니다" in whitelist["message"]
        assert "tech.support@portone.io" in whitelist["message"]
