"""A query cannot ask for more objects than the cap, however it nests connections."""

from __future__ import annotations

import httpx

from tests.support import Api

FAN_OUT = """query($s: String!) { store(storeId: $s) {
  channels(first: 100) { nodes { store { channels(first: 100) { nodes {
    store { channels(first: 100) { nodes { id } } } } } } } } } }"""
DASHBOARD = """query($s: String!) { store(storeId: $s) {
  subStores(first: 10) { nodes { storeId channels(first: 20) { nodes { id } } } }
  channels(first: 100) { nodes { id } } } }"""
VARIABLES = """query($s: String!, $n: Int) { store(storeId: $s) {
  channels(first: $n) { nodes { store { channels(first: $n) { nodes {
    store { channels(first: $n) { nodes { id } } } } } } } } } }"""
FRAGMENTS = """query($s: String!) { store(storeId: $s) { ...Deep } }
fragment Deep on Store { channels(first: 100) { nodes { store { ...Deeper } } } }
fragment Deeper on Store { channels(first: 100) { nodes { store { channels(first: 100) {
  nodes { id } } } } } }"""


async def test_a_fan_out_query_is_refused_before_it_runs(
    api: Api, client: httpx.AsyncClient
) -> None:
    owner = await api.sign_up()
    for query in (FAN_OUT, VARIABLES, FRAGMENTS):
        result = await api.gql(query, {"s": owner.representative_store_id}, token=owner.token)
        assert result.status == 200  # a request error, over application/json
        assert "data" not in result.body
        assert result.error_codes == ["QUERY_TOO_COMPLEX"]
        assert "at most 20000" in result.body["errors"][0]["message"]


async def test_a_dashboard_sized_query_runs(api: Api) -> None:
    owner = await api.sign_up()
    result = await api.gql(DASHBOARD, {"s": owner.representative_store_id}, token=owner.token)
    assert result.error_codes == []
    assert result.data["store"]["subStores"]["nodes"] == []


# Relay-style clients pass page sizes as variables: they count with their values.
RELAY_DASHBOARD = """query($s: String!, $n: Int) { store(storeId: $s) {
  subStores(first: $n) { nodes { storeId
    channels(first: $n) { nodes { id } } apiSecrets(first: $n) { nodes { id } } } } } }"""
DEFAULTED = VARIABLES.replace("$n: Int)", "$n: Int = 10)")
SETTINGS_PER_SUB_STORE = """query($s: String!) { store(storeId: $s) {
  subStores(first: 100) { nodes { webhookSettings { deliveries(first: 50) { nodes { id } } } } }
} }"""
SETTINGS = """query($s: String!) { store(storeId: $s) {
  webhookSettings { mode deliveries(first: 50) { nodes { id } } } } }"""


async def test_a_relay_dashboard_runs_with_pages_of_ten_not_of_a_hundred(api: Api) -> None:
    owner = await api.sign_up()
    store = {"s": owner.representative_store_id}
    # when: page sizes of 10 (10 sub-stores, 100 channels, 100 API secrets)
    result = await api.gql(RELAY_DASHBOARD, {**store, "n": 10}, token=owner.token)
    # then
    assert result.error_codes == []
    assert result.data["store"]["subStores"]["nodes"] == []
    # when: 100 sub-stores, each with 100 channels and 100 API secrets
    refused = await api.gql(RELAY_DASHBOARD, {**store, "n": 100}, token=owner.token)
    # then
    assert refused.error_codes == ["QUERY_TOO_COMPLEX"]
    assert refused.body.get("data") is None
    assert "up to 20100 objects; at most 20000" in refused.body["errors"][0]["message"]


async def test_an_absent_page_size_counts_as_the_default_page(api: Api) -> None:
    owner = await api.sign_up()
    store = {"s": owner.representative_store_id}
    # 50 + 50 × 50 + 50 × 50: within the limit
    assert (await api.gql(RELAY_DASHBOARD, store, token=owner.token)).error_codes == []
    # 50 + 50² + 50³ is not
    result = await api.gql(VARIABLES, store, token=owner.token)
    assert result.error_codes == ["QUERY_TOO_COMPLEX"]
    assert "up to 127550 objects" in result.body["errors"][0]["message"]


async def test_the_operations_default_page_size_counts(api: Api) -> None:
    owner = await api.sign_up()
    # 10 + 10² + 10³ objects with the declared default, 50 + 50² + 50³ given null
    store = {"s": owner.representative_store_id}
    assert (await api.gql(DEFAULTED, store, token=owner.token)).error_codes == []
    result = await api.gql(DEFAULTED, {**store, "n": None}, token=owner.token)
    assert result.error_codes == ["QUERY_TOO_COMPLEX"]


async def test_a_page_size_over_the_maximum_gets_the_fields_own_error(api: Api) -> None:
    owner = await api.sign_up()
    variables = {"s": owner.representative_store_id, "n": 1000}
    result = await api.gql(VARIABLES, variables, token=owner.token)
    assert result.error_codes == ["BAD_REQUEST"]
    assert result.body["errors"][0]["message"] == "`first` must be between 0 and 100."
    assert result.body["errors"][0]["path"] == ["store", "channels"]


async def test_the_four_webhook_settings_multiply_what_is_under_them(api: Api) -> None:
    owner = await api.sign_up()
    store = {"s": owner.representative_store_id}
    # 4 settings with 50 deliveries each
    result = await api.gql(SETTINGS, store, token=owner.token)
    assert result.error_codes == []
    assert len(result.data["store"]["webhookSettings"]) == 4
    # 100 sub-stores × 4 settings × 50 deliveries
    refused = await api.gql(SETTINGS_PER_SUB_STORE, store, token=owner.token)
    assert refused.error_codes == ["QUERY_TOO_COMPLEX"]
    assert "up to 20500 objects" in refused.body["errors"][0]["message"]
