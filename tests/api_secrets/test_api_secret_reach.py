"""What a partner integration can and cannot read."""

from __future__ import annotations

import asyncio

from tests.support import Api, create_store

ISSUE = """mutation($i: ApiSecretIssueInput!) { apiSecretIssue(input: $i) { secret } }"""
LOGIN = """mutation($s: String!) { apiSecretLogin(input: {apiSecret: $s}) { refreshToken } }"""
REFRESH = """mutation($r: String!) { accessTokenRefresh(input: {refreshToken: $r}) {
  accessToken userErrors { code } } }"""


async def _secret(api: Api, token: str, store_id: str) -> str:
    issued = await api.gql(ISSUE, {"i": {"storeId": store_id, "name": "Partner"}}, token=token)
    return str(issued.data["apiSecretIssue"]["secret"])


async def test_a_sub_store_secret_cannot_reach_the_representative_store(api: Api) -> None:
    # given a sub-store secret
    owner = await api.sign_up()
    store_id, _ = await create_store(api, owner.token, "Branch")
    secret = await _secret(api, owner.token, store_id)

    # when it asks for the representative store through the merchant
    result = await api.gql(
        "{ merchant { representativeStore { storeId webhookSettings { url } } } }",
        authorization=f"PortOne {secret}",
    )

    # then it is refused and nothing of that store comes back
    assert result.error_codes == ["FORBIDDEN"]
    assert owner.representative_store_id not in str(result.body)


async def test_secrets_do_not_read_members(api: Api) -> None:
    owner = await api.sign_up()
    secret = await _secret(api, owner.token, owner.representative_store_id)

    result = await api.gql(
        "{ merchant { members { nodes { user { email } } } } }",
        authorization=f"PortOne {secret}",
    )
    created_by = await api.gql(
        "query($s: String!) { store(storeId: $s) { apiSecrets { nodes { createdBy { email } } } } "
        "}",
        {"s": owner.representative_store_id},
        authorization=f"PortOne {secret}",
    )

    assert result.error_codes == ["FORBIDDEN"]
    assert owner.email not in str(result.body)
    nodes = created_by.data["store"]["apiSecrets"]["nodes"]
    assert nodes == [{"createdBy": None}]


async def test_a_refresh_token_is_spent_once_even_concurrently(api: Api) -> None:
    owner = await api.sign_up()
    secret = await _secret(api, owner.token, owner.representative_store_id)
    login = await api.gql(LOGIN, {"s": secret})
    refresh = login.data["apiSecretLogin"]["refreshToken"]

    results = await asyncio.gather(*(api.gql(REFRESH, {"r": refresh}) for _ in range(5)))

    tokens = [r.data["accessTokenRefresh"]["accessToken"] for r in results]
    assert sum(t is not None for t in tokens) == 1
