"""A store's webhook settings asked with their `secrets` are read with them: every batch of
settings brings its own secrets (one statement each), so a dashboard costs the same
statements in every run. Left to a loader of their own, the representative store's secrets
and its sub-stores' were read together or apart depending on which database answers arrived
in the same loop iteration (`make bench`: 8 statements for 2 sub-stores in one run, 9 in the
next)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from gql_api.settings import Settings
from tests.channels.test_statement_count import counting_statements
from tests.conftest import make_settings
from tests.support import Api, SignedUp, create_store
from tests.webhooks.helpers import issue_secret, save_setting

# The shape of the bench's dashboard: the representative store's settings and secrets, then
# its sub-stores' (through a fragment, and an inline fragment for the secrets).
DASHBOARD = """
query Dashboard($storeId: String!) {
  store(storeId: $storeId) {
    ...Settings
    subStores(first: 50) { nodes { storeId ...Settings } }
  }
}
fragment Settings on Store {
  webhookSettings { moduleVersion mode usesRepresentativeSetting ... on WebhookSetting {
    secrets { hint } } }
}
"""

WITHOUT_SECRETS = """
query Settings($storeId: String!) {
  store(storeId: $storeId) {
    webhookSettings { moduleVersion mode url }
    subStores(first: 50) { nodes { webhookSettings { moduleVersion mode url } } }
  }
}
"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings saved with loopback URLs (nothing is sent here)."""
    return make_settings(database_url, webhook_allowed_networks=["127.0.0.0/8"])


def reads(statements: list[str], table: str) -> int:
    return sum(1 for s in statements if f"FROM {table}" in s and s.lstrip().startswith("SELECT"))


def v2_test_hints(store: dict[str, Any]) -> list[str]:
    [setting] = [
        s for s in store["webhookSettings"] if (s["moduleVersion"], s["mode"]) == ("V2", "TEST")
    ]
    return [secret["hint"] for secret in setting["secrets"]]


async def add_sub_stores(
    api: Api, owner: SignedUp, first: int, count: int
) -> dict[str, str | None]:
    """Sub-stores `first`..: the even ones follow the representative store, the odd ones have
    a setting and a V2 TEST secret of their own. Store id -> the hint of its own secret."""
    made: dict[str, str | None] = {}
    for n in range(first, first + count):
        store_id, _ = await create_store(api, owner.token, f"Sub-store {n}")
        made[store_id] = None
        if n % 2:
            url = f"http://127.0.0.1:9/{n}"
            await save_setting(api, owner.token, store_id, url, usesRepresentativeSetting=False)
            made[store_id] = (await issue_secret(api, owner.token, store_id)).hint
    return made


async def test_each_batch_of_settings_reads_its_secrets_and_lists_them(
    api: Api, app: Starlette
) -> None:
    # given: the representative store with a V2 TEST secret, 2 sub-stores (one following it)
    owner = await api.sign_up()
    rep = owner.representative_store_id
    await save_setting(api, owner.token, rep, "http://127.0.0.1:9/rep")
    rep_hint = (await issue_secret(api, owner.token, rep)).hint
    subs = await add_sub_stores(api, owner, 0, 2)

    # when
    with counting_statements(app) as two:
        result = await api.gql(DASHBOARD, {"storeId": rep}, token=owner.token)

    # then: the representative store's batch and the sub-stores' batch, each with its secrets
    assert result.error_codes == [], result.body
    store = result.data["store"]
    assert v2_test_hints(store) == [rep_hint]
    listed = {sub["storeId"]: sub for sub in store["subStores"]["nodes"]}
    assert list(listed) == list(subs)
    for store_id, own_hint in subs.items():  # a follower lists the representative's secrets
        assert v2_test_hints(listed[store_id]) == [own_hint or rep_hint]
    assert reads(two, "webhook_settings") == 2, two
    assert reads(two, "webhook_secrets") == 2, two

    # given: 6 sub-stores
    await add_sub_stores(api, owner, 2, 4)

    # when
    with counting_statements(app) as six:
        again = await api.gql(DASHBOARD, {"storeId": rep}, token=owner.token)

    # then: the same statements
    assert again.error_codes == [], again.body
    assert len(again.data["store"]["subStores"]["nodes"]) == 6
    assert reads(six, "webhook_secrets") == 2, six
    assert len(six) == len(two), (two, six)


async def test_settings_asked_without_their_secrets_read_none(api: Api, app: Starlette) -> None:
    # given
    owner = await api.sign_up()
    rep = owner.representative_store_id
    await issue_secret(api, owner.token, rep)
    await add_sub_stores(api, owner, 0, 2)

    # when
    with counting_statements(app) as statements:
        result = await api.gql(WITHOUT_SECRETS, {"storeId": rep}, token=owner.token)

    # then
    assert result.error_codes == [], result.body
    assert reads(statements, "webhook_settings") == 2, statements
    assert reads(statements, "webhook_secrets") == 0, statements
