"""channelGroupPick: the channel a payment with a channelGroupId goes to now, drawn by the
weights of the current session; who may ask; and 10,000 draws that match the weights."""

from __future__ import annotations

import math
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from gql_api.channel_groups import rules
from gql_api.channel_groups.service import sessions_of
from gql_api.ids import parse_global_id
from tests.channel_groups.helpers import PICK, create_group, entries, make_channels
from tests.factories import Seeded
from tests.support import Api

SECRET_ISSUE = """mutation($i: ApiSecretIssueInput!) { apiSecretIssue(input: $i) {
    secret userErrors { code } } }"""


async def test_a_payment_backend_picks_with_the_stores_api_secret(api: Api, seeded: Seeded) -> None:
    # given a group whose only enabled channel with weight is B
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b, c = await make_channels(api, owner.token, store_id, "A", "B", "C")
    group = await create_group(
        api, owner.token, store_id, "G", entries((a, 0), (b, 100), (c, 100, False))
    )
    issued = await api.gql(
        SECRET_ISSUE, {"i": {"storeId": store_id, "name": "Backend"}}, token=owner.token
    )
    secret = f"PortOne {issued.data['apiSecretIssue']['secret']}"

    # when the backend (and a read-only console user) ask for a channel, then it is always B
    for _ in range(20):
        picked = await api.gql(PICK, {"g": group["channelGroupId"]}, authorization=secret)
        assert picked.data["channelGroupPick"] == {"id": b, "name": "B"}
    viewer = await api.gql(
        PICK, {"g": group["channelGroupId"]}, token=seeded.members["READ_ONLY"].token
    )
    assert viewer.data["channelGroupPick"]["name"] == "B"

    # an anonymous caller is not answered; an unknown ID is null
    anonymous = await api.gql(PICK, {"g": group["channelGroupId"]})
    assert anonymous.error_codes == ["UNAUTHENTICATED"]
    unknown = await api.gql(PICK, {"g": "channel-group-test-unknown"}, authorization=secret)
    assert unknown.data["channelGroupPick"] is None


async def test_a_sub_stores_secret_cannot_pick_from_another_store(api: Api, seeded: Seeded) -> None:
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    (a,) = await make_channels(api, owner.token, store_id, "A")
    group = await create_group(api, owner.token, store_id, "G", entries((a, 100)))
    issued = await api.gql(
        SECRET_ISSUE,
        {"i": {"storeId": seeded.stores["Sub store"], "name": "Sub"}},
        token=owner.token,
    )
    secret = f"PortOne {issued.data['apiSecretIssue']['secret']}"
    picked = await api.gql(PICK, {"g": group["channelGroupId"]}, authorization=secret)
    assert picked.body == {"data": {"channelGroupPick": None}}


def pk_of(global_id: str) -> int:
    decoded = parse_global_id(global_id)
    assert decoded is not None
    return decoded[1]


# For 2 degrees of freedom the chi-square tail is exactly exp(-x/2): a statistic above 42
# happens by chance with probability exp(-21) < 1e-9 (far beyond 5 sigma), so the test never
# fails by bad luck, while a draw off by even a few percentage points gives hundreds.
CHI_SQUARE_LIMIT = 42.0
DRAWS = 10_000


async def test_ten_thousand_picks_follow_the_weights(
    api: Api, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    # given a group of 50/30/20 with a disabled entry (weight 90) and an enabled 0
    owner, store_id = seeded.owner, seeded.owner.representative_store_id
    a, b, c, off, zero = await make_channels(api, owner.token, store_id, "A", "B", "C", "D", "E")
    group = await create_group(
        api,
        owner.token,
        store_id,
        "G",
        entries((a, 50), (b, 30), (off, 90, False), (c, 20), (zero, 0)),
    )
    group_pk = pk_of(group["id"])
    async with AsyncSession(db_engine) as db:
        current = (await sessions_of(db=db, group_pks=[group_pk]))[group_pk].current
    assert current is not None
    stored = [(entry.channel_pk, entry.weight, entry.enabled) for entry in current.entries]

    # when channelGroupPick's draw runs 10,000 times on the stored session
    counts = Counter(rules.weighted_pick(stored) for _ in range(DRAWS))

    # then the disabled and zero-weight channels are never drawn and the rest match the weights
    pk = {name: pk_of(gid) for name, gid in zip("ABCDE", (a, b, c, off, zero), strict=True)}
    assert counts[pk["D"]] == 0 and counts[pk["E"]] == 0 and counts[None] == 0
    expected = {pk["A"]: 0.5 * DRAWS, pk["B"]: 0.3 * DRAWS, pk["C"]: 0.2 * DRAWS}
    chi_square = sum((counts[k] - e) ** 2 / e for k, e in expected.items())
    assert chi_square < CHI_SQUARE_LIMIT, (counts, chi_square)
    assert math.isclose(sum(counts.values()), DRAWS)


def test_the_tolerance_catches_a_wrong_distribution() -> None:
    # uniform draws instead of 50/30/20 are refused by the same limit
    expected = {"A": 5000.0, "B": 3000.0, "C": 2000.0}
    uniform = {"A": 3334, "B": 3333, "C": 3333}
    assert sum((uniform[k] - e) ** 2 / e for k, e in expected.items()) > CHI_SQUARE_LIMIT


STORE_DELETE = """mutation($s: String!) { storeDelete(input: {storeId: $s}) {
    userErrors { code } } }"""


async def test_a_deleted_stores_group_picks_nothing(api: Api, seeded: Seeded) -> None:
    # given a group of a sub-store
    owner, sub_store = seeded.owner, seeded.stores["Sub store"]
    (a,) = await make_channels(api, owner.token, sub_store, "A")
    group = await create_group(api, owner.token, sub_store, "G", entries((a, 100)))
    picked = await api.gql(PICK, {"g": group["channelGroupId"]}, token=owner.token)
    assert picked.data["channelGroupPick"]["name"] == "A"

    # when the store is deleted
    deleted = await api.gql(STORE_DELETE, {"s": sub_store}, token=owner.token)
    assert deleted.data["storeDelete"]["userErrors"] == []

    # then its group routes no payment
    picked = await api.gql(PICK, {"g": group["channelGroupId"]}, token=owner.token)
    assert picked.data["channelGroupPick"] is None
