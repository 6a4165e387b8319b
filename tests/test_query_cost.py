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
        assert result.status == 400
        assert result.error_codes == ["QUERY_TOO_COMPLEX"]
        assert "at most 20000" in result.body["errors"][0]["message"]


async def test_a_dashboard_sized_query_runs(api: Api) -> None:
    owner = await api.sign_up()
    result = await api.gql(DASHBOARD, {"s": owner.representative_store_id}, token=owner.token)
    assert result.error_codes == []
    assert result.data["store"]["subStores"]["nodes"] == []
